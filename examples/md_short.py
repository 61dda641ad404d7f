"""Short LAMMPS run with a (compressed) MTP through pair_style mtp/lowrank.

Takes the first structure of the bundled training data (27-atom fcc Cu-Ag-Au cell; the bundled
potentials know only such environments), repeats it 2x2x2 (216 atoms), runs
examples/in.cuagau_nvt (NVT, 600 K, 2 fs) and checks that the run stayed sane: no lost atoms,
finite energies, temperature near the target.
Usage: python examples/md_short.py POT OUTDIR [--steps 500] [--structure CFG]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pyfit.errors import PyfitError
from pyfit.io.dataset import read_configurations
from pyfit.lammps import make_lammps, write_data

HERE = Path(__file__).resolve().parent


def repeated(config, n: int):
    """Positions, 0-based types and cell of ``config`` repeated n x n x n."""
    shifts = np.array([[i, j, k] for i in range(n) for j in range(n) for k in range(n)], float)
    cell = np.asarray(config.cell, float)
    positions = (shifts @ cell)[:, None, :] + np.asarray(config.positions)[None]
    types = np.tile(np.asarray(config.types), len(shifts))
    return positions.reshape(-1, 3), types, n * cell


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("potential", type=Path)
    p.add_argument("outdir", type=Path)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--structure", type=Path, default=HERE / "data" / "CuAgAu_sample.cfg")
    args = p.parse_args(argv)
    if not args.potential.is_file():
        print(f"md_short: potential file {args.potential} not found", file=sys.stderr)
        return 2
    args.outdir.mkdir(parents=True, exist_ok=True)
    try:
        first = read_configurations(args.structure)[0]
    except PyfitError as exc:
        print(f"md_short: {exc}", file=sys.stderr)
        return 2
    positions, types, cell = repeated(first, 2)
    data = args.outdir / "data.cuagau"
    write_data(data, positions, types, cell, ntypes=3)
    log = args.outdir / "log.cuagau_nvt"
    try:
        lmp = make_lammps(["-screen", "none", "-nocite", "-log", str(log),
                           "-var", "pot", str(args.potential.resolve()),
                           "-var", "data", str(data.resolve()), "-var", "steps", str(args.steps)])
        lmp.file(str(HERE / "in.cuagau_nvt"))
        temp = lmp.get_thermo("temp")
        pe = lmp.get_thermo("pe")
        natoms = lmp.get_natoms()
        lmp.close()
    except PyfitError as exc:
        print(f"md_short: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # LAMMPS errors arrive as generic exceptions from the lammps module
        print(f"md_short: LAMMPS stopped: {exc} (log: {log})", file=sys.stderr)
        return 1
    print(f"LAMMPS NVT, {natoms} atoms, {args.steps} steps of 2 fs: final T = {temp:.0f} K, "
          f"pe = {pe:.4f} eV/atom (log: {log})")
    if natoms != len(positions) or not np.isfinite(pe) or not 200 < temp < 1200:
        print("md_short: the run is not sane (lost atoms, non-finite energy or runaway T)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
