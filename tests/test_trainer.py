"""The trainer through the Python API (pyfit.fit): a real fit, determinism, resume, ensembles,
the objective protocol, TOML and data errors. Small data (20 Cu/Ag/Au configurations), low
levels, one or two threads: each fit takes well under a second."""

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import pyfit
from pyfit.configuration import Configuration
from pyfit.errors import PyfitError
from pyfit.fitting.config import TrainConfig, config_from_dict, load_config
from pyfit.fitting.trainer import DenseObjective, load_checkpoint
from pyfit.io.dataset import read_configurations


DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def configs():
    return read_configurations(DATA / "multi_training_20.cfg")


def settings(tmp_path, **optimizer):
    opt = {"max_iter": 30, "threads": 1, "linear_solve_every": 10, "rel_tol": 0.0}
    opt.update(optimizer)
    return {"model": {"level": 8}, "optimizer": opt,
            "output": {"potential": str(tmp_path / "pot.mtp"), "checkpoint_every": 5,
                       "progress_every": 10}}


def read_log(path):
    return [json.loads(line) for line in open(path)]


def test_fit_lowers_errors_substantially(tmp_path, configs, data_dir):
    cfg = settings(tmp_path, max_iter=150, linear_solve_every=50)
    res = pyfit.fit(configs, cfg, progress=False)
    m = res.models[0]
    start = read_log(tmp_path / "pot.jsonl")[0]
    assert start["event"] == "start"
    e0, f0 = start["train"]["E_rmse"], start["train"]["F_rmse"]
    e1, f1 = m.train_errors.energy_rmse, m.train_errors.forces_rmse
    assert m.stop_reason == "max_iter" and m.iterations == 150
    assert f1 < 0.15 * f0 and e1 < 0.25 * e0
    # level 8 from a random start: 0.59 -> 0.050 eV/Å, 5.9 -> 0.37 meV/atom (MLIP-2's level-10
    # potential of tests/data, trained on 10x more data: 0.015 eV/Å, 0.11 meV/atom)
    assert f1 < 0.065  # eV/Å
    assert e1 < 1e-3  # eV/atom
    # the written potential is the fitted one and reproduces the reported errors
    from pyfit.metrics import compute_errors

    pot = pyfit.MTP.load(tmp_path / "pot.mtp")
    again = compute_errors(pot, configs)
    assert again.forces_rmse == pytest.approx(f1, rel=1e-9)
    # the loss decreases monotonically (BFGS steps and only accepted linear solves)
    losses = [r["loss"] for r in read_log(tmp_path / "pot.jsonl") if r["event"] == "iter"]
    assert all(b <= a for a, b in zip(losses, losses[1:]))


@pytest.mark.parametrize("threads", [1, 2])
def test_deterministic_for_seed_and_threads(tmp_path, configs, threads):
    a = pyfit.fit(configs, settings(tmp_path / "a", threads=threads), progress=False)
    b = pyfit.fit(configs, settings(tmp_path / "b", threads=threads), progress=False)
    assert np.array_equal(a.models[0].x, b.models[0].x)
    assert (tmp_path / "a" / "pot.mtp").read_bytes() == (tmp_path / "b" / "pot.mtp").read_bytes()
    c = pyfit.fit(configs, settings(tmp_path / "c", threads=threads, seed=1), progress=False)
    assert not np.array_equal(a.models[0].x, c.models[0].x)


@pytest.mark.parametrize("method", ["bfgs", "lbfgs"])
def test_resume_equals_uninterrupted(tmp_path, configs, method):
    full = pyfit.fit(configs, settings(tmp_path / "full", max_iter=27, method=method),
                     progress=False).models[0]
    # stop at 13 (between linear solves and checkpoints), then continue to 27
    pyfit.fit(configs, settings(tmp_path / "part", max_iter=13, method=method), progress=False)
    state, meta = load_checkpoint(tmp_path / "part" / "pot.ckpt.npz")
    assert state.iteration == 13 and str(meta["stop_reason"]) == "max_iter"
    resumed = pyfit.fit(configs, settings(tmp_path / "part", max_iter=27, method=method),
                        resume=True, progress=False).models[0]
    assert resumed.iterations == full.iterations == 27
    assert resumed.n_evals == full.n_evals
    assert resumed.loss == full.loss
    assert np.array_equal(resumed.x, full.x)
    assert (tmp_path / "full" / "pot.mtp").read_bytes() == \
        (tmp_path / "part" / "pot.mtp").read_bytes()
    events = [r["event"] for r in read_log(tmp_path / "part" / "pot.jsonl")]
    assert events.count("start") == 2 and events.count("stop") == 2


def test_potential_written_with_every_checkpoint(tmp_path, configs, monkeypatch):
    """A long fit's current potential is on disk at every checkpoint (usable while it runs):
    the file written at iteration 5 of a 12-iteration fit is the 5-iteration fit's."""
    from pyfit.fitting import trainer

    written = []
    original = trainer._save_potential

    def spy(objective, x, path):
        pot = original(objective, x, path)
        written.append(Path(path).read_bytes())
        return pot

    monkeypatch.setattr(trainer, "_save_potential", spy)
    pyfit.fit(configs, settings(tmp_path / "long", max_iter=12), progress=False)
    assert len(written) == 3  # checkpoints at 5 and 10, the final potential at 12
    log = read_log(tmp_path / "long" / "pot.jsonl")
    assert [(r["iter"], r["potential"]) for r in log if r["event"] == "checkpoint"] == \
        [(5, str(tmp_path / "long" / "pot.mtp")), (10, str(tmp_path / "long" / "pot.mtp"))]
    pyfit.fit(configs, settings(tmp_path / "short", max_iter=5), progress=False)
    assert written[0] == (tmp_path / "short" / "pot.mtp").read_bytes()
    assert written[2] == (tmp_path / "long" / "pot.mtp").read_bytes() != written[0]


def test_resume_refuses_a_different_fit(tmp_path, configs):
    pyfit.fit(configs, settings(tmp_path, max_iter=3), progress=False)
    other = settings(tmp_path, max_iter=6)
    other["loss"] = {"forces": 0.1}
    with pytest.raises(PyfitError, match="written by a different fit"):
        pyfit.fit(configs, other, resume=True, progress=False)
    with pytest.raises(PyfitError, match="written by a different fit"):  # other data
        pyfit.fit(configs[:-1], settings(tmp_path, max_iter=6), resume=True, progress=False)
    pyfit.fit(configs, settings(tmp_path, max_iter=6), resume=True, progress=False)


def test_stopping_rules(tmp_path, configs):
    r = pyfit.fit(configs, settings(tmp_path / "a", max_iter=500, rel_tol=0.5, rel_window=5),
                  progress=False).models[0]
    assert r.stop_reason == "rel_tol" and 5 <= r.iterations < 500
    r = pyfit.fit(configs, settings(tmp_path / "b", max_iter=100000, max_time=0.3),
                  progress=False).models[0]
    assert r.stop_reason == "max_time" and r.wall_time < 5


def test_linear_solves_logged_and_reset(tmp_path, configs):
    pyfit.fit(configs, settings(tmp_path, max_iter=21, linear_solve_every=10), progress=False)
    lin = [r for r in read_log(tmp_path / "pot.jsonl") if r["event"] == "linear_solve"]
    assert [r["iter"] for r in lin] == [10, 20]
    for r in lin:
        assert r["accepted"] == (r["loss_after"] < r["loss_before"])


def test_ensemble_files_and_spread(tmp_path, configs):
    cfg = settings(tmp_path, max_iter=15, n_models=3)
    res = pyfit.fit(configs, cfg, progress=False)
    assert [m.seed for m in res.models] == [0, 1, 2]
    paths = [tmp_path / f"pot.{k}.mtp" for k in range(3)]
    assert all(p.exists() for p in paths) and not (tmp_path / "pot.mtp").exists()
    assert len({p.read_bytes() for p in paths}) == 3
    ens = res.ensemble()
    c = configs[3]
    r = ens.evaluate(c)
    members = [p.evaluate(c) for p in res.potentials]
    assert r.energy == pytest.approx(np.mean([m.energy for m in members]), rel=1e-14)
    assert np.allclose(r.forces, np.mean([m.forces for m in members], axis=0), atol=1e-14)
    assert r.energy_std == pytest.approx(np.std([m.energy for m in members]), rel=1e-12)
    assert r.energy_std > 0 and np.all(r.forces_std >= 0) and r.forces_std.max() > 0
    loaded = pyfit.Ensemble.load(str(tmp_path / "pot.*.mtp"))
    assert len(loaded) == 3 and loaded.evaluate(c).energy == pytest.approx(r.energy, rel=1e-14)
    # model k of the ensemble equals a single fit with seed k
    single = pyfit.fit(configs, settings(tmp_path / "s", max_iter=15, seed=2), progress=False)
    assert np.array_equal(single.models[0].x, res.models[2].x)
    with pytest.raises(PyfitError, match="at least 2"):
        pyfit.Ensemble(res.potentials[:1])


def test_validation_split_and_errors(tmp_path, configs):
    cfg = settings(tmp_path, max_iter=10)
    cfg["data"] = {"train": [str(tmp_path / "x.cfg")], "valid_fraction": 0.25, "split_seed": 3}
    from pyfit.io.cfg import write_cfg

    write_cfg(tmp_path / "x.cfg", configs)
    res = pyfit.fit(None, cfg, progress=False).models[0]
    assert res.valid_errors.n_configs == 5 and res.train_errors.n_configs == 15
    stop = read_log(tmp_path / "pot.jsonl")[-1]
    assert stop["valid"]["F_rmse"] == pytest.approx(res.valid_errors.forces_rmse)


def test_config_weights_file(tmp_path, configs):
    w = tmp_path / "w.txt"
    w.write_text("\n".join(["1"] * 19 + ["0"]) + "\n")
    cfg = settings(tmp_path, max_iter=3)
    cfg["loss"] = {"config_weights": str(w)}
    pyfit.fit(configs, cfg, progress=False)
    w.write_text("1\n2\n")
    with pytest.raises(PyfitError, match="expected 20 weights"):
        pyfit.fit(configs, cfg, progress=False)


# -------------------------------------------------------------------- objective protocol
class MinimalObjective:
    """Only the required members of the protocol (no linear_solve)."""

    def __init__(self, dense):
        self.dense, self.n_params, self.calls = dense, dense.n_params, 0

    def initial(self, rng):
        return self.dense.initial(rng)

    def value(self, x):
        return self.dense.value(x)

    def value_and_grad(self, x):
        self.calls += 1
        return self.dense.value_and_grad(x)

    def to_potential(self, x):
        return self.dense.to_potential(x)

    def errors(self, x):
        return self.dense.errors(x)


def test_compression_hook_uses_the_factory(tmp_path, configs, monkeypatch):
    seen = {}

    def make_objective(loss, compression, rng, species=None):
        seen.update(compression=compression, rng=rng)
        seen["objective"] = MinimalObjective(DenseObjective(loss, species))
        return seen["objective"]

    fake = types.ModuleType("pyfit.lowrank.objective")
    fake.make_objective = make_objective
    monkeypatch.setitem(sys.modules, "pyfit.lowrank.objective", fake)
    cfg = settings(tmp_path, max_iter=5)
    cfg["compression"] = {"method": "mf", "rank": 2}
    res = pyfit.fit(configs, cfg, progress=False)
    assert seen["compression"] == {"method": "mf", "rank": 2}
    assert isinstance(seen["rng"], np.random.Generator)
    assert seen["objective"].calls >= 6 and res.models[0].iterations == 5
    assert not any(r["event"] == "linear_solve" for r in read_log(tmp_path / "pot.jsonl"))


def test_compression_not_available(tmp_path, configs, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyfit.lowrank.objective", None)  # import fails
    cfg = settings(tmp_path, max_iter=5)
    cfg["compression"] = {"rank": 2}
    with pytest.raises(PyfitError, match=r"\[compression\].*not available"):
        pyfit.fit(configs, cfg, progress=False)


# -------------------------------------------------------------------- bad data
def test_species_not_in_list(tmp_path, data_dir):
    cfg = settings(tmp_path)
    cfg["data"] = {"train": [str(data_dir / "nbmotaw_subset.json")]}
    cfg["model"]["species"] = ["Mo", "Ta"]
    with pytest.raises(PyfitError, match=r"element 'Nb' is not in species \['Mo', 'Ta'\]"):
        pyfit.fit(None, cfg, progress=False)
    cfg["data"] = {"train": [str(data_dir / "multi_training_20.cfg")]}
    cfg["model"]["species"] = ["Cu", "Ag"]
    with pytest.raises(PyfitError, match=r"type 2, expected a type in 0\.\.1"):
        pyfit.fit(None, cfg, progress=False)


def test_species_from_json_data(tmp_path, data_dir):
    cfg = settings(tmp_path, max_iter=2)
    cfg["data"] = {"train": [str(data_dir / "nbmotaw_subset.json")]}
    res = pyfit.fit(None, cfg, progress=False)
    assert res.potential.species == ("Nb", "Mo")
    assert res.potential.species_count == 2


def test_missing_forces_nan_labels_empty(tmp_path, configs):
    cfg = settings(tmp_path, max_iter=2)
    broken = [c.copy() for c in configs[:4]]
    broken[2].forces = None
    broken[2].source = "x.cfg:77"
    with pytest.raises(PyfitError, match=r"x\.cfg:77: no forces, but the force weight is 0\.01"):
        pyfit.fit(broken, cfg, progress=False)
    cfg["loss"] = {"forces": 0.0}
    pyfit.fit(broken, cfg, progress=False)  # fine without the force term
    nan = [c.copy() for c in configs[:4]]
    nan[1].energy = float("nan")
    with pytest.raises(PyfitError, match="energy label is NaN"):
        pyfit.fit(nan, cfg, progress=False)
    nan = [c.copy() for c in configs[:4]]
    nan[0].forces = nan[0].forces.copy()
    nan[0].forces[3, 1] = np.nan
    with pytest.raises(PyfitError, match="force labels contain NaN"):
        pyfit.fit(nan, cfg, progress=False)
    with pytest.raises(PyfitError, match="training set is empty"):
        pyfit.fit([], cfg, progress=False)
    (tmp_path / "empty.cfg").write_text("")
    cfg["data"] = {"train": [str(tmp_path / "empty.cfg")]}
    with pytest.raises(PyfitError, match="empty.cfg:1: no configuration found"):
        pyfit.fit(None, cfg, progress=False)


def test_bad_types_in_validation_set(tmp_path, configs):
    valid = [Configuration(positions=[[0, 0, 0], [2, 0, 0]], types=[0, 5], cell=np.eye(3) * 9,
                           energy=1.0, forces=np.zeros((2, 3)), source="v.cfg:1")]
    with pytest.raises(PyfitError, match=r"v\.cfg:1: atom type 5 is not one of the 3 species"):
        pyfit.fit(configs, settings(tmp_path), valid=valid, progress=False)


# -------------------------------------------------------------------- TOML
def write_toml(tmp_path, text):
    p = tmp_path / "fit.toml"
    p.write_text(text)
    return p


def test_toml_round_trip_and_relative_paths(tmp_path):
    p = write_toml(tmp_path, """
[data]
train = "a.cfg"
valid = ["b.cfg", "/abs/c.cfg"]
[model]
level = 12
species = ["Nb", "Mo"]
max_dist = 5
[loss]
forces = 0.1
[optimizer]
method = "lbfgs"
n_models = 2
[output]
potential = "out/pot.mtp"
[compression]
method = "tf"
ranks = [2, 3, 2]
""")
    cfg = load_config(p)
    assert cfg.data.train == [str(tmp_path / "a.cfg")]
    assert cfg.data.valid == [str(tmp_path / "b.cfg"), "/abs/c.cfg"]
    assert cfg.model.level == 12 and cfg.model.max_dist == 5.0 and cfg.loss.forces == 0.1
    assert cfg.loss.energy == 1.0 and cfg.loss.stress == 0.001  # MLIP-2's defaults
    assert cfg.optimizer.method == "lbfgs" and cfg.compression == {"method": "tf",
                                                                   "ranks": [2, 3, 2]}
    assert cfg.potential_path(1) == tmp_path / "out" / "pot.1.mtp"
    assert cfg.checkpoint_path(1) == tmp_path / "out" / "pot.1.ckpt.npz"
    assert cfg.log_path() == tmp_path / "out" / "pot.jsonl"


def test_toml_unknown_key_names_section_and_allowed(tmp_path):
    p = write_toml(tmp_path, "[data]\ntrain = 'a.cfg'\n[optimizer]\nmax_iters = 5\n")
    with pytest.raises(PyfitError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert "unknown key 'max_iters' in [optimizer]" in msg
    assert "allowed keys: method, max_iter, rel_tol" in msg and "n_models" in msg
    p = write_toml(tmp_path, "[optimiser]\nmax_iter = 5\n")
    with pytest.raises(PyfitError, match=r"unknown section \[optimiser\]; allowed sections: "
                                         r"\[data\], \[model\].*\[compression\]"):
        load_config(p)


@pytest.mark.parametrize("text, match", [
    ("[model]\nlevel = '16'", r"\[model\] level: expected an integer, found a string"),
    ("[model]\nlevel = 16.0", r"\[model\] level: expected an integer, found a number"),
    ("[loss]\nforces = true", r"\[loss\] forces: expected a number, found a boolean"),
    ("[data]\ntrain = [1, 2]", r"\[data\] train: expected a string or an array of strings"),
    ("model = 3", r"model must be a table"),
    ("[model]\nlevel = 7", r"model.level: expected an even level"),
    ("[model]\nlevel = 8\n[optimizer]\nmethod = 'newton'", r"optimizer.method"),
    ("[model]\nlevel = 8\n[optimizer]\nc1 = 0.9", r"0 < c1 < c2 < 1"),
    ("[model]\nlevel = 8", r"data.train: no training files"),
    ("[data]\ntrain = 'a.cfg'", r"model.level is required"),
    ("[model\nlevel = 8", r"fit.toml: invalid TOML"),
])
def test_toml_errors(tmp_path, text, match):
    with pytest.raises(PyfitError, match=match):
        load_config(write_toml(tmp_path, text))


def test_config_objects():
    cfg = config_from_dict({"model": {"level": 8}, "data": {"train": "x.cfg"}}).validate()
    assert isinstance(cfg, TrainConfig)
    a = cfg.fingerprint()
    cfg.optimizer.max_iter = 7  # limits do not change the fingerprint ...
    cfg.output.potential = "other.mtp"
    assert cfg.fingerprint() == a
    cfg.optimizer.seed = 3  # ... what changes the iterates does
    assert cfg.fingerprint() != a
    assert cfg.fingerprint("data1") != cfg.fingerprint("data2")
