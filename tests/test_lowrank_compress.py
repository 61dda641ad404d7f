"""Compression of trained potentials (Python API and CLI), rank scans, the rank-picking rule,
spectra and `pyfit info` for factored files."""

import json

import numpy as np
import pytest

from pyfit.cli import main
from pyfit.errors import PyfitError
from pyfit.io.dataset import read_configurations
from pyfit.io.lowrank_file import read_lowrank, read_potential
from pyfit.io.mtp_file import read_mtp
from pyfit.lowrank.compress import ScanRow, compress, pick_ranks, spectrum
from pyfit.lowrank.factors import LowRank, TensorTrain, unfold


@pytest.fixture(scope="module")
def pot_path(data_dir_module):
    return data_dir_module / "multi_10_pot.mtp"


@pytest.fixture(scope="module")
def data_dir_module():
    from conftest import DATA

    return DATA


@pytest.fixture(scope="module")
def configs(data_dir_module):
    return read_configurations(data_dir_module / "multi_training_20.cfg")[:10]


def test_truncation_only(pot_path):
    model = read_mtp(pot_path)
    res = compress(model, "mf", rank=4)
    f = LowRank.from_dense(model.radial_coeffs, max_rank=4)
    np.testing.assert_allclose(res.potential.model.radial_coeffs, f.to_dense(), atol=1e-14)
    assert res.truncation_error == pytest.approx(f.error_bound / np.linalg.norm(model.radial_coeffs))
    assert (res.n_radial_dense, res.n_radial) == (216, 4 * (9 + 24))
    assert res.loss_final is None
    np.testing.assert_array_equal(res.potential.model.moment_coeffs, model.moment_coeffs)
    tt = compress(model, "tf", ranks=(3, 6, 4))
    t = TensorTrain.from_dense(model.radial_coeffs, max_rank=(3, 6, 4))
    np.testing.assert_allclose(tt.potential.model.radial_coeffs, t.to_dense(), atol=1e-14)
    assert tt.n_radial == t.n_params == 3 * 3 + 3 * 3 * 6 + 6 * 3 * 4 + 4 * 8
    half = compress(model, "rmf", compression=0.5)
    assert half.ranks == (4,) and half.n_radial == 4 * (9 + 24 - 4)  # 116 of 216
    with pytest.raises(PyfitError, match="give exactly one of rank"):
        compress(model, "mf", rank=3, compression=0.5)
    with pytest.raises(PyfitError, match="method tf takes TT ranks"):
        compress(model, "tf", rank=3)
    with pytest.raises(PyfitError, match=r"rank 10 .*expected an integer 1 <= rank <= 9"):
        compress(model, "mf", rank=10)
    with pytest.raises(PyfitError, match="method: expected one of mf, rmf, mfra, tf"):
        compress(model, "svd", rank=2)


@pytest.mark.parametrize("method, kw", [("mf", {"rank": 4}), ("rmf", {"rank": 4}),
                                        ("mfra", {"rank": 5, "r0": 3, "every": 4}),
                                        ("tf", {"ranks": (3, 6, 4)})])
def test_finetune_improves_on_truncation(pot_path, configs, method, kw):
    res = compress(read_mtp(pot_path), method, configs=configs, max_iter=12,
                   linear_solve_every=0, n_threads=1, **kw)
    assert res.loss_final < 0.5 * res.loss_truncated
    assert res.loss_final <= res.history[0]
    assert res.potential.method == method
    # the saved file evaluates to the fitted loss
    from pyfit.fitting.loss import Loss

    loss = Loss(res.potential.model, configs, n_threads=1)
    assert loss.value(loss.pack(res.potential.model)) == pytest.approx(res.loss_final, rel=1e-9)


def test_spectrum(pot_path):
    model = read_mtp(pot_path)
    rows = spectrum(model)
    s = np.linalg.svd(unfold(model.radial_coeffs), compute_uv=False)
    assert [r["rank"] for r in rows] == list(range(1, 10))
    np.testing.assert_allclose([r["sigma"] for r in rows], s, rtol=1e-12)
    for r in rows:
        f = LowRank.from_dense(model.radial_coeffs, max_rank=r["rank"])
        assert r["truncation_error"] == pytest.approx(
            f.error_bound / np.linalg.norm(model.radial_coeffs), rel=1e-9, abs=1e-15)
    assert rows[-1]["truncation_error"] == 0
    assert rows[3]["mf_params"] == 132 and rows[3]["rmf_params"] == 116
    assert len(spectrum(model, "pairs_funcs")) == 8


def row(ranks, removed, valid):
    return ScanRow("mf", (ranks,), int(round(216 * (1 - removed))), removed, valid, valid, 0.1, 5)


def test_pick_ranks_rule():
    rows = [row(2, 0.69, 3.0), row(3, 0.54, 2.0), row(4, 0.39, 1.5), row(5, 0.236, 1.2),
            row(6, 0.083, 0.5), row(7, -0.07, 0.1)]
    picks = pick_ranks(rows)
    assert picks["optimal"].ranks == (5,)  # lowest loss among >= 20 % removed (not 6 or 7)
    assert picks["half"].ranks == (3,)
    assert pick_ranks(rows, min_removed=0.5)["optimal"].ranks == (3,)
    assert pick_ranks([row(7, -0.07, 0.1)])["optimal"] is None
    assert pick_ranks([row(3, 0.2, 2.0)])["optimal"].ranks == (3,)  # exactly 20 % counts


# --------------------------------------------------------------------------- CLI
def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_compress_and_info(tmp_path, capsys, pot_path, data_dir_module):
    out = tmp_path / "a.mtplr"
    code, text, err = run(capsys, "compress", pot_path, "--method", "mf", "--rank", 4,
                          "--species", "Cu,Ag,Au", "-o", out)
    assert code == 0, err
    assert "radial parameters 216 -> 132 (38.9% removed)" in text
    data = read_lowrank(out)
    assert data.factors.rank == 4 and data.species_names == ("Cu", "Ag", "Au")
    code, text, _ = run(capsys, "info", out)
    assert code == 0
    assert "MTP-LOWRANK 1 (factored)" in text and "132 (38.9% removed)" in text
    assert "116 (46.3% removed)" in text  # R-MF count of the same rank
    code, text, _ = run(capsys, "info", out, "--json")
    info = json.loads(text)
    assert info["rank"] == 4 and info["radial parameters (dense)"] == 216
    # errors / calc-efs read factored files
    cfg = data_dir_module / "multi_training_20.cfg"
    code, text, err = run(capsys, "errors", out, cfg)
    assert code == 0, err
    # tf with fine-tuning, JSON report
    out2 = tmp_path / "b.mtplr"
    code, text, err = run(capsys, "compress", pot_path, "--method", "tf", "--ranks", "3,6,4",
                          "--finetune", cfg, "--max-iter", 5, "--threads", 1, "--json",
                          "-o", out2)
    assert code == 0, err
    rep = json.loads(text)
    assert rep["ranks"] == [3, 6, 4] and rep["n_radial"] == 167
    assert rep["loss_final"] < rep["loss_truncated"]
    assert isinstance(read_potential(out2).factors, TensorTrain)
    # compressing a factored file again
    code, text, err = run(capsys, "compress", out2, "--method", "mf", "--compression", "0.5",
                          "-o", tmp_path / "c.mtplr")
    assert code == 0, err
    assert "method mf, ranks 3, radial parameters 216 -> 99" in text


def test_cli_spectrum(tmp_path, capsys, pot_path):
    png = tmp_path / "s.png"
    code, text, _ = run(capsys, "info", pot_path, "--spectrum", "--plot", png)
    assert code == 0
    assert "singular values of the radial tensor (pairs unfolding)" in text
    assert "   4  3.11102e-01" in text
    assert png.stat().st_size > 1000
    code, text, _ = run(capsys, "info", pot_path, "--spectrum", "--json")
    rows = json.loads(text)["spectrum"]
    assert len(rows) == 9 and rows[-1]["truncation_error"] == 0


@pytest.mark.parametrize("args, message", [
    (["--method", "tf", "--rank", "3"], "--method tf takes --ranks"),
    (["--method", "mf", "--ranks", "3,6,4"], "--ranks r1,r2,r3 is for --method tf"),
    (["--method", "mf", "--rank", "3", "--compression", "0.5"], "give exactly one of"),
    (["--method", "mf"], "give exactly one of"),
    (["--method", "mf", "--rank", "10"], r"expected an integer 1 <= rank <= 9"),
    (["--method", "tf", "--ranks", "4,6,4"], "inconsistent with the shape"),
    (["--method", "tf", "--ranks", "3,x,4"], "--ranks: expected integers"),
    (["--method", "mf", "--compression", "1.5"], "expected a fraction 0 < f < 1"),
])
def test_cli_compress_errors(tmp_path, capsys, pot_path, args, message):
    import re

    code, _, err = run(capsys, "compress", pot_path, *args, "-o", tmp_path / "x.mtplr")
    assert code == 2
    assert re.search(message, err), err
    assert not (tmp_path / "x.mtplr").exists()


def test_cli_rank_scan(tmp_path, capsys, pot_path, data_dir_module):
    cfg = data_dir_module / "multi_training_20.cfg"
    png, table = tmp_path / "scan.png", tmp_path / "scan.json"
    code, text, err = run(capsys, "rank-scan", pot_path, "--data", cfg, "--ranks", "2,3,4,6",
                          "--max-iter", 3, "--threads", 1, "--plot", png, "-o", table)
    assert code == 0, err
    assert "16 training / 4 validation configurations" in text
    scan = json.loads(table.read_text())
    assert [r["ranks"] for r in scan["rows"]] == [[2], [3], [4], [6]]
    eligible = [r for r in scan["rows"] if r["removed"] >= 0.2]
    assert scan["optimal"] == min(eligible, key=lambda r: r["valid_loss"])["ranks"]
    assert scan["half"] == [3]  # 54.2 % removed: the closest to 50 %
    assert png.stat().st_size > 1000
    code, _, err = run(capsys, "rank-scan", pot_path, "--data", cfg, "--valid-fraction", "1.5")
    assert code == 2 and "--valid-fraction: expected 0 < f < 1" in err


@pytest.mark.parametrize("method", ["rmf", "mfra", "tf"])
def test_compressed_fit_from_an_untrained_template(tmp_path, capsys, pot_path, configs,
                                                   method):
    """`pyfit compress TEMPLATE --finetune DATA`: one command for every method from scratch."""
    template = read_mtp(pot_path).untrained()
    kw = {"ranks": (3, 4, 3)} if method == "tf" else {"rank": 3}
    res = compress(template, method, configs=configs, max_iter=15, linear_solve_every=0,
                   n_threads=1, seed=4, species=["Cu", "Ag", "Au"], **kw)
    assert np.isnan(res.truncation_error) and res.loss_dense is None
    assert res.loss_final < 0.8 * res.loss_truncated  # from the random start
    assert res.potential.species == ("Cu", "Ag", "Au") and res.potential.method == method
    again = compress(template, method, configs=configs, max_iter=15, linear_solve_every=0,
                     n_threads=1, seed=4, **kw)
    assert again.loss_final == res.loss_final  # the seed fixes the start
    with pytest.raises(PyfitError, match="untrained .*give training data"):
        compress(template, method, **kw)


@pytest.mark.parametrize("method", ["mf", "rmf", "mfra"])
def test_cli_compress_progress(tmp_path, capsys, pot_path, data_dir_module, method):
    """`--progress N` prints every N-th refit iteration to stderr; 0 is quiet."""
    cfg = data_dir_module / "multi_training_20.cfg"
    args = ["compress", pot_path, "--method", method, "--rank", 3, "--finetune", cfg,
            "--max-iter", 4, "--threads", 1, "-o", tmp_path / "p.mtplr"]
    code, _, err = run(capsys, *args, "--progress", 2)
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if ln.startswith("compress: iteration")]
    assert [int(ln.split()[2]) for ln in lines] == [2, 4], err
    assert all("s/iteration" in ln and "loss" in ln for ln in lines)
    code, _, err = run(capsys, *args, "--progress", 0)
    assert code == 0 and "compress: iteration" not in err
    code, _, err = run(capsys, *args, "--progress", -1)
    assert code == 2 and "--progress: expected an integer >= 0" in err


def test_cli_compress_template(tmp_path, capsys, data_dir_module):
    tmpl = tmp_path / "t.mtp"
    assert run(capsys, "basis", 8, "--species", 3, "-o", tmpl)[0] == 0
    out = tmp_path / "r.mtplr"
    code, text, err = run(capsys, "compress", tmpl, "--method", "rmf", "--rank", 3,
                          "--finetune", data_dir_module / "multi_training_20.cfg",
                          "--max-iter", 5, "--threads", 1, "--species", "Cu,Ag,Au", "-o", out)
    assert code == 0, err
    assert "fitted from a random start (seed 0) on 20 configurations" in text
    assert read_lowrank(out).species_names == ("Cu", "Ag", "Au")
    code, _, err = run(capsys, "compress", tmpl, "--method", "mf", "--rank", 3, "-o", out)
    assert code == 2 and "is untrained (a template): give --finetune DATA" in err


def test_cli_rank_scan_tt_and_fractions(tmp_path, capsys, pot_path, data_dir_module):
    cfg = data_dir_module / "multi_training_20.cfg"
    code, text, err = run(capsys, "rank-scan", pot_path, "--data", cfg, "--method", "tf",
                          "--ranks", "2,4,2;3,6,4", "--max-iter", 2, "--threads", 1, "--json")
    assert code == 0, err
    scan = json.loads(text)
    assert [r["ranks"] for r in scan["rows"]] == [[2, 4, 2], [3, 6, 4]]
    assert [r["n_radial"] for r in scan["rows"]] == [6 + 24 + 24 + 16, 167]
    code, text, err = run(capsys, "rank-scan", pot_path, "--data", cfg, "--valid", cfg,
                          "--method", "rmf", "--fractions", "0.3,0.5", "--max-iter", 2,
                          "--threads", 1, "--json")
    assert code == 0, err
    scan = json.loads(text)
    assert scan["n_train"] == 20 and scan["n_valid"] == 20
    # R-MF counts r (33 - r): 162 is the closest to 0.7 * 216 = 151.2, 116 to 108
    assert [r["ranks"] for r in scan["rows"]] == [[6], [4]]
