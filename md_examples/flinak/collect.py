#!/usr/bin/env python3
"""Collects FLiNaK NPT densities (run_npt.py's density.json files) into the paper's Table 3
layout (markdown) and a density-vs-temperature plot (PNG).

    python collect.py npt_runs [--out table3.md] [--png density_vs_T.png]

Every ``density.json`` under the given folders holds one or more runs of one potential. A model
is one potential file, or an ensemble: files whose names differ only by a trailing ``.<k>`` /
``_seed<k>`` (``base.0.mtp``, ``base.1.mtp``) are its members, told apart by the files' content
(the same file run from two paths is one member; runs that record no potential file are grouped
by their model name instead). All runs of one member at one temperature, in
any number of ``density.json`` files (replicas, later seeds), are pooled as run_npt.py pools
replicas: the mean of the run means, the error the larger of their spread's standard error and
the combined within-run error. A model's density is the mean over its members and the +- the
standard deviation over the members (with one member: that member's pooled error). The
teacher's runs (``--teacher``) are a row of their own; the teacher's reference densities
measured with 50 ps runs (../shared/data/flinak/README.md) and the experimental correlation
rho = 2.5793 - 6.24e-4 T g/cm^3 (Romatoski & Hu 2017, as quoted by the paper) are added.
The last columns give the largest deviation from the teacher (its same-protocol runs; without
them its 50 ps reference) over the temperatures, in percent, and that of the ensemble mean from
the base MTP row (``--base``).
A dagger marks densities that were still drifting during production (run_npt.py's ``drift``).
Runs whose production length differs from the most common one (``--full``'s 200 ps among
30 ps runs) are rows of their own, named with their length (``base_core (200 ps)``).
``--accept ROW ...`` names the row that stands for each model (a table keeps superseded fits
and other protocols too): a second table says whether each is within 1 % of the teacher and
0.5 % of the base at every temperature (``--teacher-target``, ``--base-target``), and the plot
shows those rows and the teacher only.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

TEACHER_REFERENCE = {800: (1.748, 0.004), 1000: (1.644, 0.004), 1200: (1.534, 0.003)}
HERE = Path(__file__).resolve().parent
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


def potential_digest(run: dict) -> str | None:
    """SHA-256 of the run's potential file: recorded by run_npt.py (``potential_sha256``), or,
    for older records, of the file at the recorded path if it is still there (else None)."""
    if run.get("potential_sha256"):
        return run["potential_sha256"]
    path = Path(run["potential"])
    if path.is_file():
        return _file_digest(str(path))
    return None


@functools.lru_cache(maxsize=None)
def _file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def member_of(run: dict) -> tuple[str, str]:
    """(model row, member) of one run: the potential file (its stem without ``.<k>`` is the
    model; the member is the file's content, so the same file run from two paths, e.g. a
    copy committed under results/, is one member), else the run's model name; the teacher's
    runs are one row."""
    if run.get("teacher"):
        return "teacher", "teacher"
    if run.get("potential"):
        model = model_of(re.sub(r"\.mtp(lr)?$", "", Path(run["potential"]).name))
        digest = potential_digest(run)
        if digest is None:  # a copy of another member's file would count twice
            print(f"collect.py: warning: {run.get('_file', '?')}: the potential "
                  f"{run['potential']} no longer exists and the record has no potential_sha256: "
                  "its runs are one member identified by that path (if the file was a copy of "
                  "another member's, add that file's potential_sha256 to the record)",
                  file=sys.stderr)
        return model, (f"sha256:{digest}" if digest else run["potential"])
    return model_of(run["model"]), run["model"]


def _combine_replicas():
    """run_npt.py's combine_replicas (one definition of how runs are pooled)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("flinak_run_npt", HERE / "run_npt.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.combine_replicas


def pooled(results: list[dict], combine_replicas) -> tuple[dict | None, int, int]:
    """One member at one temperature: (pooled result or None, runs, failed runs) from the
    density.json entries of its runs (each a single run, a replica-pooled result with
    ``replicas``, or ``{"failed": ...}``)."""
    reps, failed = [], 0
    for d in results:
        if "failed" in d:
            failed += 1
        else:
            reps += d.get("replicas") or [d]
    if not reps:
        return None, 0, failed
    return (reps[0] if len(reps) == 1 else combine_replicas(reps)), len(reps), failed


def main_length(runs) -> int | None:
    """The table's production length (steps): the most common one among the runs (on a tie,
    the shorter)."""
    lengths = Counter(r.get("nprod") for r in runs)
    return min(lengths, key=lambda n: (-lengths[n], n or 0)) if lengths else None


def length_label(nprod: int | None) -> str:
    """A production length in steps as picoseconds (1 fs steps): ``200 ps``."""
    return f"{nprod / 1000:g} ps" if nprod else "? ps"


def row_of(run: dict, main_nprod) -> tuple[str, str]:
    """(row, member) of one run: ``member_of``'s row, with the production length appended
    (``base (200 ps)``) when the run's differs from the table's, so that runs of another
    protocol (``--full``) are neither pooled with the others nor compared as if they were."""
    model, member = member_of(run)
    if run.get("nprod") != main_nprod:
        model += f" ({length_label(run.get('nprod'))})"
    return model, member


def combine(runs) -> dict:
    """{model: {"n_radial_params", "members", "runs", "density": {T: (mean, err, members,
    drifting)}, "protocol", "teacher", "failed_runs"}}; runs with a production length other
    than the most common one make rows of their own (``row_of``)."""
    combine_replicas = _combine_replicas()
    groups = defaultdict(lambda: defaultdict(list))
    main_nprod = main_length(runs)
    for r in runs:
        model, member = row_of(r, main_nprod)
        groups[model][member].append(r)
    rows = {}
    for model, members in groups.items():
        every = [r for m in members.values() for r in m]
        temps = sorted({float(t) for r in every for t in r["density"]})
        dens, nruns, failed = {}, {}, 0
        for T in temps:
            vals, nruns[T] = [], 0
            for member_runs in members.values():
                res = [r["density"][k] for r in member_runs for k in r["density"]
                       if float(k) == T]
                if not res:
                    continue
                value, n, nfail = pooled(res, combine_replicas)
                failed += nfail
                nruns[T] += n
                if value is not None:
                    vals.append(value)
            if not vals:  # every run at this T stopped (lost atoms, blow-up)
                dens[T] = (math.nan, math.nan, 0, False)
                continue
            means = np.array([v["mean"] for v in vals])
            err = float(means.std(ddof=1)) if len(vals) > 1 else float(vals[0]["err"])
            drifting = any(abs(v.get("drift", 0.0)) > max(3.0 * v["err"], 0.005 * v["mean"])
                           for v in vals)  # pooled runs: their mean drift vs the pooled error
            dens[T] = (float(means.mean()), err, len(vals), drifting)
        nrad = {r.get("n_radial_params") for r in every}
        rows[model] = {"n_radial_params": nrad.pop() if len(nrad) == 1 else None,
                       "members": len(members), "density": dens,
                       "runs": sorted(set(nruns.values())),
                       "protocol": ",".join(sorted({f"{r['protocol']} ({length_label(r['nprod'])})"
                                                    for r in every})),
                       "teacher": bool(every[0].get("teacher")),
                       "other_length": every[0].get("nprod") != main_nprod,
                       "failed_runs": failed}
    return rows


def order_key(item):
    model, row = item
    return (row["teacher"], row["n_radial_params"] is None, -(row["n_radial_params"] or 0), model)


def teacher_row(rows: dict) -> dict:
    """The teacher's row of the same protocol, or its 50 ps reference densities when the runs
    have none."""
    if "teacher" in rows:
        return rows["teacher"]
    return {"density": {float(T): (rho, err, 1, False)
                        for T, (rho, err) in TEACHER_REFERENCE.items()}}


def deviations(row: dict, ref: dict, temps) -> dict[float, tuple[float, float]]:
    """{T: (|row / ref - 1| in %, its error in %)} at each T where both rows have a density
    (the two rows' errors combined)."""
    out = {}
    for T in temps:
        if T in row["density"] and T in ref["density"] and row["density"][T][2] \
                and ref["density"][T][2]:
            (m, e), (m_ref, e_ref) = row["density"][T][:2], ref["density"][T][:2]
            ratio = m / m_ref
            out[T] = (abs(ratio - 1.0) * 100.0, ratio * math.hypot(e / m, e_ref / m_ref) * 100.0)
    return out


def max_deviation(row: dict, ref: dict | None, temps) -> tuple[float, float] | None:
    """The largest |row / ref - 1| over T, in %, ± its error at that T; None without a
    reference (or for the reference itself) or a common temperature."""
    if ref is None or row is ref:
        return None
    d = deviations(row, ref, temps)
    return max(d.values()) if d else None


def verdict(row: dict, ref: dict, temps, target: float) -> str:
    """Whether ``row`` is within ``target`` % of ``ref`` at every temperature, with the largest
    deviation: ``yes`` (every deviation plus its error within), ``yes, by less than its error``
    (every deviation within, not every one with its error added), ``no, by less than its
    error`` (a deviation outside, but every deviation minus its error within), ``no``; or
    ``incomplete`` when a temperature has no density in either row."""
    d = deviations(row, ref, temps)
    missing = [T for T in temps if T not in d]
    if missing:
        return "incomplete (no " + ", ".join(f"{T:g} K" for T in missing) + ")"
    if all(dev + err <= target for dev, err in d.values()):
        word = "yes"
    elif all(dev <= target for dev, _ in d.values()):
        word = "yes, by less than its error"
    elif all(dev - err <= target for dev, err in d.values()):
        word = "no, by less than its error"
    else:
        word = "no"
    T = max(d, key=lambda t: d[t])
    return f"{word} ({d[T][0]:.2f} ± {d[T][1]:.2f}% at {T:g} K)"


def acceptance(rows: dict, temps, base: str | None, accepted: list[str],
               teacher_target: float = 1.0, base_target: float = 0.5) -> str:
    """Markdown: for each row in ``accepted`` (the model of each method and rank that stands
    for it), whether its density is within ``teacher_target`` % of the teacher and
    ``base_target`` % of the base row at every temperature of the table."""
    teacher = teacher_row(rows)
    base_row = rows.get(base) if base else None
    lines = [f"| model | members | radial params | within {teacher_target:g}% of the teacher "
             f"| within {base_target:g}% of the base |", "|---|---|---|---|---|"]
    for model in accepted:
        row = rows[model]
        to_base = "-" if base_row is None or row is base_row else \
            verdict(row, base_row, temps, base_target)
        lines.append(f"| {model} | {row['members']} | {row['n_radial_params'] or '-'} | "
                     f"{verdict(row, teacher, temps, teacher_target)} | {to_base} |")
    lines.append(f"\nwithin: at every temperature ({', '.join(f'{T:g}' for T in temps)} K), "
                 "the largest deviation in brackets; 'by less than its error': the deviation "
                 "and the deviation plus (yes) or minus (no) its error fall on opposite sides of "
                 "the target. The error is the table's ± (over members, or a single member's pooled "
                 "error), both rows' combined.")
    return "\n".join(lines) + "\n"


def table(rows: dict, temps, base: str | None) -> str:
    heads = ["model", "members", "radial params"] + [f"{T:g} K" for T in temps] + \
        ["max dev. vs teacher", "max dev. vs base"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    teacher = teacher_row(rows)
    base_row = rows.get(base) if base else None

    def dev(row, ref):
        worst = max_deviation(row, ref, temps)
        return "-" if worst is None else f"{worst[0]:.2f} ± {worst[1]:.2f}%"

    for model, row in sorted(rows.items(), key=order_key):
        members = str(row["members"])
        lo, hi = row["runs"][0], row["runs"][-1]
        per_T = str(lo) if lo == hi else f"{lo}–{hi}"
        if hi and per_T != members:
            members += f" ({per_T} runs per T)"
        if row["failed_runs"]:
            members += f" ({row['failed_runs']} run(s) failed)"
        cells = ["teacher (same protocol)" if model == "teacher" else model,
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
    if "teacher" not in rows:
        lines.append("\nmax dev. vs teacher: against the teacher's 50 ps reference (no teacher run "
                     "with this protocol given).")
    if any(row.get("other_length") for row in rows.values()):
        lines.append("\n(N ps): runs of another production length, a row of their own; their "
                     "deviations are from the teacher and base rows above, whose runs are of the "
                     "most common length.")
    if any(row["failed_runs"] for row in rows.values()):
        lines.append("\nfailed: LAMMPS stopped (lost atoms / blow-up); such runs are left out "
                     "of the means.")
    lines.append("\nmax dev.: the largest |model / reference - 1| over the temperatures, ± its "
                 "error at that temperature (both rows' errors combined).")
    if any(v[3] for row in rows.values() for v in row["density"].values()):
        lines.append("\n† still drifting: the means of the two halves of the production run "
                     "differ by more than 3 errors and 0.5% (not equilibrated, or unstable).")
    return "\n".join(lines) + "\n"


# 11 markers, coprime to the 20 colours: a (colour, marker) pair repeats only after 220 rows
MARKERS = "osD^vP<X>hp"


def line_styles(models: list[str], teachers: set[str], base: str | None) -> dict[str, dict]:
    """One matplotlib style per model, no two alike: colours from ``tab20`` (20 colours) and
    markers cycled at a different period, so even tables of more than 20 rows keep the pairs
    distinct; the teacher rows are black, the base row is drawn with a thicker line."""
    import matplotlib

    colours = matplotlib.colormaps["tab20"].colors
    styles, k = {}, 0
    for model in models:
        if model in teachers:
            styles[model] = dict(color="k", marker="D", lw=1.5)
            continue
        styles[model] = dict(color=colours[(2 * k) % 20 + (k // 10) % 2],
                             marker=MARKERS[k % len(MARKERS)],
                             lw=2.2 if model == base else 1.0)
        k += 1
    return styles


def plot(rows: dict, temps, path: Path, title: str, base: str | None = None) -> None:
    """Left: density vs T with the teacher's reference and the experimental line (the paper's
    figure); right: each model's deviation from the teacher's 50 ps reference in percent, with
    the +-1 % band of the acceptance, where differences of a few tenths of a percent show. One
    legend for both panels, to the right of them, so that it hides no point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, dx) = plt.subplots(1, 2, figsize=(11.5, 4.6))
    tt = np.linspace(min(temps) - 50, max(temps) + 50, 50)
    ax.plot(tt, experiment(tt), "k--", label="experiment 2.5793 - 6.24e-4 T")
    ref_T = sorted(TEACHER_REFERENCE)
    ref = {float(T): TEACHER_REFERENCE[T] for T in ref_T}
    ax.errorbar(ref_T, [TEACHER_REFERENCE[T][0] for T in ref_T],
                [TEACHER_REFERENCE[T][1] for T in ref_T], fmt="s", color="0.4", mfc="none",
                capsize=3, label="teacher, 50 ps reference")
    dx.axhspan(-1.0, 1.0, color="0.92", label="teacher's reference +- 1 %")
    dx.errorbar(ref_T, [0.0] * len(ref_T), [100.0 * e / m for m, e in TEACHER_REFERENCE.values()],
                fmt="s", color="0.4", mfc="none", capsize=3)
    n = max(len(rows), 1)
    ordered = sorted(rows.items(), key=order_key)
    styles = line_styles([m for m, _ in ordered], {m for m, r in ordered if r["teacher"]}, base)
    for k, (model, row) in enumerate(ordered):
        T = np.array(sorted(t for t in row["density"] if row["density"][t][2]))
        if T.size == 0:
            continue
        shift = (k - (n - 1) / 2) * 4.0  # K, so that error bars do not overlap
        m = np.array([row["density"][t][0] for t in T])
        e = np.array([row["density"][t][1] for t in T])
        style = dict(fmt="-", ms=4, capsize=3, **styles[model],
                     label=f"{model} ({row['n_radial_params']} radial)"
                     if row["n_radial_params"] else model)
        ax.errorbar(T + shift, m, e, **style)
        on_ref = np.array([t in ref for t in T])
        if on_ref.any():
            r = np.array([ref[t][0] for t in T[on_ref]])
            dx.errorbar(T[on_ref] + shift, 100.0 * (m[on_ref] / r - 1.0), 100.0 * e[on_ref] / r,
                        **{**style, "label": None})
    ax.set_xlabel("T (K)")
    ax.set_ylabel(r"density (g/cm$^3$)")
    ax.set_title(title, fontsize=9)
    dx.set_xlabel("T (K)")
    dx.set_ylabel("density / teacher's 50 ps reference - 1 (%)")
    dx.set_xlim(ax.get_xlim())
    dx.set_ylim(min(-1.5, dx.get_ylim()[0]), max(1.5, dx.get_ylim()[1]))
    handles, labels = ax.get_legend_handles_labels()
    h2, l2 = dx.get_legend_handles_labels()
    fig.legend(handles + h2, labels + l2, fontsize=7, loc="center left",
               bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", help="folders searched for density.json (or the files)")
    p.add_argument("--out", type=Path, default=Path("table3.md"))
    p.add_argument("--png", type=Path, default=Path("density_vs_T.png"))
    p.add_argument("--base", default="base", help="model name of the base MTP row")
    p.add_argument("--accept", nargs="+", metavar="ROW", help="the rows that stand for each "
                   "model (method and rank): a second table says whether each is within "
                   "--teacher-target of the teacher and --base-target of the base at every "
                   "temperature, and the plot shows these rows and the teacher only")
    p.add_argument("--teacher-target", type=float, default=1.0, metavar="PERCENT")
    p.add_argument("--base-target", type=float, default=0.5, metavar="PERCENT")
    args = p.parse_args(argv)
    runs = load_runs(args.paths)
    if not runs:
        print(f"collect.py: error: no density.json under {' '.join(args.paths)} (run "
              "run_npt.py first)", file=sys.stderr)
        return 2
    rows = combine(runs)
    unknown = [m for m in args.accept or [] if m not in rows]
    if unknown:
        print(f"collect.py: error: --accept: no row named {', '.join(unknown)} in these runs "
              f"(rows: {', '.join(sorted(rows))})", file=sys.stderr)
        return 2
    temps = sorted({T for row in rows.values() for T in row["density"]})
    info = max(runs, key=lambda r: r.get("date", ""))  # the latest run
    protocols = sorted({row["protocol"] for row in rows.values()})
    header = (f"FLiNaK NPT density (g/cm^3), 1512 atoms, 1 bar; protocol {', '.join(protocols)};"
              f" {info.get('date', '?')} on {info.get('machine', '?')} "
              f"({info.get('cpus', '?')} CPUs)\n\n")
    text = header + table(rows, temps, args.base)
    shown = rows
    if args.accept:
        text += ("\nTargets, for the row of each model: within "
                 f"{args.teacher_target:g}% of the teacher and {args.base_target:g}% of the base "
                 f"({args.base})\n\n") + acceptance(rows, temps, args.base, args.accept,
                                                    args.teacher_target, args.base_target)
        shown = {m: r for m, r in rows.items() if m in args.accept or r["teacher"]}
    args.out.write_text(text)
    print(text, end="")
    plot(shown, temps, args.png, header.strip().replace("; ", "\n", 1), args.base)
    print(f"wrote {args.out} and {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
