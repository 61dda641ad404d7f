"""Report plots (matplotlib is an optional dependency: ``pip install "pyfit[plot]"``).

- :func:`parity_plot`: predicted against reference energy per atom, force components and the six
  Voigt stress components (PlusStress / volume in GPa, MLIP's sign: positive under
  compression), one panel each, with the RMSE in the title (as ``pyfit errors`` computes it);
- :func:`loss_plot`: the loss against iteration from a training log (JSON lines), and the
  train / valid force and energy RMSEs where they were recorded; linear solves are marked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pyfit.errors import FileFormatError, PyfitError, read_text

__all__ = ["parity_plot", "loss_plot", "read_log"]


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PyfitError("plots need matplotlib, which is not installed: "
                         "pip install matplotlib (or pip install 'pyfit[plot]')") from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def parity_data(potential, configs, n_threads: int = 1) -> dict:
    """Reference and predicted arrays: energy per atom, force components, stress (GPa)."""
    from pyfit.metrics import EV_PER_A3_TO_GPA

    out = {k: ([], []) for k in ("energy", "forces", "stress")}
    for c in configs:
        r = potential.evaluate(c, n_threads=n_threads)
        n = c.n_atoms
        if c.energy is not None:
            out["energy"][0].append(c.energy / n)
            out["energy"][1].append(r.energy / n)
        if c.forces is not None:
            out["forces"][0].append(np.ravel(c.forces))
            out["forces"][1].append(np.ravel(r.forces))
        if c.plus_stress is not None and c.cell is not None and all(c.pbc):
            v = abs(np.linalg.det(c.cell)) / EV_PER_A3_TO_GPA
            voigt = ([0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1])
            out["stress"][0].append(np.asarray(c.plus_stress)[voigt] / v)
            out["stress"][1].append(np.asarray(r.plus_stress)[voigt] / v)
    return {k: (np.hstack(a) if a else np.zeros(0), np.hstack(b) if b else np.zeros(0))
            for k, (a, b) in out.items()}


def parity_plot(potential, data, output, species=None, n_threads: int = 1) -> None:
    """``potential``: an MTP (or path); ``data``: configurations or paths."""
    from pyfit.io.dataset import read_configurations
    from pyfit.potential import MTP

    plt = _pyplot()
    if isinstance(potential, (str, Path)):
        potential = MTP.load(potential, species=species)
    if isinstance(data, (str, Path)):
        data = [data]
    configs = []
    for d in data:
        configs += read_configurations(d, species=potential.species) if isinstance(
            d, (str, Path)) else [d]
    arrays = parity_data(potential, configs, n_threads)
    labels = {"energy": "energy (eV/atom)", "forces": "force components (eV/Å)",
              "stress": "stress components (GPa)"}
    panels = [k for k in labels if arrays[k][0].size]
    if not panels:
        raise PyfitError("parity plot: the data have no energy, force or stress labels")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    for ax, key in zip(axes[0], panels):
        ref, pred = arrays[key]
        lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        pad = 0.03 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.6", lw=1)
        ax.scatter(ref, pred, s=6, alpha=0.6, edgecolors="none")
        rmse = float(np.sqrt(np.mean((pred - ref) ** 2)))
        unit = labels[key].split("(")[1].rstrip(")")
        scale, unit = (1e3, "meV/atom") if key == "energy" else (1.0, unit)
        ax.set_title(f"{key}: RMSE {scale * rmse:.3g} {unit}", fontsize=10)
        ax.set_xlabel(f"reference {labels[key]}")
        ax.set_ylabel(f"predicted {labels[key]}")
        ax.set_aspect("equal", adjustable="box")
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)


def read_log(path) -> list[dict]:
    records = []
    for k, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FileFormatError(path, k, f"not a JSON record: {exc.msg}") from None
        if not isinstance(rec, dict) or "event" not in rec:
            raise FileFormatError(path, k, "expected a pyfit training log record "
                                           "(an object with 'event')")
        records.append(rec)
    return records


def loss_plot(log_path, output) -> None:
    plt = _pyplot()
    records = read_log(log_path)
    models = sorted({r.get("model", 0) for r in records if r["event"] == "iter"})
    if not models:
        raise PyfitError(f"{log_path}: the log holds no iterations")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for m in models:
        its = {}  # a resumed fit repeats iterations: the last record wins
        for r in records:
            if r.get("model", 0) == m and r["event"] in ("iter", "start") and \
                    r.get("loss") is not None:
                its[r["iter"]] = r
        xs = sorted(its)
        ax1.semilogy(xs, [its[i]["loss"] for i in xs], label=f"model {m}")
        lin = [r["iter"] for r in records if r["event"] == "linear_solve" and
               r.get("model", 0) == m and r.get("accepted")]
        if lin:
            ax1.semilogy(lin, [its[i]["loss"] if i in its else np.nan for i in lin], "k|",
                         ms=10)
        for part, style in (("train", "-"), ("valid", "--")):
            pts = [(i, its[i][part]["F_rmse"]) for i in xs
                   if its[i].get(part) and its[i][part].get("F_rmse") is not None]
            if pts:
                ax2.plot(*zip(*pts), style, label=f"model {m} {part}")
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("loss")
    ax1.set_title("loss (| = accepted linear solve)", fontsize=10)
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("force RMSE (eV/Å)")
    ax2.set_title("force RMSE", fontsize=10)
    for ax in (ax1, ax2):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)
