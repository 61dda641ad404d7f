"""Training cost: seconds per BFGS iteration (one loss + gradient over the training set).

Data: a fixed 300-configuration subset of the NbMoTaW training files (seed 0), 4 species,
cutoff 5 Å, levels 12 and 16. Printed per level and thread count:
- `eval`: one energy + forces + stress evaluation of the whole subset (the baseline, measured in
  the same run);
- `grad`: loss + analytic gradient with respect to all parameters; `grad/eval` is the gradient's
  cost in evaluations (target: about 3 or less);
- `iter`: wall time per BFGS iteration of a short run of pyfit's optimizer (line search included,
  the first evaluation at x0 included too), the share of that time spent inside the kernel
  (loss/gradient calls) and the evaluations per iteration;
- `lin`: one exact least-squares solve of the linear parameters.

Usage: python bench/bench_training.py [--data DIR] [--levels 12 16] [--threads 1 2] [--iters 10]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from pathlib import Path

import numpy as np

from pyfit.fitting.loss import Loss
from pyfit.fitting.trainer import make_template
from pyfit.io.nbmotaw import read_nbmotaw_json
from pyfit.model import MTPModel

SPECIES = ["Mo", "Nb", "Ta", "W"]


def load_subset(data: Path, n: int, seed: int = 0):
    configs = []
    for path in sorted(data.glob("*.json")):
        if not path.name.endswith("_Test.json"):
            configs += read_nbmotaw_json(path, species=SPECIES)
    rng = np.random.default_rng(seed)
    return [configs[i] for i in sorted(rng.choice(len(configs), n, replace=False))]


def template(level: int) -> MTPModel:
    """Untrained 4-species MTP: cutoff 1.9..5 Å, radial basis size 8."""
    return make_template(level, 4, 1.9, 5.0, 8)


def best_time(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


class TimedLoss:
    """Counts the time spent inside the kernel's loss calls."""

    def __init__(self, loss):
        self.loss, self.kernel_time = loss, 0.0

    def __call__(self, x):
        t0 = time.perf_counter()
        out = self.loss.value_and_grad(x)
        self.kernel_time += time.perf_counter() - t0
        return out


def bfgs_iteration_time(loss: Loss, x0: np.ndarray, iters: int) -> tuple[float, float, float]:
    """(seconds per iteration, kernel share, evaluations per iteration) of pyfit's BFGS."""
    from pyfit.fitting.optimize import minimize_bfgs

    timed = TimedLoss(loss)
    t0 = time.perf_counter()
    res = minimize_bfgs(timed, x0, max_iter=iters)
    wall = time.perf_counter() - t0
    return wall / res.n_iter, timed.kernel_time / wall, res.n_evals / res.n_iter


def main(argv=None) -> None:
    root = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=root.parent / "shared" / "data" / "NbMoTaW")
    p.add_argument("--levels", type=int, nargs="+", default=[12, 16])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--n-configs", type=int, default=300)
    args = p.parse_args(argv)
    configs = load_subset(args.data, args.n_configs)
    n_atoms = sum(c.n_atoms for c in configs)
    print(f"# pyfit training benchmark, {datetime.date.today()}, {platform.machine()}, "
          f"{len(configs)} NbMoTaW configurations ({n_atoms} atoms), 4 species", flush=True)
    print(f"{'level':>5} {'threads':>7} {'params':>6} {'eval s':>8} {'grad s':>8} {'grad/eval':>9} "
          f"{'iter s':>8} {'kernel %':>8} {'evals/it':>8} {'lin s':>7}")
    for level in args.levels:
        for nt in args.threads:
            loss = Loss(template(level), configs, n_threads=nt)
            x0 = loss.initial_params(np.random.default_rng(1))
            t_eval = best_time(lambda: loss.value(x0))
            t_grad = best_time(lambda: loss.value_and_grad(x0))
            t_lin = best_time(lambda: loss.linear_solve(x0), repeats=1)
            t_iter, share, evals = bfgs_iteration_time(loss, x0, args.iters)
            print(f"{level:>5} {nt:>7} {loss.n_params:>6} {t_eval:8.3f} {t_grad:8.3f} "
                  f"{t_grad / t_eval:9.2f} {t_iter:8.3f} {100 * share:8.1f} {evals:8.2f} "
                  f"{t_lin:7.2f}", flush=True)


if __name__ == "__main__":
    main()
