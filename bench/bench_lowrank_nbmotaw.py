"""NbMoTaW level-16 comparison of compressed MTPs (the low-rank paper's Table 2, small scale).

Base (dense), MF, R-MF, MFRA and TF MTPs are fitted from random starts on a fixed random subset
of the NbMoTaW training files (../shared/data/NbMoTaW, 4 species, cutoff 5 Å), each for the same
number of iterations, with 3 seeds; errors are measured on a fixed random subset of the *_Test
files. Ranks: the "optimal" MF rank is picked by ``pyfit.lowrank.compress.rank_scan`` (compress
the seed-0 base fit at ranks 3..10, refit each briefly on the training subset, lowest loss on a
separate validation subset among ranks that remove >= 20 % of the radial parameters); the other
methods use the rank with the closest radial parameter count (R-MF, TF) and MFRA the MF rank.
"~50 %" ranks are the ones closest to half of the 512 radial parameters.

Every fit is appended to OUT/runs.jsonl as soon as it finishes (the script skips fits already
there, so it can be stopped and resumed); OUT/table.md is the summary (mean ± std over seeds,
how many fits met the stopping rule, and the compression issue's force-RMSE targets judged).
Two copies of the script may run on one OUT at once (one per core): each fit is claimed by a
file OUT/claims/<label>_seed<k> holding the process id before it starts, so the copies share
the fits; a claim whose process is no longer running is taken over on the next start.

Usage: python bench/bench_lowrank_nbmotaw.py OUT [--n-train 150] [--n-valid 50] [--n-test 100]
       [--iters 150] [--rel-tol 0 --rel-window 100] [--exclude-test Multinary_Test]
       [--seeds 0,1,2] [--threads 1] [--table-only]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

import numpy as np

from pyfit.fitting.loss import Loss
from pyfit.fitting.trainer import make_template
from pyfit.io.nbmotaw import read_nbmotaw_json
from pyfit.lowrank.compress import pick_ranks, rank_scan
from pyfit.lowrank.fit import fit_euclidean, fit_objective
from pyfit.lowrank.objective import (MatrixObjective, TTObjective, rank_for_compression,
                                     tt_ranks_for_compression)
from pyfit.model import MTPModel

SPECIES = ["Mo", "Nb", "Ta", "W"]


class DenseObjective:
    """The base MTP: all C*C*K*R radial parameters free."""

    method = "base"

    def __init__(self, loss):
        self.loss = loss
        self.n_params = loss.n_params
        self.n_radial_params = loss.radial_slice.stop

    def initial(self, rng):
        return self.loss.initial_params(rng)

    def value(self, x):
        return self.loss.value(x)

    def value_and_grad(self, x):
        return self.loss.value_and_grad(x)

    def linear_solve(self, x):
        return self.loss.linear_solve(x)

    def dense(self, x):
        return np.asarray(x)


def template(level: int) -> MTPModel:
    """Untrained 4-species MTP: cutoff 1.9..5 Å, radial basis size 8."""
    return make_template(level, 4, 1.9, 5.0, 8)


def load(data: Path, n_train: int, n_valid: int, n_test: int, seed: int = 0,
         exclude_test: tuple[str, ...] = ()):
    """Random training / validation subsets of the training files and a random test subset of
    the ``*_Test`` files, leaving out the test files named in ``exclude_test`` (file stems)."""
    paths = sorted(data.glob("*.json"))
    if not paths:
        raise SystemExit(f"bench_lowrank_nbmotaw: no *.json files in {data}")
    stems = {path.stem for path in paths}
    unknown = sorted(set(exclude_test) - stems)
    if unknown:
        raise SystemExit(f"bench_lowrank_nbmotaw: --exclude-test {','.join(unknown)}: no such "
                         f"file in {data} (expected stems like Multinary_Test)")
    train, test = [], []
    for path in paths:
        if path.stem in exclude_test:
            continue
        cfgs = read_nbmotaw_json(path, species=SPECIES)
        (test if path.name.endswith("_Test.json") else train).extend(cfgs)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train))
    pick_test = rng.permutation(len(test))[:n_test]
    return ([train[i] for i in order[:n_train]],
            [train[i] for i in order[n_train:n_train + n_valid]],
            [test[i] for i in pick_test])


def record(obj, res, test: Loss, seconds: float, seed: int, label: str) -> dict:
    params = res.objective.dense(res.x)
    e = test.errors(params)
    return {"label": label, "method": res.method, "seed": seed,
            "ranks": list(res.ranks[-1:]) if res.ranks else
            (list(res.objective.ranks) if hasattr(res.objective, "ranks") else []),
            "n_radial": int(res.objective.n_radial_params), "train_loss": float(res.value),
            "test_loss": float(test.value(params)), "E_rmse": e.energy_rmse,
            "F_rmse": e.forces_rmse, "S_rmse": e.stress_rmse, "iters": int(res.n_iter),
            "seconds": round(seconds, 1), "message": res.message}


def claim(path: Path) -> bool:
    """Claims one fit for this process: creates ``path`` holding our pid; False when another
    running process holds it. A claim left by a process that is gone is taken over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(path.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid > 0 and pid != os.getpid():
                try:
                    os.kill(pid, 0)
                    return False
                except ProcessLookupError:
                    pass
                except PermissionError:
                    return False
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return True
    return False


def read_runs(path: Path) -> dict:
    done = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done[(r["label"], r["seed"])] = r
    return done


def main(argv=None):
    root = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser()
    p.add_argument("outdir", type=Path)
    p.add_argument("--data", type=Path, default=root.parent / "shared" / "data" / "NbMoTaW")
    p.add_argument("--level", type=int, default=16)
    p.add_argument("--n-train", type=int, default=150)
    p.add_argument("--n-valid", type=int, default=50)
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--iters", type=int, default=150)
    p.add_argument("--rel-tol", type=float, default=0.0,
                   help="also stop a fit when its loss falls by less than this fraction over "
                        "--rel-window iterations (MFRA: only at its final rank; 0: never)")
    p.add_argument("--rel-window", type=int, default=100)
    p.add_argument("--exclude-test", default="",
                   help="comma-separated *_Test file stems left out of the test subset")
    p.add_argument("--scan-iters", type=int, default=30)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", default="", help="comma-separated labels to run (default all)")
    p.add_argument("--table-only", action="store_true",
                   help="only write OUT/table.md from the fits in OUT/runs.jsonl so far")
    args = p.parse_args(argv)
    if args.iters < 1 or args.rel_tol < 0 or args.rel_window < 1:
        p.error("--iters and --rel-window must be >= 1 and --rel-tol >= 0")
    args.outdir.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.table_only:
        for name in ("runs.jsonl", "meta.json", "scan.json"):
            if not (args.outdir / name).exists():
                p.error(f"--table-only: {args.outdir / name} does not exist (run the fits first)")
        done = read_runs(args.outdir / "runs.jsonl")
        labels = list(dict.fromkeys(label for label, _ in done))
        meta = json.loads((args.outdir / "meta.json").read_text())
        meta["seeds"] = sorted({seed for _, seed in done})
        write_table(args.outdir, [(lab, None, None) for lab in labels], done, meta,
                    json.loads((args.outdir / "scan.json").read_text()))
        return
    exclude = tuple(s for s in args.exclude_test.split(",") if s)
    train, valid, test_cfgs = load(args.data, args.n_train, args.n_valid, args.n_test,
                                   exclude_test=exclude)
    tmpl = template(args.level)
    loss = Loss(tmpl, train, n_threads=args.threads)
    test = Loss(tmpl, test_cfgs, n_threads=args.threads)
    runs_path = args.outdir / "runs.jsonl"
    done = read_runs(runs_path)
    meta = {"n_train": len(train), "train_atoms": sum(c.n_atoms for c in train),
            "n_valid": len(valid), "n_test": len(test_cfgs),
            "test_atoms": sum(c.n_atoms for c in test_cfgs), "iters": args.iters,
            "level": args.level, "seeds": seeds, "rel_tol": args.rel_tol,
            "rel_window": args.rel_window, "exclude_test": list(exclude)}
    print(json.dumps(meta), flush=True)
    (args.outdir / "meta.json").write_text(json.dumps(meta) + "\n")

    def run(label, make, seed, **settings):
        if args.only and label not in args.only.split(","):
            return done.get((label, seed))
        done.update(read_runs(runs_path))
        if (label, seed) in done:
            return done[(label, seed)]
        tag = re.sub(r"[^\w.=-]+", "_", label) + f"_seed{seed}"
        claim_path = args.outdir / "claims" / tag
        if not claim(claim_path):
            return None
        obj = make()
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        if obj.method == "base":
            res = fit_euclidean(obj, obj.initial(rng), max_iter=args.iters,
                                linear_solve_every=50, rel_tol=args.rel_tol,
                                rel_window=args.rel_window)
            res.objective = obj
        else:
            res = fit_objective(obj, rng=rng, max_iter=args.iters, linear_solve_every=50,
                                rel_tol=args.rel_tol, rel_window=args.rel_window, **settings)
        rec = record(obj, res, test, time.perf_counter() - t0, seed, label)
        np.save(args.outdir / f"x_{tag}.npy", res.x)
        with open(runs_path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        done[(label, seed)] = rec
        print(json.dumps(rec), flush=True)
        return rec

    # 1. base fits and the rank scan on the first seed's base. The scan is claimed like a fit;
    # a second copy of the script fits the other seeds' bases meanwhile, then waits, and takes
    # over the first seed's base or the scan if the copy holding it is gone.
    shape = (4, 4, tmpl.radial_funcs_count, 8)
    scan_path = args.outdir / "scan.json"
    if (args.only and "base" not in args.only.split(",") and not scan_path.exists()
            and ("base", seeds[0]) not in done):
        p.error(f"--only without base: {scan_path} and the seed-{seeds[0]} base fit do not "
                "exist yet (run the base fit and rank scan first)")
    waiting = False
    while not scan_path.exists():
        if (run("base", lambda: DenseObjective(loss), seeds[0]) is not None
                and claim(args.outdir / "claims" / "scan") and not scan_path.exists()):
            x_base = np.load(args.outdir / f"x_base_seed{seeds[0]}.npy")
            rows, base = rank_scan(loss.unpack(x_base), train, valid, "mf",
                                   ranks=list(range(3, 11)), max_iter=args.scan_iters,
                                   n_threads=args.threads)
            picks = pick_ranks(rows)
            scan = {"rows": [dict(vars(r), ranks=list(r.ranks)) for r in rows], "base": base,
                    "optimal": list(picks["optimal"].ranks), "half": list(picks["half"].ranks)}
            tmp = scan_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(scan, indent=2) + "\n")
            tmp.replace(scan_path)
            break
        for seed in seeds[1:]:
            run("base", lambda: DenseObjective(loss), seed)
        if not scan_path.exists():
            if not waiting:
                print("waiting for the other process's base fit and rank scan", flush=True)
                waiting = True
            time.sleep(10)
    scan = json.loads(scan_path.read_text())
    print("scan:", scan["optimal"], scan["half"], flush=True)
    r_opt = scan["optimal"][0]
    m, n = 16, 4 * 8
    target = r_opt * (m + n)
    r_rmf_opt = min(range(1, m + 1), key=lambda r: (abs(r * (m + n - r) - target), r))
    tt_opt = tt_ranks_for_compression(shape, 1 - target / 512)
    r_half = rank_for_compression(shape, 0.5)
    r_rmf_half = rank_for_compression(shape, 0.5, method="rmf")
    tt_half = tt_ranks_for_compression(shape, 0.5)
    # MFRA from half the rank (at least 2), one rank every 20 iterations: a rank-1 start was
    # markedly worse within these short budgets (see BENCHMARKS.md)
    mfra = {"r0": max(2, r_opt // 2), "delta_r": 1, "every": 20}
    mfra_half = {"r0": max(2, r_half // 2), "delta_r": 1, "every": 20}
    configs = [
        ("base", lambda: DenseObjective(loss), {}),
        (f"mf r={r_opt} (opt)", lambda: MatrixObjective(loss, r_opt), {}),
        (f"rmf r={r_rmf_opt} (opt)", lambda: MatrixObjective(loss, r_rmf_opt, method="rmf"), {}),
        (f"mfra r={r_opt} (opt)", lambda: MatrixObjective(loss, r_opt, method="mfra"), mfra),
        (f"tf {tt_opt} (opt)", lambda: TTObjective(loss, tt_opt), {}),
        (f"mf r={r_half} (~50%)", lambda: MatrixObjective(loss, r_half), {}),
        (f"rmf r={r_rmf_half} (~50%)", lambda: MatrixObjective(loss, r_rmf_half, method="rmf"),
         {}),
        (f"mfra r={r_half} (~50%)", lambda: MatrixObjective(loss, r_half, method="mfra"),
         mfra_half),
        (f"tf {tt_half} (~50%)", lambda: TTObjective(loss, tt_half), {}),
    ]
    for seed in seeds:
        for label, make, settings in configs:
            run(label, make, seed, **settings)
    done.update(read_runs(runs_path))
    write_table(args.outdir, configs, done, meta, scan)


def write_table(outdir, configs, done, meta, scan):
    stop = f"at most {meta['iters']} iterations per fit"
    if meta.get("rel_tol"):
        stop += (f" (stopped when the loss fell by less than {meta['rel_tol']:g} of itself over "
                 f"{meta['rel_window']} iterations)")
    excluded = (f"; not from {', '.join(meta['exclude_test'])}" if meta.get("exclude_test")
                else "")
    lines = [f"NbMoTaW level {meta['level']}: {meta['n_train']} training configurations "
             f"({meta['train_atoms']} atoms), {meta['n_test']} test configurations "
             f"({meta['test_atoms']} atoms{excluded}), {stop}, seeds "
             f"{meta['seeds']}; rank scan: optimal MF rank {scan['optimal']}, ~50% "
             f"{scan['half']}.", "",
             "| model | radial params | iterations | stopped by the rule | train loss | test loss "
             "| E RMSE meV/atom | F RMSE eV/Å | S RMSE GPa |",
             "|---|---|---|---|---|---|---|---|---|"]

    def ms(values, scale=1.0, fmt="{:.3f}"):
        v = np.array(values, dtype=float) * scale
        return f"{fmt.format(v.mean())} ± {fmt.format(v.std(ddof=1) if len(v) > 1 else 0.0)}"

    groups = {label: [r for (lab, _), r in done.items() if lab == label]
              for label, _, _ in configs}
    for label, rs in groups.items():
        if not rs:
            continue
        stopped = sum(r.get("message", "").startswith("relative decrease") for r in rs)
        lines.append(f"| {label} | {rs[0]['n_radial']} | "
                     f"{ms([r['iters'] for r in rs], 1, '{:.0f}')} | {stopped} of {len(rs)} | "
                     f"{ms([r['train_loss'] for r in rs], 1e3, '{:.3f}')}e-3 | "
                     f"{ms([r['test_loss'] for r in rs], 1e3, '{:.3f}')}e-3 | "
                     f"{ms([r['E_rmse'] for r in rs], 1e3, '{:.2f}')} | "
                     f"{ms([r['F_rmse'] for r in rs], 1, '{:.4f}')} | "
                     f"{ms([r['S_rmse'] for r in rs], 1, '{:.3f}')} |")
    lines += targets(groups)
    (outdir / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def targets(groups: dict) -> list[str]:
    """The compression issue's targets on the mean test force RMSE over the seeds (``groups``:
    label -> its fits' records): at ~50 % compression within 3 % of the base's, at the optimal
    rank no worse than the base's."""
    if not groups.get("base"):
        return []
    base = float(np.mean([r["F_rmse"] for r in groups["base"]]))
    lines = ["", f"Targets (mean test force RMSE vs the base's {base:.4f} eV/Å over "
             f"{len(groups['base'])} seeds): ~50 %: at most +3 %; optimal rank: at most +0 %.", "",
             "| model | seeds | F RMSE vs base | target | met |", "|---|---|---|---|---|"]
    for label, rs in groups.items():
        if label == "base" or not rs:
            continue
        value, n = float(np.mean([r["F_rmse"] for r in rs])), len(rs)
        limit = 3.0 if "50%" in label else 0.0
        change = round(100.0 * (value / base - 1.0), 1) + 0.0  # judged as printed; no -0.0
        lines.append(f"| {label} | {n} | {change:+.1f} % | <= {limit:+.0f} % | "
                     f"{'yes' if change <= limit else 'NO'} |")
    return lines


if __name__ == "__main__":
    main()
