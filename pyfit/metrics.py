"""Error statistics of a potential against labelled configurations.

Definitions (documented in the README):
- energy: per atom, ``(E - E_ref) / N`` (eV/atom);
- forces: every Cartesian component of every atom (eV/Å);
- stress: the six Voigt components of the stress in GPa, periodic configurations only
  (PlusStress / volume, MLIP's sign convention and ASE's differ only in sign).
MAE is the mean absolute error, RMSE the root mean square error, over what is listed above.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

EV_PER_A3_TO_GPA = 160.21766208


@dataclass
class ErrorStats:
    n_configs: int = 0
    n_atoms: int = 0
    energy_mae: float = float("nan")  # eV/atom
    energy_rmse: float = float("nan")
    forces_mae: float = float("nan")  # eV/Å
    forces_rmse: float = float("nan")
    stress_mae: float = float("nan")  # GPa
    stress_rmse: float = float("nan")
    _e: list = field(default_factory=list, repr=False)
    _f: list = field(default_factory=list, repr=False)
    _s: list = field(default_factory=list, repr=False)

    def add(self, config, energy, forces, plus_stress):
        n = len(config.positions)
        self.n_configs += 1
        self.n_atoms += n
        if config.energy is not None:
            self._e.append((energy - config.energy) / n)
        if config.forces is not None:
            self._f.append(np.ravel(forces - config.forces))
        if config.plus_stress is not None and config.cell is not None and all(config.pbc):
            volume = abs(np.linalg.det(config.cell))
            d = (np.asarray(plus_stress) - np.asarray(config.plus_stress)) / volume
            self._s.append(d[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]] * EV_PER_A3_TO_GPA)

    def finalize(self) -> "ErrorStats":
        for name, parts in (("energy", self._e), ("forces", self._f), ("stress", self._s)):
            if parts:
                x = np.concatenate([np.atleast_1d(p) for p in parts])
                setattr(self, f"{name}_mae", float(np.mean(np.abs(x))))
                setattr(self, f"{name}_rmse", float(np.sqrt(np.mean(x * x))))
        return self

    def merged(self, other: "ErrorStats") -> "ErrorStats":
        out = ErrorStats(self.n_configs + other.n_configs, self.n_atoms + other.n_atoms)
        out._e, out._f, out._s = self._e + other._e, self._f + other._f, self._s + other._s
        return out.finalize()

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


def compute_errors(potential, configs, n_threads: int = 1) -> ErrorStats:
    """Errors of ``potential`` (a :class:`pyfit.MTP`) on labelled configurations."""
    stats = ErrorStats()
    for config in configs:
        r = potential.evaluate(config, n_threads=n_threads)
        stats.add(config, r.energy, r.forces, r.plus_stress)
    return stats.finalize()


def format_table(rows: dict[str, ErrorStats]) -> str:
    """A fixed-width table: one row per data set (file) and the totals."""
    head = (f"{'data':<28} {'configs':>7} {'atoms':>8} {'E MAE':>9} {'E RMSE':>9} "
            f"{'F MAE':>8} {'F RMSE':>8} {'S MAE':>8} {'S RMSE':>8}")
    units = f"{'':<28} {'':>7} {'':>8} {'meV/atom':>9} {'meV/atom':>9} {'eV/Å':>8} {'eV/Å':>8} {'GPa':>8} {'GPa':>8}"
    lines = [head, units]
    for name, s in rows.items():
        lines.append(
            f"{name[-28:]:<28} {s.n_configs:>7d} {s.n_atoms:>8d} {1e3 * s.energy_mae:>9.3f} "
            f"{1e3 * s.energy_rmse:>9.3f} {s.forces_mae:>8.4f} {s.forces_rmse:>8.4f} "
            f"{s.stress_mae:>8.4f} {s.stress_rmse:>8.4f}"
        )
    return "\n".join(lines)
