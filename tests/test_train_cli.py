"""`pyfit train` (TOML and flag forms), signals (a real subprocess receiving SIGTERM / SIGINT),
`pyfit plot`, `pyfit errors --committee` and the progress display."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import pyfit
from pyfit.cli import main
from pyfit.fitting.report import ProgressLog
from pyfit.fitting.trainer import load_checkpoint

DATA = Path(__file__).resolve().parent / "data"
TRAIN = DATA / "multi_training_20.cfg"
VALID = DATA / "multi_10_out_20.cfg"


def test_flag_form(tmp_path, capsys):
    out = tmp_path / "pot.mtp"
    rc = main(["train", "--level", "8", "--train", str(TRAIN), "--valid", str(VALID), "-o",
               str(out), "--max-iter", "12", "--threads", "1", "--progress-every", "5",
               "--species", "Cu,Ag,Au"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "20 training / 20 validation configurations" in cap.out
    assert "max_iter after 12 iterations" in cap.out
    assert f"wrote {out}" in cap.err
    pot = pyfit.MTP.load(out, species=["Cu", "Ag", "Au"])
    assert pot.species_count == 3
    records = [json.loads(line) for line in open(tmp_path / "pot.jsonl")]
    assert [r["iter"] for r in records if r["event"] == "iter"] == list(range(1, 13))
    assert records[-1]["valid"]["F_rmse"] > 0
    assert (tmp_path / "pot.ckpt.npz").exists()


def test_toml_form_with_flag_override(tmp_path, capsys):
    toml = tmp_path / "fit.toml"
    toml.write_text(f"""
[data]
train = "{TRAIN}"
[model]
level = 6
[optimizer]
max_iter = 50
threads = 1
[output]
potential = "out/p.mtp"
""")
    rc = main(["train", str(toml), "--max-iter", "4", "--quiet"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert cap.out == ""  # --quiet
    _, meta = load_checkpoint(tmp_path / "out" / "p.ckpt.npz")
    assert len(meta["history"]) == 5  # the flag won over the file: 4 iterations
    assert (tmp_path / "out" / "p.mtp").exists()  # relative to the TOML file


def test_cli_errors(tmp_path, capsys):
    toml = tmp_path / "fit.toml"
    toml.write_text("[model]\nlevel = 8\nspecies_order = ['Cu']\n")
    assert main(["train", str(toml)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'species_order' in [model]; allowed keys: level, species" in err
    assert main(["train", "--train", str(TRAIN)]) == 2
    assert "model.level is required" in capsys.readouterr().err
    assert main(["train", "--level", "8", "--train", str(tmp_path / "nope.cfg")]) == 2
    assert "nope.cfg: no such file" in capsys.readouterr().err


def wait_for_iterations(log: Path, n: int, proc, timeout=120.0) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"pyfit train exited early: {proc.communicate()}")
        if log.exists():
            its = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
            if sum(r["event"] == "iter" for r in its) >= n:
                return
        time.sleep(0.05)
    raise AssertionError("no progress")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_leaves_checkpoint_and_potential_and_resume_is_exact(tmp_path, sig):
    toml = tmp_path / "fit.toml"
    toml.write_text(f"""
[data]
train = "{TRAIN}"
[model]
level = 8
[optimizer]
max_iter = 1000000
rel_tol = 0.0
threads = 1
linear_solve_every = 7
[output]
potential = "pot.mtp"
checkpoint_every = 0
progress_every = 1000
""")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(pyfit.__file__).parents[1]),
                                         env.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, "-m", "pyfit.cli", "train", str(toml), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tmp_path)
    try:
        wait_for_iterations(tmp_path / "pot.jsonl", 20, proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    assert f"stopped by {sig.name}" in err and "--resume" in err
    state, meta = load_checkpoint(tmp_path / "pot.ckpt.npz")
    k = state.iteration
    assert k >= 20 and state.status == "running"
    pot = pyfit.MTP.load(tmp_path / "pot.mtp")
    # the potential holds the checkpointed parameters (to the 16 digits of MLIP's %.15e)
    np.testing.assert_allclose(np.concatenate([pot.model.radial_coeffs.ravel(),
                                               pot.model.species_coeffs,
                                               pot.model.moment_coeffs]), state.x,
                               rtol=1e-15, atol=0)
    from pyfit.io.dataset import read_configurations

    e = pot.evaluate(read_configurations(TRAIN)[0])
    assert np.isfinite(e.energy) and np.all(np.isfinite(e.forces))
    last = json.loads((tmp_path / "pot.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "stop" and last["reason"] == "signal" and last["iter"] == k
    # resume to k + 9 (crossing a linear solve) == an uninterrupted run to k + 9
    target = str(k + 9)
    assert main(["train", str(toml), "--resume", "--max-iter", target, "--quiet"]) == 0
    full = tmp_path / "full"
    assert main(["train", str(toml), "--max-iter", target, "--quiet", "-o",
                 str(full / "pot.mtp")]) == 0
    a, _ = load_checkpoint(tmp_path / "pot.ckpt.npz")
    b, _ = load_checkpoint(full / "pot.ckpt.npz")
    assert a.iteration == b.iteration == k + 9
    assert np.array_equal(a.x, b.x) and a.f == b.f and a.n_evals == b.n_evals
    assert (tmp_path / "pot.mtp").read_bytes() == (full / "pot.mtp").read_bytes()


def test_committee_errors(tmp_path, capsys):
    assert main(["train", "--level", "6", "--train", str(TRAIN), "-o", str(tmp_path / "e.mtp"),
                 "--max-iter", "5", "--threads", "1", "--n-models", "2", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["errors", "--committee", str(tmp_path / "e.*.mtp"), str(TRAIN), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    spread = out["multi_training_20.cfg"]["committee_spread"]
    assert spread["energy_std_mean"] > 0 and spread["forces_std_rms"] > 0
    assert spread["forces_std_max"] >= spread["forces_std_rms"]
    assert main(["errors", "--committee", f"{tmp_path / 'e.0.mtp'},{tmp_path / 'e.1.mtp'}",
                 str(TRAIN)]) == 0
    assert "committee of 2 on multi_training_20.cfg: energy spread" in capsys.readouterr().out


def test_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pot = tmp_path / "pot.mtp"
    assert main(["train", "--level", "6", "--train", str(TRAIN), "-o", str(pot),
                 "--max-iter", "6", "--threads", "1", "--progress-every", "3", "--quiet",
                 "--linear-solve-every", "3"]) == 0
    assert main(["plot", "loss", str(tmp_path / "pot.jsonl"), "-o",
                 str(tmp_path / "loss.png")]) == 0
    assert main(["plot", "parity", str(pot), str(TRAIN), str(VALID), "-o",
                 str(tmp_path / "parity.png")]) == 0
    for name in ("loss.png", "parity.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "bad.jsonl").write_text('{"event": "iter"}\nnot json\n')
    assert main(["plot", "loss", str(tmp_path / "bad.jsonl"), "-o", str(tmp_path / "x.png")]) == 2
    assert "bad.jsonl:2: not a JSON record" in capsys.readouterr().err


def test_plot_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    (tmp_path / "log.jsonl").write_text('{"event": "iter", "iter": 1, "loss": 1.0}\n')
    assert main(["plot", "loss", str(tmp_path / "log.jsonl"), "-o", str(tmp_path / "x.png")]) == 2
    assert "plots need matplotlib" in capsys.readouterr().err


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_live_on_a_terminal():
    tty, pipe = FakeTTY(), io.StringIO()
    for stream in (tty, pipe):
        log = ProgressLog(None, stream=stream)
        log.iteration(0, 1, 1.5, 0.01)  # status line: only on a terminal
        log.iteration(0, 2, 1.25, 0.02, train={"E_rmse": 1e-3, "F_rmse": 0.1, "S_rmse": None})
        log.close()
    assert "\r\033[K  model 0 iter      1  loss 1.500000e+00" in tty.getvalue()
    assert "\r" not in pipe.getvalue()
    row = pipe.getvalue().splitlines()[-1]
    assert "1.250000e+00" in row and "1.00" in row and "0.1000" in row
