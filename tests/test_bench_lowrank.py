"""Helpers of bench/bench_lowrank_nbmotaw.py: fit claims shared by two copies of the script,
the test-file exclusion and the summary table."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_lowrank_nbmotaw.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_lowrank_nbmotaw", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_claim_is_exclusive_and_stale_claims_are_taken_over(bench, tmp_path):
    path = tmp_path / "claims" / "base_seed0"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        path.parent.mkdir()
        path.write_text(str(other.pid))
        assert not bench.claim(path)            # held by a running process
        assert path.read_text() == str(other.pid)
    finally:
        other.kill()
        other.wait()
    assert bench.claim(path)                    # its process is gone: taken over
    assert path.read_text() == str(os.getpid())
    fresh = tmp_path / "claims" / "mf_seed1"
    assert bench.claim(fresh) and fresh.exists()


def test_load_names_a_bad_exclusion_and_an_empty_folder(bench, tmp_path):
    with pytest.raises(SystemExit, match="no \\*.json files"):
        bench.load(tmp_path, 1, 1, 1)
    (tmp_path / "Mo_Test.json").write_text("[]")
    with pytest.raises(SystemExit, match="--exclude-test Quaternary_Test: no such file"):
        bench.load(tmp_path, 1, 1, 1, exclude_test=("Quaternary_Test",))


def test_table_reports_iterations_and_stopping_rule(bench, tmp_path):
    runs = {("base", s): {"label": "base", "seed": s, "n_radial": 512, "train_loss": 1e-3 * s,
                          "test_loss": 2e-3, "E_rmse": 0.01, "F_rmse": 0.2, "S_rmse": 1.0,
                          "iters": it}
            for s, it in ((1, 1500), (2, 2000))}
    meta = {"level": 16, "n_train": 240, "train_atoms": 4846, "n_test": 100, "test_atoms": 2042,
            "iters": 2000, "seeds": [1, 2], "rel_tol": 1e-3, "rel_window": 100,
            "exclude_test": ["Multinary_Test"]}
    bench.write_table(tmp_path, [("base", None, None)], runs, meta,
                      {"optimal": [8], "half": [5]})
    text = (tmp_path / "table.md").read_text()
    assert "not from Multinary_Test" in text
    assert "less than 0.001 of itself over 100 iterations" in text
    row = [line for line in text.splitlines() if line.startswith("| base")][0]
    assert "| 1750 ± 354 | 0 of 2 |" in row and "| 1.500 ± 0.707e-3 |" in row


def test_table_counts_stopped_fits_and_judges_the_targets(bench, tmp_path):
    def rec(label, seed, f, message="reached max_iter = 100"):
        return {"label": label, "seed": seed, "n_radial": 512 if label == "base" else 192,
                "train_loss": 1e-3, "test_loss": 2e-3, "E_rmse": 0.01, "F_rmse": f,
                "S_rmse": 1.0, "iters": 100, "message": message}
    rule = "relative decrease over 50 iterations < 0.001"
    runs = {("base", 0): rec("base", 0, 0.20, rule), ("base", 1): rec("base", 1, 0.22, rule),
            ("mf r=4 (opt)", 0): rec("mf r=4 (opt)", 0, 0.21, rule),   # +0.0 %: met
            ("tf (3, 4, 8) (~50%)", 0): rec("tf (3, 4, 8) (~50%)", 0, 0.2163),  # +3.0 %: met
            ("rmf r=6 (~50%)", 0): rec("rmf r=6 (~50%)", 0, 0.2170),   # +3.3 %: missed
            ("mfra r=4 (opt)", 0): rec("mfra r=4 (opt)", 0, 0.2105)}   # +0.2 %: missed
    labels = ["base", "mf r=4 (opt)", "mfra r=4 (opt)", "rmf r=6 (~50%)", "tf (3, 4, 8) (~50%)"]
    meta = {"level": 16, "n_train": 240, "train_atoms": 4846, "n_test": 100, "test_atoms": 2042,
            "iters": 100, "seeds": [0, 1], "rel_tol": 1e-3, "rel_window": 50}
    bench.write_table(tmp_path, [(lab, None, None) for lab in labels], runs, meta,
                      {"optimal": [4], "half": [5]})
    lines = (tmp_path / "table.md").read_text().splitlines()

    def row(prefix):
        return [line for line in lines if line.startswith(prefix)]
    assert "| 2 of 2 |" in row("| base | 512")[0]
    assert "| 0 of 1 |" in row("| tf (3, 4, 8) (~50%) | 192")[0]
    assert "vs the base's 0.2100 eV/Å over 2 seeds" in "\n".join(lines)
    assert row("| mf r=4 (opt) | 1 |")[0].endswith("| +0.0 % | <= +0 % | yes |")
    assert row("| mfra r=4 (opt) | 1 |")[0].endswith("| +0.2 % | <= +0 % | NO |")
    assert row("| rmf r=6 (~50%) | 1 |")[0].endswith("| +3.3 % | <= +3 % | NO |")
    assert row("| tf (3, 4, 8) (~50%) | 1 |")[0].endswith("| +3.0 % | <= +3 % | yes |")
