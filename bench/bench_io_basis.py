"""Start-up costs: generating an MTP basis, and reading MLIP-2 .cfg training files.

Replaces two time bounds that used to sit in unit tests (tests/test_basis.py, tests/test_io_cfg.py):
speed is measured here, against baselines timed in the same run, not asserted by tests.

- basis: `pyfit.basis.generate_basis(level)` from nothing (cache cleared), against loading the
  same basis from an untrained MLIP `.mtp` file (written here by pyfit) with pyfit's reader and
  with motep's (`motep.io.mlip.mtp.read_mtp`) - what a user of a shipped `untrained_mtps/NN.mtp`
  pays. `gen/read` says how many file loads one generation costs; generation runs once per
  process per level (lru_cache).
- cfg: `pyfit.io.cfg.read_cfg` against motep's `motep.io.mlip.cfg.read_cfg` (ASE Atoms) on the
  same file: tests/data/multi_10_out_20.cfg repeated to 1000 frames, plus any files given with
  --cfg (e.g. md_examples/flinak/data/train.cfg). `pyfit/motep` below 1 means pyfit is faster.
  pyfit also checks every frame for overlapping atoms (periodic images included, a k-d tree per
  frame) and motep does not; `no check` is pyfit with that check off (`min_distance=0`).
Times are the best of --repeat runs (the level-28 generation runs once). motep is optional;
without it the baseline columns read "-".

Usage: python bench/bench_io_basis.py [--levels 16 20 24 28] [--repeat 3] [--cfg FILE ...]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import tempfile
import time
from pathlib import Path

from pyfit.basis import generate_basis
from pyfit.fitting.trainer import make_template
from pyfit.io.cfg import read_cfg
from pyfit.io.mtp_file import read_mtp, write_mtp

HERE = Path(__file__).resolve().parent
FIXTURE = HERE.parent / "tests" / "data" / "multi_10_out_20.cfg"


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def motep_readers():
    try:
        from motep.io.mlip.cfg import read_cfg as motep_cfg
        from motep.io.mlip.mtp import read_mtp as motep_mtp
    except ImportError:
        return None, None
    return motep_cfg, motep_mtp


def fmt(x: float | None, spec: str = "9.4f") -> str:
    return "-".rjust(int(spec.split(".")[0])) if x is None else format(x, spec)


def bench_basis(levels, repeat: int, tmp: Path, motep_mtp) -> None:
    print("# basis: seconds; gen = generate_basis from nothing, read = load the same basis from "
          "an untrained .mtp")
    print(f"{'level':>5} {'moments':>7} {'times':>7} {'gen':>9} {'read pyfit':>10} "
          f"{'read motep':>10} {'gen/read':>8}")
    for level in levels:
        def generate():
            generate_basis.cache_clear()
            return generate_basis(level)

        t_gen, basis = best_of(generate, 1 if level >= 28 else repeat)
        path = tmp / f"{level:02d}.mtp"
        write_mtp(make_template(level, 1, 1.0, 5.0, 8), path)
        t_read, model = best_of(lambda: read_mtp(path), repeat)
        assert model.alpha_moments_count == basis.alpha_moments_count
        t_motep = best_of(lambda: motep_mtp(path), repeat)[0] if motep_mtp else None
        print(f"{level:>5} {basis.alpha_moments_count:>7} {basis.alpha_index_times_count:>7} "
              f"{t_gen:9.4f} {t_read:10.4f} {fmt(t_motep, '10.4f')} {t_gen / t_read:8.1f}")


def bench_cfg(paths, repeat: int, motep_cfg) -> None:
    print("# cfg: seconds to read the whole file; pyfit/motep < 1: pyfit is faster")
    print(f"{'file':>28} {'frames':>6} {'atoms':>8} {'pyfit':>8} {'no check':>8} {'motep':>8} "
          f"{'pyfit/motep':>11} {'frames/s':>9}")
    for path in paths:
        t_py, configs = best_of(lambda: read_cfg(path), repeat)
        n_atoms = sum(len(c.types) for c in configs)
        t_nocheck = best_of(lambda: read_cfg(path, min_distance=0.0), repeat)[0]
        t_mo = None
        if motep_cfg:
            t_mo, images = best_of(lambda: motep_cfg(path, index=":"), repeat)
            if len(images) != len(configs):
                raise SystemExit(f"{path}: motep read {len(images)} frames, pyfit {len(configs)}")
        ratio = fmt(None if t_mo is None else t_py / t_mo, "11.2f")
        print(f"{path.name[-28:]:>28} {len(configs):>6} {n_atoms:>8} {t_py:8.3f} {t_nocheck:8.3f} "
              f"{fmt(t_mo, '8.3f')} {ratio} {len(configs) / t_py:9.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", type=int, nargs="+", default=[16, 20, 24, 28])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cfg", type=Path, nargs="*", default=[])
    args = ap.parse_args()
    for p in args.cfg:
        if not p.is_file():
            ap.error(f"--cfg {p}: no such file")
    if args.repeat < 1:
        ap.error(f"--repeat must be >= 1, got {args.repeat}")
    motep_cfg, motep_mtp = motep_readers()
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, {datetime.date.today()}; motep "
          f"{'present' if motep_cfg else 'not installed'}")
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        bench_basis(args.levels, args.repeat, tmp, motep_mtp)
        big = tmp / "multi_10_out_x50.cfg"
        big.write_text(FIXTURE.read_text() * 50)
        bench_cfg([big, *args.cfg], args.repeat, motep_cfg)


if __name__ == "__main__":
    main()
