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

Potentials: ``models/out/<model>.<k>.mtp`` (base, MLIP format) and ``.mtplr`` (MTP-LOWRANK).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
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


def compress_commands(cfg, base_cfg, pyfit, args) -> list[list[str]]:
    """``--from-base``: one ``pyfit compress`` command per ensemble member of an rmf / mfra
    model, starting from the base member of the same index."""
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
        src = base_cfg.potential_path(k if base_cfg.optimizer.n_models > 1 else None)
        out = cfg.potential_path(k if n > 1 else None)
        cmd = pyfit + ["compress", str(src), "--method", method, *options, "--finetune",
                       *cfg.data.train, "-o", str(out),
                       "--max-iter", str(args.max_iter or cfg.optimizer.max_iter),
                       "--linear-solve-every", str(cfg.optimizer.linear_solve_every),
                       "--energy-weight", str(cfg.loss.energy),
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
    p.add_argument("--resume", action="store_true", help="pyfit train --resume")
    p.add_argument("--from-base", action="store_true", help="rmf / mfra members start from "
                   "the trained base members (compress + refit) instead of from scratch")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = p.parse_args(argv)
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
    train = cfgs["base"].data.train
    missing = [t for t in train if not Path(t).is_file()]
    if missing and not args.dry_run:
        print(f"train_all.py: error: {missing[0]} not found; run make_training_data.py first",
              file=sys.stderr)
        return 2
    pyfit, env = pyfit_command()
    (HERE / "models" / "out").mkdir(exist_ok=True)
    for m in models:
        cfg = cfgs[m]
        method = (cfg.compression or {}).get("method")
        if method in ("rmf", "mfra") and args.from_base:
            cmds = compress_commands(cfg, cfgs["base"], pyfit, args)
            absent = [c[c.index("compress") + 1] for c in cmds if "compress" in c
                      and not Path(c[c.index("compress") + 1]).is_file()]
            if absent and "base" not in models and not args.dry_run:
                print(f"train_all.py: error: {m} starts from the base ensemble, but "
                      f"{absent[0]} does not exist: train base first", file=sys.stderr)
                return 2
        else:
            cmd = pyfit + ["train", str(HERE / "models" / f"{m}.toml")]
            if args.max_iter is not None:
                cmd += ["--max-iter", str(args.max_iter)]
            if args.threads is not None:
                cmd += ["--threads", str(args.threads)]
            if args.resume:
                cmd += ["--resume"]
            cmds = [cmd]
        for cmd in cmds:
            print(f"=== {m} ({time.strftime('%H:%M:%S', time.gmtime())} UTC): "
                  f"{' '.join(cmd[2:])}", flush=True)
            if args.dry_run:
                continue
            rc = subprocess.call(cmd, env=env, cwd=HERE / "models")
            if rc != 0:
                print(f"train_all.py: error: {m} failed (exit {rc})", file=sys.stderr)
                return rc
    print(f"=== done: potentials in {HERE / 'models' / 'out'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
