"""Evaluator speed: microseconds per atom for energy + forces + stress, single thread.

Structure: fcc cell a = 3.62 Å (256 atoms, 4x4x4 conventional cells), cutoff 5 Å (42 neighbours),
levels 8..24, one and two species, random coefficients (the cost does not depend on them).
The time includes building the neighbour list, as `mlp calc-efs` does.

Baseline: MLIP-2 on the same cell, measured on this kind of machine (numbers from the core issue;
MLIP-2 is not installed here, so they cannot be re-measured in the same run). The ratio column is
MLIP-2 time / pyfit time (> 2 is the target). Second table: cost for 256 / 2048 / 16384 atoms,
showing linear scaling (us/atom constant), and the time of the neighbour list alone.

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
    args = p.parse_args(argv)
    min_time = 0.2 if args.quick else 1.0
    rng = np.random.default_rng(0)
    print(f"# pyfit evaluator benchmark, {datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"{platform.python_implementation()} {platform.python_version()}, 1 thread")
    print("# 256-atom fcc Cu cell, a = 3.62 Å, cutoff 5 Å, energy+forces+stress incl. neighbour list")
    print(f"{'level':>5} {'species':>7} {'basic':>6} {'times':>7} {'us/atom':>9} {'MLIP-2':>8} {'ratio':>6}")
    for level in args.levels:
        for species in (1, 2):
            mtp = make_mtp(level, species, rng)
            config = fcc(4, species, rng)
            us = time_per_atom(lambda: mtp.evaluate(config), 256, min_time)
            base = MLIP2_US_PER_ATOM.get(level) if species == 1 else None
            ratio = f"{base / us:6.2f}" if base else f"{'-':>6}"
            base_s = f"{base:8.1f}" if base else f"{'-':>8}"
            m = mtp.model
            print(f"{level:>5} {species:>7} {m.alpha_index_basic_count:>6} "
                  f"{m.alpha_index_times_count:>7} {us:9.2f} {base_s} {ratio}")

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
