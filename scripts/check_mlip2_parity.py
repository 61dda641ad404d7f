"""Parity with MLIP-2 on the whole reference set (all configurations of both sets).

Compares pyfit's energies, forces and stresses with MLIP-2's own `mlp calc-efs` outputs and prints
the largest deviations. Exit status 1 if any exceeds the acceptance bounds: energy 1e-6 eV/atom,
forces 2e-6 eV/Å (6 printed decimals), PlusStress 2e-5 eV (5 printed decimals).

Usage: python scripts/check_mlip2_parity.py [DIR]   (DIR defaults to ../shared/data/mlip2_reference
relative to the repository root)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from pyfit import MTP
from pyfit.io.cfg import read_cfg

BOUNDS = {"energy": 1e-6, "forces": 2e-6, "stress": 2e-5}
SETS = [("cubic_10_pot.mtp", "cubic_10_out.cfg"), ("multi_10_pot.mtp", "multi_10_out.cfg")]


def check(directory: Path) -> bool:
    ok = True
    for pot_name, data_name in SETS:
        pot = MTP.load(directory / pot_name)
        configs = read_cfg(directory / data_name)
        t0 = time.perf_counter()
        worst = {"energy": 0.0, "forces": 0.0, "stress": 0.0}
        for c in configs:
            r = pot.evaluate(c)
            worst["energy"] = max(worst["energy"], abs(r.energy - c.energy) / c.n_atoms)
            worst["forces"] = max(worst["forces"], float(np.abs(r.forces - c.forces).max()))
            worst["stress"] = max(worst["stress"], float(np.abs(r.plus_stress - c.plus_stress).max()))
        dt = time.perf_counter() - t0
        passed = all(worst[k] <= BOUNDS[k] for k in BOUNDS)
        ok &= passed
        print(f"{data_name}: {len(configs)} configurations in {dt:.2f} s; max |dE|/atom "
              f"{worst['energy']:.2e} eV, max |dF| {worst['forces']:.2e} eV/Å, max |dS| "
              f"{worst['stress']:.2e} eV -> {'PASS' if passed else 'FAIL'}")
    return ok


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(__file__).resolve().parents[1]
    directory = Path(argv[0]) if argv else root.parent / "shared" / "data" / "mlip2_reference"
    if not directory.is_dir():
        print(f"reference directory not found: {directory}", file=sys.stderr)
        return 2
    return 0 if check(directory) else 1


if __name__ == "__main__":
    sys.exit(main())
