"""Training progress: a JSON-lines log and a live display on a terminal.

Log records (one JSON object per line, appended; every record has ``event`` and ``time``, the
wall-clock seconds of the fit so far including earlier sessions of a resumed fit):

- ``start``: model index, seed, parameter count, config fingerprint, resumed (bool);
- ``iter``: ``iter``, ``loss``, ``n_evals``, ``alpha`` (accepted step length), ``s_per_iter``;
  every ``progress_every`` iterations also ``train`` / ``valid`` error dicts with
  ``E_rmse`` (eV/atom), ``F_rmse`` (eV/Å), ``S_rmse`` (GPa), and the MAEs;
- ``linear_solve``: ``iter``, ``loss_before``, ``loss_after``, ``accepted``;
- ``checkpoint``: ``iter``, ``path``; ``stop``: ``iter``, ``reason``, ``loss``.
"""

from __future__ import annotations

import json
import math
import sys

__all__ = ["ProgressLog", "errors_record"]


def errors_record(stats) -> dict:
    """Compact error dict (NaN for quantities without labels)."""
    return {"E_rmse": stats.energy_rmse, "E_mae": stats.energy_mae,
            "F_rmse": stats.forces_rmse, "F_mae": stats.forces_mae,
            "S_rmse": stats.stress_rmse, "S_mae": stats.stress_mae}


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def _fmt_errors(e: dict | None) -> str:
    if not e:
        return ""

    def f(x, scale, width, prec):
        return f"{'-':>{width}}" if x is None or x != x else f"{scale * x:>{width}.{prec}f}"

    return (f"{f(e.get('E_rmse'), 1e3, 8, 2)} {f(e.get('F_rmse'), 1.0, 7, 4)} "
            f"{f(e.get('S_rmse'), 1.0, 7, 3)}")


class ProgressLog:
    """Writes log records and shows progress.

    ``stream``: where progress goes (default stdout); ``live``: redraw one status line every
    iteration (default: when the stream is a terminal); ``quiet``: no progress at all.
    """

    def __init__(self, log_path=None, stream=None, live: bool | None = None,
                 quiet: bool = False):
        self.stream = stream if stream is not None else sys.stdout
        self.quiet = quiet
        if live is None:
            isatty = getattr(self.stream, "isatty", None)
            live = bool(isatty and isatty())
        self.live = live and not quiet
        self._fh = None
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(log_path, "a", encoding="utf-8")
        self._status_shown = False
        self._header_shown = False

    def close(self) -> None:
        self._clear_status()
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    # ---------------------------------------------------------------- log
    def record(self, event: str, **fields) -> None:
        if self._fh is not None:
            self._fh.write(json.dumps(_json_safe({"event": event, **fields})) + "\n")
            self._fh.flush()

    # ---------------------------------------------------------------- display
    def message(self, text: str) -> None:
        if self.quiet:
            return
        self._clear_status()
        print(text, file=self.stream, flush=True)

    def _clear_status(self) -> None:
        if self._status_shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._status_shown = False

    def iteration(self, model: int, it: int, loss: float, s_per_iter: float,
                  train: dict | None = None, valid: dict | None = None) -> None:
        """Progress of one iteration: a full table row when errors were computed, otherwise
        (on a terminal) a status line redrawn in place."""
        if self.quiet:
            return
        if train is None and valid is None:
            if self.live:
                self.stream.write(f"\r\033[K  model {model} iter {it:>6d}  loss {loss:.6e}  "
                                  f"{s_per_iter:.3f} s/iter")
                self.stream.flush()
                self._status_shown = True
            return
        if not self._header_shown:
            self.message(f"{'model':>5} {'iter':>6} {'loss':>12} | {'train E':>8} {'F':>7} "
                         f"{'S':>7} | {'valid E':>8} {'F':>7} {'S':>7} | {'s/iter':>7}")
            self.message(f"{'':>5} {'':>6} {'':>12} | {'meV/at':>8} {'eV/Å':>7} {'GPa':>7} | "
                         f"{'meV/at':>8} {'eV/Å':>7} {'GPa':>7} |")
            self._header_shown = True
        v = _fmt_errors(valid) if valid else f"{'-':>8} {'-':>7} {'-':>7}"
        self.message(f"{model:>5} {it:>6d} {loss:>12.6e} | {_fmt_errors(train)} | {v} | "
                     f"{s_per_iter:>7.3f}")
