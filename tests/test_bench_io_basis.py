"""bench/bench_io_basis.py runs and prints its two tables (small levels only; no timings are
asserted - speed is read from the printed ratios, not tested)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "bench_io_basis.py"


def run(*args):
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True,
                          timeout=300)


def test_prints_a_basis_row_per_level_and_a_cfg_row_per_file():
    fixture = ROOT / "tests" / "data" / "cubic_10_out_20.cfg"
    out = run("--levels", "4", "8", "--repeat", "1", "--cfg", str(fixture))
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines()
            if not line.startswith("#")}
    # alpha_moments_count of MLIP-2's levels 4 and 8
    assert rows["4"][1] == "2" and rows["8"][1] == "18"
    for level in ("4", "8"):
        assert float(rows[level][-1]) > 0                      # gen/read
    big = rows["multi_10_out_x50.cfg"]
    assert big[1:3] == ["1000", "27000"]
    assert rows["cubic_10_out_20.cfg"][1] == "20"
    assert all(re.fullmatch(r"[\d.]+", x) for x in big[3:])   # motep is a test dependency


def test_a_missing_cfg_file_is_named():
    out = run("--levels", "4", "--cfg", "no_such.cfg")
    assert out.returncode == 2 and "--cfg no_such.cfg: no such file" in out.stderr
