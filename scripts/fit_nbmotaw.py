"""Level-16 NbMoTaW fit used for the accuracy table in BENCHMARKS.md (interim driver).

Trains on every non-Test file of ../shared/data/NbMoTaW (4 species, cutoff 5 Å) with scipy's
L-BFGS-B over all parameters in rounds, the linear parameters re-solved exactly by least squares
between rounds (as MLIP does), and reports errors on each *_Test.json file after every round.
Restartable: the parameters are checkpointed (npz + MLIP .mtp) after every round.

Usage: python scripts/fit_nbmotaw.py OUTDIR [--level 16] [--hours 2] [--threads 2] [--seed 0]
              [--weight AIMD=4 --weight Surface=10 ...] [--forces 0.01] [--init OLD/checkpoint.npz]
       python scripts/fit_nbmotaw.py OUTDIR --table     (markdown table of the last round)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from pyfit.fitting.loss import Loss, LossWeights
from pyfit.fitting.trainer import make_template
from pyfit.io.mtp_file import write_mtp
from pyfit.io.nbmotaw import read_nbmotaw_json
from pyfit.metrics import compute_errors
from pyfit.model import MTPModel
from pyfit.potential import MTP

SPECIES = ["Mo", "Nb", "Ta", "W"]


def template(level: int) -> MTPModel:
    """Untrained 4-species MTP: cutoff 1.9..5 Å, radial basis size 8."""
    return make_template(level, 4, 1.9, 5.0, 8)


def print_table(log: Path) -> None:
    rec = json.loads(log.read_text().splitlines()[-1])
    print(f"After {rec['iterations']} L-BFGS iterations, {rec['wall_s'] / 3600:.2f} h wall, "
          f"loss {rec['loss']:.4e}; train E RMSE {rec['train']['E_rmse_meV']:.1f} meV/atom, "
          f"F RMSE {rec['train']['F_rmse']:.3f} eV/Å\n")
    print("| test file | E MAE (meV/atom) | E RMSE (meV/atom) | F MAE (eV/Å) | F RMSE (eV/Å) "
          "| S RMSE (GPa) |")
    print("|---|---|---|---|---|---|")
    for name, e in rec.items():
        if name.endswith("_Test"):
            print(f"| {name} | {e['E_mae_meV']:.1f} | {e['E_rmse_meV']:.1f} | {e['F_mae']:.3f} "
                  f"| {e['F_rmse']:.3f} | {e['S_rmse_GPa']:.2f} |")


def main(argv=None):
    root = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser()
    p.add_argument("outdir", type=Path)
    p.add_argument("--data", type=Path, default=root.parent / "shared" / "data" / "NbMoTaW")
    p.add_argument("--level", type=int, default=16)
    p.add_argument("--hours", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--round-iters", type=int, default=100)
    p.add_argument("--weight", action="append", default=[], metavar="SUFFIX=W",
                   help="configuration weight W for every training file whose stem ends in "
                        "_SUFFIX (e.g. Surface=10); default 1")
    p.add_argument("--forces", type=float, default=0.01, help="force weight of the loss")
    p.add_argument("--init", type=Path, default=None,
                   help="start from the parameters of another run's checkpoint.npz")
    p.add_argument("--table", action="store_true", help="print the last round as a table")
    args = p.parse_args(argv)
    if args.table:
        print_table(args.outdir / "log.jsonl")
        return
    args.outdir.mkdir(parents=True, exist_ok=True)
    (args.outdir / "settings.json").write_text(json.dumps(
        {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, indent=1))
    file_weights = {}
    for item in args.weight:
        suffix, _, w = item.partition("=")
        try:
            file_weights[suffix] = float(w)
        except ValueError:
            p.error(f"--weight {item!r}: expected SUFFIX=NUMBER, e.g. Surface=10")
    train, weights, tests = [], [], {}
    for path in sorted(args.data.glob("*.json")):
        cfgs = read_nbmotaw_json(path, species=SPECIES)
        if path.name.endswith("_Test.json"):
            tests[path.stem] = cfgs
        else:
            train += cfgs
            weights += [file_weights.get(path.stem.rsplit("_", 1)[-1], 1.0)] * len(cfgs)
    loss = Loss(template(args.level), train, n_threads=args.threads,
                weights=LossWeights(forces=args.forces), config_weights=weights)
    ckpt = args.outdir / "checkpoint.npz"
    t_start = time.time()
    if ckpt.exists():
        st = np.load(ckpt)
        x, it_total, wall0 = st["x"], int(st["iterations"]), float(st["wall"])
    elif args.init is not None:
        st = np.load(args.init)
        x, it_total, wall0 = st["x"], int(st["iterations"]), float(st["wall"])
    else:
        x = loss.initial_params(np.random.default_rng(args.seed))
        it_total, wall0 = 0, 0.0
    log = open(args.outdir / "log.jsonl", "a")
    while time.time() - t_start < args.hours * 3600:
        res = minimize(loss.value_and_grad, x, jac=True, method="L-BFGS-B",
                       options={"maxiter": args.round_iters, "maxcor": 50, "ftol": 1e-14,
                                "gtol": 1e-12})
        it_total += int(res.nit)
        x_lin = loss.linear_solve(res.x)
        f_lin = loss.value(x_lin)
        x = x_lin if f_lin < res.fun else res.x
        wall = wall0 + time.time() - t_start
        np.savez(args.outdir / "checkpoint.tmp.npz", x=x, iterations=it_total, wall=wall)
        (args.outdir / "checkpoint.tmp.npz").replace(ckpt)
        model = loss.unpack(x)
        write_mtp(model, args.outdir / "pot.mtp")
        pot = MTP(model)
        rec = {"iterations": it_total, "wall_s": round(wall, 1), "loss": min(f_lin, res.fun),
               "loss_before_lin": res.fun}
        train_err = loss.errors(x)
        rec["train"] = {"E_rmse_meV": 1e3 * train_err.energy_rmse,
                        "F_rmse": train_err.forces_rmse}
        for name, cfgs in tests.items():
            e = compute_errors(pot, cfgs)
            rec[name] = {"E_mae_meV": 1e3 * e.energy_mae, "E_rmse_meV": 1e3 * e.energy_rmse,
                         "F_mae": e.forces_mae, "F_rmse": e.forces_rmse,
                          "S_rmse_GPa": e.stress_rmse}
        log.write(json.dumps(rec) + "\n")
        log.flush()
        print(json.dumps({k: rec[k] for k in ("iterations", "wall_s", "loss", "train")}),
              flush=True)


if __name__ == "__main__":
    main()
