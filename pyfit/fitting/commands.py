"""``pyfit train`` and ``pyfit plot``: argument parsers and the commands (thin: the work is in
:mod:`pyfit.fitting.trainer` and :mod:`pyfit.fitting.plots`). Imports nothing heavy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TRAIN_EPILOG = """examples:
  pyfit train fit.toml
  pyfit train --level 16 --train a.cfg --valid b.cfg -o pot.mtp
  pyfit train fit.toml --resume          (continue from the checkpoint)
flags override the settings of CONFIG; see the README for the TOML keys."""


def add_train_parser(sub) -> None:
    t = sub.add_parser("train", help="fit an MTP (TOML config and/or flags)",
                       epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("config", nargs="?", type=Path, help="TOML file (optional with --train)")
    t.add_argument("--train", nargs="+", help="training files")
    t.add_argument("--valid", nargs="+", help="validation files")
    t.add_argument("--valid-fraction", type=float, help="hold out this fraction instead")
    t.add_argument("--level", type=int)
    t.add_argument("--species", help="element of each type index, e.g. 'Nb,Mo,Ta,W'")
    t.add_argument("--min-dist", type=float)
    t.add_argument("--max-dist", type=float)
    t.add_argument("--radial-basis-size", type=int)
    t.add_argument("--init", help="start from this trained potential (.mtp / .mtplr) of the "
                                  "same or a lower level (embedded exactly) instead of random "
                                  "coefficients")
    t.add_argument("--energy-weight", type=float)
    t.add_argument("--force-weight", type=float)
    t.add_argument("--stress-weight", type=float)
    t.add_argument("--method", choices=["bfgs", "lbfgs"])
    t.add_argument("--max-iter", type=int)
    t.add_argument("--max-time", type=float, help="seconds of wall time")
    t.add_argument("--rel-tol", type=float,
                   help="stop when the loss fell by less than this fraction over 50 iterations")
    t.add_argument("--linear-solve-every", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--threads", type=int, help="0 = all cores")
    t.add_argument("--n-models", type=int, help="ensemble size")
    t.add_argument("-o", "--output", help="potential file (ensembles: pot.0.mtp, ...)")
    t.add_argument("--log", help="JSON-lines log (default: potential path with .jsonl)")
    t.add_argument("--checkpoint", help="checkpoint (default: potential path with .ckpt.npz)")
    t.add_argument("--checkpoint-every", type=int)
    t.add_argument("--progress-every", type=int)
    t.add_argument("--resume", action="store_true", help="continue from the checkpoint(s)")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.set_defaults(func=cmd_train)


def _paths(values):
    return None if values is None else [str(Path(v)) for v in values]


def cmd_train(args) -> int:
    from pyfit.errors import PyfitError
    from pyfit.fitting.config import TrainConfig, apply_overrides, load_config
    from pyfit.fitting.trainer import TrainingInterrupted, fit

    cfg = load_config(args.config) if args.config is not None else TrainConfig()
    species = None
    if args.species:
        species = [s for s in args.species.replace(",", " ").split()]
    overrides = {
        "data": {"train": _paths(args.train), "valid": _paths(args.valid),
                 "valid_fraction": args.valid_fraction},
        "model": {"level": args.level, "species": species, "min_dist": args.min_dist,
                  "max_dist": args.max_dist, "radial_basis_size": args.radial_basis_size,
                  "init": None if args.init is None else str(Path(args.init))},
        "loss": {"energy": args.energy_weight, "forces": args.force_weight,
                 "stress": args.stress_weight},
        "optimizer": {"method": args.method, "max_iter": args.max_iter,
                      "max_time": args.max_time, "rel_tol": args.rel_tol,
                      "linear_solve_every": args.linear_solve_every,
                      "seed": args.seed, "threads": args.threads, "n_models": args.n_models},
        "output": {"potential": args.output, "log": args.log, "checkpoint": args.checkpoint,
                   "checkpoint_every": args.checkpoint_every,
                   "progress_every": args.progress_every},
    }
    cfg = apply_overrides(cfg, overrides).validate()
    try:
        result = fit(None, cfg, resume=args.resume, progress=not args.quiet)
    except TrainingInterrupted as exc:
        print(f"pyfit train: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:  # pragma: no cover - a second Ctrl-C outside the guarded loop
        raise PyfitError("interrupted") from None
    paths = ", ".join(str(m.potential_path) for m in result.models)
    print(f"pyfit train: wrote {paths}; log {cfg.log_path()}", file=sys.stderr)
    return 0


def add_plot_parser(sub) -> None:
    p = sub.add_parser("plot", help="parity plot of a potential, loss curve of a training log "
                                    "(needs matplotlib)")
    kinds = p.add_subparsers(dest="kind", required=True)
    par = kinds.add_parser("parity", help="predicted vs. reference energy/forces/stress")
    par.add_argument("potential", type=Path)
    par.add_argument("data", type=Path, nargs="+")
    par.add_argument("--species", help="element of each type index (ASE formats)")
    par.add_argument("-o", "--output", type=Path, required=True, help="image file (.png, .pdf)")
    par.add_argument("--threads", type=int, default=1)
    par.set_defaults(func=cmd_plot_parity)
    lo = kinds.add_parser("loss", help="loss and errors against iteration from a training log")
    lo.add_argument("log", type=Path, help="JSON-lines log written by pyfit train")
    lo.add_argument("-o", "--output", type=Path, required=True, help="image file (.png, .pdf)")
    lo.set_defaults(func=cmd_plot_loss)


def cmd_plot_parity(args) -> int:
    from pyfit.fitting.plots import parity_plot

    species = args.species.replace(",", " ").split() if args.species else None
    parity_plot(args.potential, args.data, args.output, species=species,
                n_threads=args.threads)
    print(f"pyfit plot: wrote {args.output}", file=sys.stderr)
    return 0


def cmd_plot_loss(args) -> int:
    from pyfit.fitting.plots import loss_plot

    loss_plot(args.log, args.output)
    print(f"pyfit plot: wrote {args.output}", file=sys.stderr)
    return 0
