"""Evaluator speed: microseconds per atom for energy + forces + stress, single thread.

Structure: fcc cell a = 3.62 Å (256 atoms, 4x4x4 conventional cells), cutoff 5 Å (42 neighbours),
levels 8..24, one and two species, random coefficients (the cost does not depend on them).
The time includes building the neighbour list, as `mlp calc-efs` does.

Baselines:
- motep 0.2.0 (`pip install motep`, its compiled "cext" engine through its ASE calculator, same
  potential, same cell), measured in the same run: column `motep` and ratio `x motep`;
- MLIP-2 on the same cell, measured on this kind of machine (numbers quoted in the core issue;
  MLIP-2 cannot be installed here, so they are not re-measured): ratio `x MLIP-2` (> 2 is the target).
Second table: cost for 256 / 2048 / 16384 atoms, showing linear scaling (us/atom constant), and the
time of the neighbour list alone.

Usage: python bench/bench_evaluator.py [--levels 8 12 16] [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time

import numpy as np
from ase.build import bulk

from pyfit import MTP
from pyfit.basis import generate_basis
from pyfit.configuration import Configuration
from pyfit.model import MTPModel

MLIP2_US_PER_ATOM = {8: 7.8, 12: 34.0, 16: 86.0, 20: 190.0, 24: 508.0}  # 1 species


def make_mtp(level: int, species: int, rng) -> MTP:
    b = generate_basis(level)
    K, R = b.radial_funcs_count, 8
    model = MTPModel(
        species_count=species, min_dist=2.0, max_dist=5.0, radial_basis_size=R,
        radial_funcs_count=K, alpha_moments_count=b.alpha_moments_count,
        alpha_index_basic=b.alpha_index_basic, alpha_index_times=b.alpha_index_times,
        alpha_moment_mapping=b.alpha_moment_mapping,
        radial_coeffs=rng.normal(scale=0.1, size=(species, species, K, R)),
        species_coeffs=rng.normal(size=species),
        moment_coeffs=rng.normal(scale=0.1, size=len(b.alpha_moment_mapping)),
    )
    return MTP(model)


def fcc(repeat: int, species: int, rng) -> Configuration:
    atoms = bulk("Cu", "fcc", a=3.62, cubic=True).repeat((repeat,) * 3)
    types = rng.integers(0, species, len(atoms))
    return Configuration(positions=atoms.positions.copy(), types=types,
                         cell=atoms.cell.array.copy(), pbc=(True, True, True))


def motep_time_per_atom(mtp: MTP, config: Configuration, min_time: float) -> float | None:
    """The same evaluation with motep's compiled engine (None if motep is not installed)."""
    try:
        from motep.calculator import make_calculator
        from motep.io.mlip.mtp import read_mtp as motep_read_mtp
    except ImportError:
        return None
    import tempfile
    from pathlib import Path

    from ase import Atoms

    from pyfit.io.mtp_file import write_mtp

    elements = ["Cu", "Ag", "Au", "Ni"][: mtp.species_count]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mtp"
        write_mtp(mtp.model, path, precision=16)
        data = motep_read_mtp(path)
    data.species = [29, 47, 79, 28][: mtp.species_count]
    atoms = Atoms([elements[t] for t in config.types], positions=config.positions,
                  cell=config.cell, pbc=True)
    atoms.calc = make_calculator(data, engine="cext")

    def run():
        atoms.calc.results = {}
        atoms.get_potential_energy()
        atoms.get_forces()
        atoms.get_stress()

    return time_per_atom(run, len(atoms), min_time)


def time_per_atom(fn, n_atoms: int, min_time: float = 0.5) -> float:
    fn()  # warm up
    reps, elapsed = 0, 0.0
    best = float("inf")
    while elapsed < min_time or reps < 3:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best = min(best, dt)
        elapsed += dt
        reps += 1
    return best / n_atoms * 1e6


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--levels", type=int, nargs="+", default=[8, 12, 16, 20, 24])
    p.add_argument("--quick", action="store_true", help="shorter timings")
    p.add_argument("--no-motep", action="store_true", help="skip the motep baseline")
    args = p.parse_args(argv)
    min_time = 0.2 if args.quick else 1.0
    rng = np.random.default_rng(0)
    print(f"# pyfit evaluator benchmark, {datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"{platform.python_implementation()} {platform.python_version()}, 1 thread")
    print("# 256-atom fcc Cu cell, a = 3.62 Å, cutoff 5 Å, energy+forces+stress incl. neighbour list")
    print(f"{'level':>5} {'species':>7} {'basic':>6} {'times':>7} {'us/atom':>9} {'motep':>8} "
          f"{'x motep':>8} {'MLIP-2':>8} {'x MLIP-2':>9}")
    for level in args.levels:
        for species in (1, 2):
            mtp = make_mtp(level, species, rng)
            config = fcc(4, species, rng)
            us = time_per_atom(lambda: mtp.evaluate(config), 256, min_time)
            motep = None if args.no_motep else motep_time_per_atom(mtp, config, min_time)
            base = MLIP2_US_PER_ATOM.get(level) if species == 1 else None
            m = mtp.model
            print(f"{level:>5} {species:>7} {m.alpha_index_basic_count:>6} "
                  f"{m.alpha_index_times_count:>7} {us:9.2f} "
                  + (f"{motep:8.1f} {motep / us:8.2f} " if motep else f"{'-':>8} {'-':>8} ")
                  + (f"{base:8.1f} {base / us:9.2f}" if base else f"{'-':>8} {'-':>9}"))

    print("\n# linear scaling: us/atom vs system size (1 species)")
    print(f"{'level':>5} {'atoms':>7} {'us/atom':>9} {'nlist us/atom':>14}")
    for level in (args.levels[0], args.levels[-1]) if len(args.levels) > 1 else args.levels:
        mtp = make_mtp(level, 1, rng)
        ev = mtp.evaluator
        for rep in (4, 8, 16):
            config = fcc(rep, 1, rng)
            n = len(config.positions)
            us = time_per_atom(lambda: mtp.evaluate(config), n, min_time)
            nl = time_per_atom(lambda: ev.neighbours(config.positions, config.cell, config.pbc), n, min_time)
            print(f"{level:>5} {n:>7} {us:9.2f} {nl:14.2f}")


if __name__ == "__main__":
    main()
