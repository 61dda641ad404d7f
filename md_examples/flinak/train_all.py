#!/usr/bin/env python3
"""Trains every FLiNaK model of models/*.toml (base + MF / MFRA / TF / R-MF at the optimal rank
and at ~50%), each an ensemble of ``n_models`` seeds, one model after the other.

    python train_all.py                         # all models (needs data/train.cfg)
    python train_all.py base mf_opt             # only these
    python train_all.py --max-iter 50 --threads 2   # overrides for every fit
    python train_all.py --dry-run               # print the commands only

How each TOML is fitted: ``pyfit train models/<model>.toml`` (from scratch, the whole
ensemble; ``--resume`` continues from the checkpoints), for every method: base, MF and TF by
BFGS, R-MF by Riemannian BFGS and MFRA by rank augmentation (the paper's protocol). With
``--from-base`` the rmf / mfra members ``k`` instead start from the truncation of
``models/out/base.<k>.mtp`` (``pyfit compress --finetune``, then refit), so ``base`` must be
trained first (base always runs first).

Active learning (``--al-rounds N``, README "Results, 2026-12-02"): before the models, N rounds
of: fit one base member (``--n-models 1``, round r > 1 starting from round r - 1's potential)
on the training data plus the frames of the rounds before, then ``active_learning.py`` with it
-> ``data/al<r>.cfg`` (``--al-dir``). Every model is then fitted to ``data/train.cfg`` plus all
``data/al<r>.cfg``. A round whose ``data/al<r>.cfg`` exists is reused (delete it to redo).

Coulomb baseline (``--coulomb``, README "MTP + Coulomb"): every model is fitted to the teacher
minus ``ff_coulomb.lmp`` (formal-charge Coulomb) and run with it added back (``run_npt.py
--coulomb``). Each data file ``data/<f>.cfg`` is first turned into ``data/coulomb/<f>.cfg`` by
``pyfit label --subtract`` (kept if it exists); active-learning rounds sample with MTP + Coulomb
(``active_learning.py --coulomb``) into ``data/coulomb/al<r>.cfg``.

Potentials: ``models/out/<model>.<k>.mtp`` (base, MLIP format) and ``.mtplr`` (MTP-LOWRANK);
the active-learning fits ``models/out/al/base_round<r>.mtp``; with ``--coulomb`` the same under
``models/out/coulomb/``. ``--baseline ff_coulomb_core.lmp`` (with ``--coulomb``; README
"Stability"): the same with Coulomb + a repulsive core, under ``coulomb_core/``; add the
close-contact frames with ``--extra-train data/hot/train.cfg``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPECIES = ("Li", "Na", "K", "F")
MODELS = ["base", "mf_opt", "mf_50", "mfra_opt", "mfra_50", "tf_opt", "tf_50", "rmf_opt",
          "rmf_50"]


def _use_pyfit() -> None:
    try:
        import pyfit  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(HERE.parents[1]))


def pyfit_command() -> tuple[list[str], dict]:
    """``python -m pyfit.cli`` with an environment in which that finds the same pyfit."""
    import pyfit

    env = dict(os.environ)
    root = str(Path(pyfit.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return [sys.executable, "-m", "pyfit.cli"], env


def train_overrides(args) -> list[str]:
    """The ``pyfit train`` flags this script passes on to every fit it runs."""
    flags = []
    if args.max_iter is not None:
        flags += ["--max-iter", str(args.max_iter)]
    if args.threads is not None:
        flags += ["--threads", str(args.threads)]
    if args.energy_weight is not None:
        flags += ["--energy-weight", str(args.energy_weight)]
    if args.resume:
        flags += ["--resume"]
    return flags


def baseline_tag(args) -> str:
    """The folder name of a baseline's data and potentials: ``coulomb`` for ff_coulomb.lmp,
    ``coulomb_core`` for ff_coulomb_core.lmp (the file's stem without ``ff_``); "" without
    ``--coulomb``."""
    if not args.coulomb:
        return ""
    stem = Path(args.baseline).stem
    return stem[3:] if stem.startswith("ff_") else stem


def out_path(path, args) -> Path:
    """Where a potential named ``path`` (relative to models/) goes: under ``out/<tag>/``
    with ``--coulomb`` (see :func:`baseline_tag`)."""
    path = Path(path)
    return path.parent / baseline_tag(args) / path.name if args.coulomb else path


def out_dir(args) -> Path:
    """The folder of the potentials, relative to models/: ``out`` or ``out/<tag>``."""
    return Path("out") / baseline_tag(args) if args.coulomb else Path("out")


def coulomb_steps(files, pyfit, baseline=HERE / "ff_coulomb.lmp", tag="coulomb"
                  ) -> tuple[list, dict]:
    """``--coulomb``: the ``pyfit label --subtract`` commands still to run (one per data file
    ``<dir>/<f>.cfg`` without its copy ``<dir>/<tag>/<f>.cfg``) and ``{file: short-range
    file}``."""
    steps, short = [], {}
    for f in dict.fromkeys(files):
        sr = Path(f).parent / tag / Path(f).name
        short[f] = str(sr)
        if not sr.is_file():
            steps.append((f"baseline {Path(baseline).name}", pyfit + [
                "label", str(f), "--ff", str(baseline), "--species",
                ",".join(SPECIES), "--atom-style", "charge", "--subtract", "-o", str(sr)]))
    return steps, short


def al_steps(base_toml: Path, species, train, pyfit, args, valid=()) -> tuple[list, list[Path]]:
    """``--al-rounds``: the (round, command) steps still to run and the frame files of all
    rounds (``data/al<r>.cfg``), which every model is then fitted to as well."""
    steps, files, previous = [], [], None
    for r in range(1, args.al_rounds + 1):
        pot = HERE / "models" / out_dir(args) / "al" / f"base_round{r}.mtp"
        frames = args.al_dir / f"al{r}.cfg"
        if not frames.is_file():
            fit = pyfit + ["train", str(base_toml), "--n-models", "1",
                           "--train", *map(str, train), *map(str, files), "-o", str(pot)]
            if valid:
                fit += ["--valid", *map(str, valid)]
            if previous is not None:
                fit += ["--init", str(previous)]
            fit += train_overrides(args)
            sample = [sys.executable, str(HERE / "active_learning.py"), "--potential", str(pot),
                      "--elements", *species, "--start", str(train[0]), "-o", str(frames)]
            if args.al_frames is not None:
                sample += ["--frames", str(args.al_frames)]
            if args.coulomb:
                sample += ["--coulomb", "--baseline", str(args.baseline)]
            steps += [(r, fit), (r, sample)]
        files.append(frames)
        previous = pot
    return steps, files


def compress_commands(cfg, base_cfg, pyfit, args, extra_train=(), train=None) -> list[list[str]]:
    """``--from-base``: one ``pyfit compress`` command per ensemble member of an rmf / mfra
    model, starting from the base member of the same index (``train``: the training files,
    default the TOML's)."""
    comp = dict(cfg.compression)
    method = comp.pop("method")
    options = []
    if "compression" in comp:
        options += ["--compression", str(comp.pop("compression"))]
    rank = comp.pop("r_max", None) if method == "mfra" else None
    rank = comp.pop("rank", rank)
    if rank is not None:
        options += ["--rank", str(rank)]
    for key in ("r0", "delta_r", "every", "sufficient_descent"):
        if key in comp:
            options += ["--" + key.replace("_", "-"), str(comp.pop(key))]
    comp.pop("unfolding", None)
    if comp:
        raise SystemExit(f"train_all.py: error: [compression] keys {sorted(comp)} of "
                         f"{cfg.output.potential} have no pyfit compress option")
    cmds = []
    n = cfg.optimizer.n_models
    for k in range(n):
        src = out_path(base_cfg.potential_path(k if base_cfg.optimizer.n_models > 1 else None),
                       args)
        out = out_path(cfg.potential_path(k if n > 1 else None), args)
        train_files = train if train is not None else map(os.path.normpath, cfg.data.train)
        cmd = pyfit + ["compress", str(src), "--method", method, *options, "--finetune",
                       *map(str, train_files), *map(str, extra_train),
                       "-o", str(out),
                       "--max-iter", str(args.max_iter or cfg.optimizer.max_iter),
                       "--linear-solve-every", str(cfg.optimizer.linear_solve_every),
                       "--energy-weight", str(args.energy_weight if args.energy_weight
                                              is not None else cfg.loss.energy),
                       "--force-weight", str(cfg.loss.forces),
                       "--stress-weight", str(cfg.loss.stress),
                       "--species", ",".join(cfg.model.species),
                       "--threads", str(args.threads if args.threads is not None
                                        else cfg.optimizer.threads)]
        cmds.append(cmd)
    return cmds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="*", help=f"models to fit (default: all: {' '.join(MODELS)})")
    p.add_argument("--max-iter", type=int, help="override optimizer.max_iter")
    p.add_argument("--threads", type=int, help="override optimizer.threads")
    p.add_argument("--energy-weight", type=float, help="override loss.energy (the TF model "
                   "of README 'Results, sixth session' used 10: a compressed model's density "
                   "follows sub-meV/atom energy errors)")
    p.add_argument("--resume", action="store_true", help="pyfit train --resume")
    p.add_argument("--from-base", action="store_true", help="rmf / mfra members start from "
                   "the trained base members (compress + refit) instead of from scratch")
    p.add_argument("--al-rounds", type=int, default=0, help="active-learning rounds before "
                   "the models (default 0; the README's recipe: 2)")
    p.add_argument("--al-frames", type=int, help="frames per temperature and round "
                   "(active_learning.py --frames)")
    p.add_argument("--al-dir", type=Path, help="where the al<r>.cfg files are (default: the "
                   "folder of the training data, data/)")
    p.add_argument("--coulomb", action="store_true", help="fit teacher - ff_coulomb.lmp "
                   "(formal-charge Coulomb baseline, added back in LAMMPS: run_npt.py "
                   "--coulomb); data/<f>.cfg -> data/coulomb/<f>.cfg, potentials in "
                   "models/out/coulomb/")
    p.add_argument("--baseline", type=Path, help="with --coulomb: the baseline file (default "
                   "ff_coulomb.lmp; ff_coulomb_core.lmp: Coulomb + repulsive core, data and "
                   "potentials under coulomb_core/)")
    p.add_argument("--extra-train", type=Path, action="append", default=[], metavar="FILE",
                   help="one more training file for every fit, repeatable (e.g. the "
                   "close-contact frames "
                   "data/hot/train.cfg; labelled like the others with --coulomb)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = p.parse_args(argv)
    if args.baseline is not None and not args.coulomb:
        print("train_all.py: error: --baseline applies with --coulomb", file=sys.stderr)
        return 2
    args.baseline = (args.baseline or HERE / "ff_coulomb.lmp").resolve()
    if not args.baseline.is_file():
        print(f"train_all.py: error: --baseline {args.baseline}: file not found",
              file=sys.stderr)
        return 2
    if args.energy_weight is not None and not args.energy_weight > 0:
        print(f"train_all.py: error: --energy-weight {args.energy_weight}: a positive weight "
              "expected", file=sys.stderr)
        return 2
    absent = [f for f in args.extra_train if not f.is_file()]
    if absent and not args.dry_run:
        print(f"train_all.py: error: --extra-train {absent[0]}: file not found",
              file=sys.stderr)
        return 2
    extra = [os.path.abspath(f) for f in args.extra_train]
    if args.al_rounds < 0 or (args.al_frames is not None and args.al_frames < 1):
        print("train_all.py: error: --al-rounds >= 0 and --al-frames >= 1 expected",
              file=sys.stderr)
        return 2
    _use_pyfit()
    from pyfit.errors import PyfitError
    from pyfit.fitting.config import load_config

    models = args.models or MODELS
    unknown = [m for m in models if not (HERE / "models" / f"{m}.toml").is_file()]
    if unknown:
        print(f"train_all.py: error: no models/{unknown[0]}.toml (models: {' '.join(MODELS)})",
              file=sys.stderr)
        return 2
    models = sorted(models, key=lambda m: m != "base")  # base first (rmf/mfra --from-base)
    try:
        cfgs = {m: load_config(HERE / "models" / f"{m}.toml") for m in set(models) | {"base"}}
    except PyfitError as exc:
        print(f"train_all.py: error: {exc}", file=sys.stderr)
        return 2
    train = [os.path.normpath(t) for t in cfgs["base"].data.train]
    if args.al_dir is None:
        args.al_dir = Path(train[0]).parent / baseline_tag(args)
    elif args.al_rounds and not args.al_dir.is_dir():
        print(f"train_all.py: error: --al-dir {args.al_dir} is not a directory", file=sys.stderr)
        return 2
    missing = [t for t in train if not Path(t).is_file()]
    if missing and not args.dry_run:
        print(f"train_all.py: error: {missing[0]} not found; run make_training_data.py first",
              file=sys.stderr)
        return 2
    pyfit, env = pyfit_command()
    (HERE / "models" / "out").mkdir(exist_ok=True)

    def call(label, cmd, shown) -> int:
        print(f"=== {label} ({time.strftime('%H:%M:%S', time.gmtime())} UTC): "
              f"{' '.join(shown)}", flush=True)
        if args.dry_run:
            return 0
        rc = subprocess.call(cmd, env=env, cwd=HERE / "models")
        if rc != 0:
            print(f"train_all.py: error: {label} failed (exit {rc})", file=sys.stderr)
        return rc

    label_steps, short = [], {}
    if args.coulomb:
        data_files = [os.path.normpath(f) for c in cfgs.values()
                      for f in (*c.data.train, *(c.data.valid or ()))] + extra
        label_steps, short = coulomb_steps(data_files, pyfit, args.baseline,
                                           baseline_tag(args))
        if not args.dry_run:
            for f in short.values():
                Path(f).parent.mkdir(exist_ok=True)
    for label, cmd in label_steps:
        if call(label, cmd, cmd[2:]) != 0:
            return 1

    def data_of(cfg, part):
        files = [os.path.normpath(f) for f in (getattr(cfg.data, part) or ())]
        if part == "train":
            files += extra
        return [short[f] for f in files] if args.coulomb else files

    steps, al_files = al_steps(HERE / "models" / "base.toml", cfgs["base"].model.species,
                               data_of(cfgs["base"], "train"), pyfit, args,
                               data_of(cfgs["base"], "valid") if args.coulomb else ())
    for path in al_files:
        if path.is_file():
            print(f"=== active learning: reusing {path}", flush=True)
    if steps and not args.dry_run:
        (HERE / "models" / out_dir(args) / "al").mkdir(parents=True, exist_ok=True)
    for r, cmd in steps:
        shown = cmd[2:] if cmd[:len(pyfit)] == pyfit else cmd[1:]
        rc = call(f"active learning, round {r}", cmd, shown)
        if rc != 0:
            return rc
    if al_files:
        print(f"=== the models are fitted to {len(train)} training file(s) and "
              f"{len(al_files)} active-learning file(s): "
              f"{' '.join(p.name for p in al_files)}", flush=True)
    for m in models:
        cfg = cfgs[m]
        method = (cfg.compression or {}).get("method")
        if method in ("rmf", "mfra") and args.from_base:
            cmds = compress_commands(cfg, cfgs["base"], pyfit, args, al_files,
                                     data_of(cfg, "train"))
            absent = [c[c.index("compress") + 1] for c in cmds if "compress" in c
                      and not Path(c[c.index("compress") + 1]).is_file()]
            if absent and "base" not in models and not args.dry_run:
                print(f"train_all.py: error: {m} starts from the base ensemble, but "
                      f"{absent[0]} does not exist: train base first", file=sys.stderr)
                return 2
        else:
            cmd = pyfit + ["train", str(HERE / "models" / f"{m}.toml"), *train_overrides(args)]
            if al_files or args.coulomb or extra:
                cmd += ["--train", *data_of(cfg, "train"), *map(str, al_files)]
            if args.coulomb:
                if cfg.data.valid:
                    cmd += ["--valid", *data_of(cfg, "valid")]
                cmd += ["-o", str(out_path(cfg.output.potential, args))]
            cmds = [cmd]
        for cmd in cmds:
            rc = call(m, cmd, cmd[2:])
            if rc != 0:
                return rc
    print(f"=== done: potentials in {HERE / 'models' / out_dir(args)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
