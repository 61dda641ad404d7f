"""Command-line parts of the low-rank compression: ``pyfit compress``, ``pyfit rank-scan`` and
what ``pyfit info`` prints for factored files and with ``--spectrum``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from pyfit.errors import PyfitError

__all__ = ["add_compress_parser", "add_rank_scan_parser", "lowrank_info", "spectrum_info"]


def _species(text):
    return [s for s in text.replace(",", " ").split()] if text else None


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(t) for t in text.replace(",", " ").split()]
    except ValueError:
        raise PyfitError(f"{what}: expected integers separated by commas, found {text!r}") from None
    if not values:
        raise PyfitError(f"{what}: expected at least one integer, found {text!r}")
    return values


def _float_list(text: str, what: str) -> list[float]:
    try:
        return [float(t) for t in text.replace(",", " ").split()]
    except ValueError:
        raise PyfitError(f"{what}: expected numbers separated by commas, found {text!r}") from None


def _read_data(paths, species):
    from pyfit.io.dataset import read_configurations

    configs = []
    for p in paths:
        configs += read_configurations(p, species=species)
    return configs


def _load_potential(path, species):
    from pyfit.io.lowrank_file import read_potential

    return read_potential(path, species=_species(species))


# --------------------------------------------------------------------------- compress
def progress_printer(every: int, stream=None):
    """A fit callback ``(k, f, ...)`` that prints ``compress: iteration k  loss f  (s per
    iteration)`` to ``stream`` (default ``sys.stderr``) every ``every`` iterations and never
    stops the fit; ``None`` for ``every == 0``."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise PyfitError(f"--progress: expected an integer >= 0 (0: quiet), found {every!r}")
    if every == 0:
        return None
    last = {"k": 0, "t": time.perf_counter()}

    def callback(k, f, *_):
        if k % every == 0 and k > last["k"]:
            now = time.perf_counter()
            rate = (now - last["t"]) / (k - last["k"])
            print(f"compress: iteration {k:6d}  loss {f:.6e}  ({rate:.3f} s/iteration)",
                  file=stream or sys.stderr, flush=True)
            last.update(k=k, t=now)
        return False

    return callback


def cmd_compress(args) -> int:
    from pyfit.fitting.loss import LossWeights
    from pyfit.lowrank.compress import compress

    from pyfit.io.lowrank_file import file_kind
    from pyfit.io.mtp_file import read_mtp

    pot, names = None, _species(args.species)
    if file_kind(args.potential) == "mtp":
        model = read_mtp(args.potential)
        if not model.is_trained:  # a template: fitted from a random start
            if not args.finetune:
                raise PyfitError(f"{args.potential} is untrained (a template): give "
                                 f"--finetune DATA to fit a compressed potential from a "
                                 f"random start")
            pot = model
    if pot is None:
        pot = _load_potential(args.potential, args.species)
        names = pot.species
    given = [a for a in ("rank", "ranks", "compression") if getattr(args, a) is not None]
    if len(given) != 1:
        raise PyfitError("give exactly one of --rank R, --ranks r1,r2,r3 or --compression F")
    ranks = None
    if args.ranks is not None:
        ranks = tuple(_int_list(args.ranks, "--ranks"))
        if args.method != "tf":
            raise PyfitError(f"--ranks r1,r2,r3 is for --method tf; use --rank R with "
                             f"--method {args.method}")
    if args.rank is not None and args.method == "tf":
        raise PyfitError("--method tf takes --ranks r1,r2,r3 (or --compression F), not --rank")
    progress = progress_printer(args.progress)
    configs = _read_data(args.finetune, names) if args.finetune else None
    t0 = time.perf_counter()
    res = compress(pot, args.method, rank=args.rank, ranks=ranks, compression=args.compression,
                   unfolding=args.unfolding, configs=configs, max_iter=args.max_iter,
                   linear_solve_every=args.linear_solve_every,
                   weights=LossWeights(args.energy_weight, args.force_weight,
                                       args.stress_weight),
                   n_threads=args.threads, sufficient_descent=args.sufficient_descent,
                   r0=args.r0, delta_r=args.delta_r, every=args.every, seed=args.seed,
                   species=names, callback=progress)
    res.potential.save(args.output)
    info = res.as_dict()
    info.update(output=str(args.output), seconds=round(time.perf_counter() - t0, 3))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{args.potential} -> {args.output}: method {res.method}, ranks "
          f"{','.join(map(str, res.ranks))}, radial parameters {res.n_radial_dense} -> "
          f"{res.n_radial} ({100 * (1 - res.n_radial / res.n_radial_dense):.1f}% removed)")
    if res.loss_dense is None and configs is not None:  # an untrained template
        print(f"fitted from a random start (seed {args.seed}) on {len(configs)} configurations: "
              f"loss {res.loss_truncated:.6e} -> {res.loss_final:.6e} after {res.n_iter} "
              f"iterations ({res.message})")
        return 0
    print(f"truncation: relative error {res.truncation_error:.3e} of the radial tensor")
    if configs is not None:
        print(f"fine-tuning on {len(configs)} configurations: loss dense {res.loss_dense:.6e}, "
              f"truncated {res.loss_truncated:.6e}, after {res.n_iter} iterations "
              f"{res.loss_final:.6e} ({res.message})")
    return 0


def add_compress_parser(sub) -> None:
    c = sub.add_parser("compress", help="compress a trained potential (low-rank radial tensor)",
                       description="SVD (mf, rmf, mfra) or TT-SVD (tf) of the radial "
                                   "coefficient tensor of a trained potential (.mtp or "
                                   "factored), optionally followed by a short refit on data; "
                                   "writes the factored MTP-LOWRANK file.")
    c.add_argument("potential", type=Path,
                   help="trained potential (MLIP .mtp or MTP-LOWRANK); an untrained template "
                        "(pyfit basis) with --finetune DATA is fitted from a random start")
    c.add_argument("--method", choices=["mf", "rmf", "mfra", "tf"], default="mf")
    c.add_argument("--rank", type=int, help="matrix rank (mf, rmf, mfra)")
    c.add_argument("--ranks", help="TT ranks r1,r2,r3 (tf)")
    c.add_argument("--compression", type=float,
                   help="instead of ranks: fraction of radial parameters to remove, e.g. 0.5")
    c.add_argument("--unfolding", choices=["pairs", "pairs_funcs"], default="pairs")
    c.add_argument("--finetune", type=Path, nargs="+", metavar="DATA",
                   help="labelled configurations to refit on (.cfg, NbMoTaW .json, ase)")
    c.add_argument("--max-iter", type=int, default=100, help="refit iterations (default 100)")
    c.add_argument("--seed", type=int, default=0, help="random start of an untrained template")
    c.add_argument("--linear-solve-every", type=int, default=50)
    c.add_argument("--sufficient-descent", type=float, default=1e-4, help="R-MF (default 1e-4)")
    c.add_argument("--r0", type=int, help="MFRA starting rank (default rank // 2)")
    c.add_argument("--delta-r", type=int, default=1, help="MFRA rank increment (default 1)")
    c.add_argument("--every", type=int, help="MFRA augmentation interval (default: reach the "
                                             "rank halfway through --max-iter)")
    c.add_argument("--energy-weight", type=float, default=1.0)
    c.add_argument("--force-weight", type=float, default=0.01)
    c.add_argument("--stress-weight", type=float, default=0.001)
    c.add_argument("--species", help="element symbols of the species indices, e.g. 'Nb,Mo,Ta,W'")
    c.add_argument("--threads", type=int, default=0, help="0 = all available cores")
    c.add_argument("--progress", type=int, default=10, metavar="N",
                   help="with --finetune: print the iteration, loss and seconds per iteration "
                        "to stderr every N iterations (default 10; 0: quiet)")
    c.add_argument("--json", action="store_true")
    c.add_argument("-o", "--output", type=Path, required=True, help="factored file (.mtplr)")
    c.set_defaults(func=cmd_compress)


# --------------------------------------------------------------------------- rank scan
def cmd_rank_scan(args) -> int:
    from pyfit.fitting.loss import LossWeights
    from pyfit.lowrank.compress import format_scan, pick_ranks, plot_scan, rank_scan

    pot = _load_potential(args.potential, args.species)
    train = _read_data(args.data, pot.species)
    if args.valid:
        valid = _read_data(args.valid, pot.species)
    else:
        if not 0 < args.valid_fraction < 1:
            raise PyfitError(f"--valid-fraction: expected 0 < f < 1, found {args.valid_fraction}")
        rng = np.random.default_rng(args.split_seed)
        order = rng.permutation(len(train))
        n_valid = max(1, int(round(args.valid_fraction * len(train))))
        if n_valid >= len(train):
            raise PyfitError(f"--valid-fraction {args.valid_fraction} leaves no training data "
                             f"({len(train)} configurations)")
        valid = [train[i] for i in order[:n_valid]]
        train = [train[i] for i in order[n_valid:]]
    ranks = fractions = None
    if args.ranks is not None:
        if args.method == "tf":
            ranks = [tuple(_int_list(t, "--ranks")) for t in args.ranks.split(";")]
        else:
            ranks = _int_list(args.ranks, "--ranks")
    else:
        fractions = _float_list(args.fractions, "--fractions")
    printer = None
    if not args.json:
        def printer(row):
            print(f"  {row.method} ranks {','.join(map(str, row.ranks))}: {row.n_radial} radial, "
                  f"valid loss {row.valid_loss:.4e}", file=sys.stderr)
    rows, base = rank_scan(pot, train, valid, args.method, ranks=ranks, fractions=fractions,
                           unfolding=args.unfolding, max_iter=args.max_iter,
                           linear_solve_every=args.linear_solve_every,
                           weights=LossWeights(args.energy_weight, args.force_weight,
                                               args.stress_weight),
                           n_threads=args.threads, progress=printer)
    picks = pick_ranks(rows, min_removed=args.min_removed)
    table = {"base": base, "n_train": len(train), "n_valid": len(valid),
             "max_iter": args.max_iter,
             "rows": [dict(vars(r), ranks=list(r.ranks)) for r in rows],
             "optimal": None if picks["optimal"] is None else list(picks["optimal"].ranks),
             "half": None if picks["half"] is None else list(picks["half"].ranks)}
    if args.output:
        Path(args.output).write_text(json.dumps(table, indent=2) + "\n")
    if args.plot:
        plot_scan(rows, base, picks, args.plot)
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    print(f"{len(train)} training / {len(valid)} validation configurations, {args.max_iter} "
          f"refit iterations per rank")
    print(format_scan(rows, base, picks))
    opt = picks["optimal"]
    print(f"optimal (lowest validation loss removing >= {100 * args.min_removed:.0f}% of the "
          f"radial parameters): "
          + ("none" if opt is None else f"ranks {','.join(map(str, opt.ranks))}"))
    print(f"~50%: ranks {','.join(map(str, picks['half'].ranks))} "
          f"({100 * picks['half'].removed:.1f}% removed)")
    return 0


def add_rank_scan_parser(sub) -> None:
    s = sub.add_parser("rank-scan", help="compress at a sweep of ranks, validation loss vs "
                                         "radial parameters, pick the optimal rank")
    s.add_argument("potential", type=Path, help="trained potential (.mtp or MTP-LOWRANK)")
    s.add_argument("--data", type=Path, nargs="+", required=True, help="training data")
    s.add_argument("--valid", type=Path, nargs="+", help="validation data (default: hold out "
                                                        "--valid-fraction of --data)")
    s.add_argument("--valid-fraction", type=float, default=0.2)
    s.add_argument("--split-seed", type=int, default=0)
    s.add_argument("--method", choices=["mf", "rmf", "mfra", "tf"], default="mf")
    s.add_argument("--ranks", help="ranks to scan, e.g. 1,2,3,4 (tf: '2,4,2;3,6,3')")
    s.add_argument("--fractions", default="0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8",
                   help="if no --ranks: fractions of radial parameters to remove")
    s.add_argument("--unfolding", choices=["pairs", "pairs_funcs"], default="pairs")
    s.add_argument("--max-iter", type=int, default=50, help="refit iterations per rank")
    s.add_argument("--linear-solve-every", type=int, default=50)
    s.add_argument("--min-removed", type=float, default=0.2,
                   help="the optimal rank removes at least this share (default 0.2, the paper's)")
    s.add_argument("--energy-weight", type=float, default=1.0)
    s.add_argument("--force-weight", type=float, default=0.01)
    s.add_argument("--stress-weight", type=float, default=0.001)
    s.add_argument("--species", help="element symbols of the species indices")
    s.add_argument("--threads", type=int, default=0)
    s.add_argument("--plot", type=Path, help="PNG: validation loss vs radial parameters")
    s.add_argument("-o", "--output", type=Path, help="JSON table")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_rank_scan)


# --------------------------------------------------------------------------- info
def lowrank_info(path):
    """``(model, extra)``: the model of a factored file and the entries ``pyfit info`` adds."""
    from pyfit.io.lowrank_file import read_lowrank
    from pyfit.lowrank.factors import LowRank

    data = read_lowrank(path)
    f, m = data.factors, data.model
    base = m.n_radial_params
    extra = {"species_names": ", ".join(data.species_names) if data.species_names else None,
             "fit method": {"mf": "MF", "rmf": "R-MF", "mfra": "MFRA", "tf": "TF",
                            None: "not recorded"}[data.fit_method]}
    if isinstance(f, LowRank):
        rows, cols = f.matrix_shape
        extra.update({
            "radial form": f"mf (MF / R-MF / MFRA), unfolding {f.unfolding} ({rows} x {cols})",
            "rank": f.rank,
            "radial parameters (dense)": base,
            "radial parameters (MF factors)": f"{f.n_params} ({100 * (1 - f.n_params / base):.1f}% "
                                              f"removed)",
            "radial parameters (R-MF manifold)":
                f"{f.n_params_riemannian} ({100 * (1 - f.n_params_riemannian / base):.1f}% "
                f"removed)",
        })
    else:
        extra.update({
            "radial form": "tt (TF)",
            "tt ranks": ", ".join(map(str, f.ranks)),
            "radial parameters (dense)": base,
            "radial parameters (TT cores)": f"{f.n_params} ({100 * (1 - f.n_params / base):.1f}% "
                                            f"removed)",
        })
    extra["total parameters (stored)"] = m.n_params - base + f.n_params
    return m, extra


def spectrum_info(model, unfolding: str, plot=None) -> tuple[list, str]:
    from pyfit.lowrank.compress import format_spectrum, plot_spectrum, spectrum

    rows = spectrum(model, unfolding)
    if plot:
        plot_spectrum(rows, plot)
    return rows, format_spectrum(rows, model.n_radial_params)
