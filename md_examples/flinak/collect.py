#!/usr/bin/env python3
"""Collects FLiNaK NPT densities (run_npt.py's density.json files) into the paper's Table 3
layout (markdown) and a density-vs-temperature plot (PNG).

    python collect.py npt_runs [--out table3.md] [--png density_vs_T.png]

Every ``density.json`` under the given folders is one run. Runs whose model names differ only by
a trailing ``.<k>`` / ``_seed<k>`` (the members of an ensemble, e.g. ``mf_opt.0``, ``mf_opt.1``)
form one row: the density is the ensemble mean and the +- the standard deviation over the
members (with one member: the block-average standard error of that run). The teacher's runs
(``--teacher``) are a row of their own; the teacher's reference densities measured with 50 ps
runs (../shared/data/flinak/README.md) and the experimental correlation
rho = 2.5793 - 6.24e-4 T g/cm^3 (Romatoski & Hu 2017, as quoted by the paper) are added.
The last columns give the largest deviation from the teacher (same protocol) over the
temperatures, in percent, and that of the ensemble mean from the base MTP row (``--base``).
A dagger marks densities that were still drifting during production (run_npt.py's ``drift``).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

TEACHER_REFERENCE = {800: (1.748, 0.004), 1000: (1.644, 0.004), 1200: (1.534, 0.003)}
_MEMBER = re.compile(r"(\.|_seed|_s)(\d+)$")


def experiment(T: float) -> float:
    return 2.5793 - 6.24e-4 * T


def model_of(name: str) -> str:
    return _MEMBER.sub("", name)


def load_runs(paths) -> list[dict]:
    runs = []
    for root in paths:
        root = Path(root)
        files = [root] if root.is_file() else sorted(root.rglob("density.json"))
        for f in files:
            try:
                runs.append(json.loads(f.read_text()) | {"_file": str(f)})
            except (OSError, json.JSONDecodeError) as exc:
                sys.exit(f"collect.py: error: cannot read {f}: {exc}")
    return runs


def combine(runs) -> dict:
    """{model: {"n_radial_params", "members", "density": {T: (mean, err)}, "protocol"}}."""
    groups = defaultdict(list)
    for r in runs:
        groups["teacher" if r.get("teacher") else model_of(r["model"])].append(r)
    rows, failed = {}, {}
    for model, members in groups.items():
        temps = sorted({float(t) for r in members for t in r["density"]})
        dens = {}
        for T in temps:
            allvals = [r["density"][k] for r in members for k in r["density"] if float(k) == T]
            vals = [v for v in allvals if "failed" not in v]
            if len(vals) < len(allvals):
                failed[model] = failed.get(model, 0) + len(allvals) - len(vals)
            if not vals:  # every run at this T stopped (lost atoms, blow-up)
                dens[T] = (math.nan, math.nan, 0, False)
                continue
            means = np.array([v["mean"] for v in vals])
            if len(vals) > 1:
                err = float(means.std(ddof=1))
            else:
                err = float(vals[0]["err"])
            drifting = any(abs(v.get("drift", 0.0)) > max(3.0 * v["err"], 0.005 * v["mean"])
                           for v in vals)
            dens[T] = (float(means.mean()), err, len(vals), drifting)
        nrad = {r.get("n_radial_params") for r in members}
        rows[model] = {"n_radial_params": nrad.pop() if len(nrad) == 1 else None,
                       "members": len(members), "density": dens,
                       "protocol": ",".join(sorted({f"{r['protocol']} ({r['nprod'] / 1000:g} ps)"
                                                    for r in members})),
                       "teacher": bool(members[0].get("teacher")),
                       "failed_runs": failed.get(model, 0)}
    return rows


def order_key(item):
    model, row = item
    return (row["teacher"], row["n_radial_params"] is None, -(row["n_radial_params"] or 0), model)


def table(rows: dict, temps, base: str | None) -> str:
    heads = ["model", "members", "radial params"] + [f"{T:g} K" for T in temps] + \
        ["max dev. vs teacher", "max dev. vs base"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    teacher = rows.get("teacher")
    base_row = rows.get(base) if base else None

    def dev(row, ref):
        if ref is None or row is ref:
            return "-"
        d = [abs(row["density"][T][0] / ref["density"][T][0] - 1.0) * 100.0
             for T in temps if T in row["density"] and T in ref["density"]
             and row["density"][T][2] and ref["density"][T][2]]
        return f"{max(d):.2f}%" if d else "-"

    for model, row in sorted(rows.items(), key=order_key):
        members = str(row["members"])
        if row["failed_runs"]:
            members += f" ({row['failed_runs']} run(s) failed)"
        cells = ["teacher (same protocol)" if row["teacher"] else model,
                 members, str(row["n_radial_params"] or "-")]
        for T in temps:
            if T in row["density"]:
                m, e, n, drifting = row["density"][T]
                cells.append("failed" if n == 0 else
                             f"{m:.3f} ± {e:.3f}" + (" †" if drifting else ""))
            else:
                cells.append("-")
        cells += [dev(row, teacher), dev(row, base_row)]
        lines.append("| " + " | ".join(cells) + " |")
    ref = ["teacher, 50 ps reference (shared/data/flinak)", "-", "-"]
    ref += [f"{TEACHER_REFERENCE[int(T)][0]:.3f} ± {TEACHER_REFERENCE[int(T)][1]:.3f}"
            if int(T) in TEACHER_REFERENCE and T == int(T) else "-" for T in temps]
    lines.append("| " + " | ".join(ref + ["-", "-"]) + " |")
    exp = ["experiment, 2.5793 - 6.24e-4 T", "-", "-"] + [f"{experiment(T):.3f}" for T in temps]
    lines.append("| " + " | ".join(exp + ["-", "-"]) + " |")
    if any(row["failed_runs"] for row in rows.values()):
        lines.append("\nfailed: LAMMPS stopped (lost atoms / blow-up); such runs are left out "
                     "of the means.")
    if any(v[3] for row in rows.values() for v in row["density"].values()):
        lines.append("\n† still drifting: the means of the two halves of the production run "
                     "differ by more than 3 errors and 0.5% (not equilibrated, or unstable).")
    return "\n".join(lines) + "\n"


def plot(rows: dict, temps, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    tt = np.linspace(min(temps) - 50, max(temps) + 50, 50)
    ax.plot(tt, experiment(tt), "k--", label="experiment 2.5793 - 6.24e-4 T")
    ref_T = sorted(TEACHER_REFERENCE)
    ax.errorbar(ref_T, [TEACHER_REFERENCE[T][0] for T in ref_T],
                [TEACHER_REFERENCE[T][1] for T in ref_T], fmt="s", color="0.4", mfc="none",
                capsize=3, label="teacher, 50 ps reference")
    n = max(len(rows), 1)
    for k, (model, row) in enumerate(sorted(rows.items(), key=order_key)):
        T = np.array(sorted(t for t in row["density"] if row["density"][t][2]))
        if T.size == 0:
            continue
        shift = (k - (n - 1) / 2) * 4.0  # K, so that error bars do not overlap
        ax.errorbar(T + shift, [row["density"][t][0] for t in T],
                    [row["density"][t][1] for t in T], fmt="o-" if not row["teacher"] else "D-",
                    ms=4, capsize=3, lw=1,
                    label=f"{model} ({row['n_radial_params']} radial)"
                    if row["n_radial_params"] else model)
    ax.set_xlabel("T (K)")
    ax.set_ylabel(r"density (g/cm$^3$)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", help="folders searched for density.json (or the files)")
    p.add_argument("--out", type=Path, default=Path("table3.md"))
    p.add_argument("--png", type=Path, default=Path("density_vs_T.png"))
    p.add_argument("--base", default="base", help="model name of the base MTP row")
    args = p.parse_args(argv)
    runs = load_runs(args.paths)
    if not runs:
        print(f"collect.py: error: no density.json under {' '.join(args.paths)} (run "
              "run_npt.py first)", file=sys.stderr)
        return 2
    rows = combine(runs)
    temps = sorted({T for row in rows.values() for T in row["density"]})
    info = max(runs, key=lambda r: r.get("date", ""))  # the latest run
    protocols = sorted({row["protocol"] for row in rows.values()})
    header = (f"FLiNaK NPT density (g/cm^3), 1512 atoms, 1 bar; protocol {', '.join(protocols)};"
              f" {info.get('date', '?')} on {info.get('machine', '?')} "
              f"({info.get('cpus', '?')} CPUs)\n\n")
    text = header + table(rows, temps, args.base)
    args.out.write_text(text)
    print(text, end="")
    plot(rows, temps, args.png, header.strip().replace("; ", "\n", 1))
    print(f"wrote {args.out} and {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
