"""pyfit train options: per-file configuration weights ([data] file_weights) and starting from
a trained potential ([model] init / --init), for dense and factored fits."""

import json
from pathlib import Path

import numpy as np
import pytest

import pyfit
from pyfit.cli import main as cli_main
from pyfit.errors import PyfitError
from pyfit.fitting.config import config_from_dict
from pyfit.fitting.data import file_weight_of
from pyfit.fitting.loss import Loss
from pyfit.fitting.trainer import make_template
from pyfit.io.dataset import read_configurations
from pyfit.io.mtp_file import read_mtp

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def configs():
    return read_configurations(DATA / "multi_training_20.cfg")


@pytest.fixture()
def split_files(tmp_path, configs):
    """The 20 configurations as two .cfg files (a_*: 12, b_*: 8) next to each other."""
    from pyfit.io.cfg import write_cfg

    a, b = tmp_path / "a_bulk.cfg", tmp_path / "b_surface.cfg"
    write_cfg(a, configs[:12])
    write_cfg(b, configs[12:])
    return a, b


def settings(tmp_path, train, **extra):
    cfg = {"data": {"train": [str(p) for p in train]},
           "model": {"level": 6, "species": ["Cu", "Ag", "Au"]},
           "optimizer": {"max_iter": 12, "threads": 1, "linear_solve_every": 5, "rel_tol": 0.0},
           "output": {"potential": str(tmp_path / "out" / "pot.mtp"), "checkpoint_every": 5,
                      "progress_every": 5}}
    for section, values in extra.items():
        cfg.setdefault(section, {}).update(values)
    return cfg


def log_of(tmp_path):
    return [json.loads(line) for line in open(tmp_path / "out" / "pot.jsonl")]


# ------------------------------------------------------------------ file weights
def test_file_weights_are_per_configuration_weights(tmp_path, split_files):
    a, b = split_files
    weighted = pyfit.fit(None, settings(tmp_path / "w", split_files,
                                        data={"file_weights": {"*_surface.cfg": 5.0}}),
                         progress=False).models[0]
    wfile = tmp_path / "weights.txt"
    wfile.write_text("\n".join(["1"] * 12 + ["5"] * 8) + "\n")
    explicit = pyfit.fit(None, settings(tmp_path / "e", split_files,
                                        loss={"config_weights": str(wfile)}),
                         progress=False).models[0]
    plain = pyfit.fit(None, settings(tmp_path / "p", split_files), progress=False).models[0]
    assert np.array_equal(weighted.x, explicit.x)
    assert not np.allclose(weighted.x, plain.x)
    # both weightings multiply: file weights 5 on b_*, file of weights 1 / 3 on a_* / b_*
    # = weights 1 (a) and 15 (b)
    wfile.write_text("\n".join(["1"] * 12 + ["3"] * 8) + "\n")
    both = pyfit.fit(None, settings(tmp_path / "b", split_files,
                                    data={"file_weights": {"b_*": 5.0}},
                                    loss={"config_weights": str(wfile)}),
                     progress=False).models[0]
    wfile.write_text("\n".join(["1"] * 12 + ["15"] * 8) + "\n")
    product = pyfit.fit(None, settings(tmp_path / "q", split_files,
                                       loss={"config_weights": str(wfile)}),
                        progress=False).models[0]
    assert np.array_equal(both.x, product.x)


def test_file_weights_follow_a_validation_split(tmp_path, split_files):
    cfg = settings(tmp_path, split_files, data={"file_weights": {"b_surface.cfg": 0.0},
                                                "valid_fraction": 0.25, "split_seed": 3})
    res = pyfit.fit(None, cfg, progress=False).models[0]
    from pyfit.fitting.data import load_dataset

    ds = load_dataset(config_from_dict(cfg).data, ["Cu", "Ag", "Au"])
    assert len(ds.train) == 15 and len(ds.valid) == 5
    surface = {c.source.rsplit(":", 1)[0] for c in ds.train}
    w = dict(zip([c.source for c in ds.train], ds.train_weights))
    assert all((v == 0.0) == ("b_surface" in s) for s, v in w.items()) and len(surface) == 2
    assert res.iterations == 12


def test_file_weight_patterns(tmp_path):
    assert file_weight_of("/x/Mo_Surface.json", {"*_Surface.json": 10, "*_AIMD.json": 4}) == 10
    assert file_weight_of("/x/Mo_SS.json", {"*_Surface.json": 10}) == 1.0
    assert file_weight_of("/d/nb/Mo_SS.json", {"nb/*.json": 3}) == 3
    with pytest.raises(PyfitError, match=r"matches \['\*_Surface\.json', 'Mo_\*'\] with "
                                         r"different weights"):
        file_weight_of("/x/Mo_Surface.json", {"*_Surface.json": 10, "Mo_*": 2})


@pytest.mark.parametrize("weights, message", [
    ({"*_nothing.cfg": 2.0}, r"data.file_weights: pattern '\*_nothing.cfg' matches none of "
                             r"the training files \(a_bulk.cfg, b_surface.cfg\)"),
    ({"*.cfg": 0.0}, "every training configuration has weight 0"),
])
def test_file_weight_errors(tmp_path, split_files, weights, message):
    with pytest.raises(PyfitError, match=message):
        pyfit.fit(None, settings(tmp_path, split_files, data={"file_weights": weights}),
                  progress=False)


@pytest.mark.parametrize("value, message", [
    (3.0, r"\[data\] file_weights: expected a table of file-name patterns and weights"),
    ({"*.cfg": -1}, r"\[data\] file_weights: '\*\.cfg': expected a finite weight >= 0"),
    ({"*.cfg": "x"}, r"expected a finite weight >= 0, found 'x'"),
])
def test_file_weight_config_errors(value, message):
    with pytest.raises(PyfitError, match=message):
        config_from_dict({"data": {"file_weights": value}})


def test_file_weights_need_files(tmp_path, configs):
    cfg = settings(tmp_path, [], data={"file_weights": {"*.cfg": 2.0}})
    with pytest.raises(PyfitError, match="data.file_weights applies to the files"):
        pyfit.fit(configs, cfg, progress=False)


# ------------------------------------------------------------------ init
@pytest.fixture()
def trained(tmp_path, split_files):
    """A level-6 potential fitted for 12 iterations, and its loss on the training files."""
    res = pyfit.fit(None, settings(tmp_path / "first", split_files), progress=False).models[0]
    return res


def test_init_continues_from_a_trained_potential(tmp_path, split_files, trained):
    pot = trained.potential_path
    res = pyfit.fit(None, settings(tmp_path, split_files, model={"init": str(pot)}),
                    progress=False).models[0]
    start = log_of(tmp_path)[0]
    # the potential file keeps 17 digits: the start is the first fit's end
    assert start["loss"] == pytest.approx(trained.loss, rel=1e-12)
    assert res.loss < trained.loss
    # no randomness in the start: another seed gives the same fit
    again = pyfit.fit(None, settings(tmp_path / "s", split_files, model={"init": str(pot)},
                                     optimizer={"seed": 7}), progress=False).models[0]
    assert np.array_equal(again.x, res.x)


def test_init_of_a_factored_fit_is_the_truncation(tmp_path, split_files, trained):
    from pyfit.lowrank.objective import MatrixObjective

    pot = trained.potential_path
    cfg = settings(tmp_path, split_files, model={"init": str(pot)},
                   compression={"method": "rmf", "rank": 2},
                   output={"potential": str(tmp_path / "out" / "pot.mtplr")})
    res = pyfit.fit(None, cfg, progress=False).models[0]
    loss = Loss(make_template(6, 3, 2.0, 5.0, 8), read_configurations(split_files[0])
                + read_configurations(split_files[1]), n_threads=1)
    obj = MatrixObjective(loss, 2, method="rmf")
    x0 = obj.from_dense(loss.pack(read_mtp(pot)), solve=True)
    start = json.loads(open(tmp_path / "out" / "pot.jsonl").readline())
    assert start["loss"] == pytest.approx(obj.value(x0), rel=1e-10)
    assert res.loss <= start["loss"]


def test_init_resume_equals_uninterrupted(tmp_path, split_files, trained):
    pot = trained.potential_path
    full = pyfit.fit(None, settings(tmp_path / "full", split_files, model={"init": str(pot)},
                                    optimizer={"max_iter": 14}), progress=False).models[0]
    part = settings(tmp_path / "part", split_files, model={"init": str(pot)},
                    optimizer={"max_iter": 7})
    pyfit.fit(None, part, progress=False)
    part["optimizer"]["max_iter"] = 14
    resumed = pyfit.fit(None, part, resume=True, progress=False).models[0]
    assert np.array_equal(resumed.x, full.x)
    # another starting potential is another fit
    from pyfit.io.mtp_file import write_mtp

    other = tmp_path / "other.mtp"
    m = read_mtp(pot)
    m.species_coeffs = m.species_coeffs + 0.5
    write_mtp(m, other)
    part["model"]["init"] = str(other)
    with pytest.raises(PyfitError, match="written by a different fit"):
        pyfit.fit(None, part, resume=True, progress=False)


def test_init_errors(tmp_path, split_files, trained):
    pot = trained.potential_path
    with pytest.raises(PyfitError, match=r"model.init: .*: 5 basis functions and 2 radial "
                                         r"functions, the \[model\] level has 2 and 1; the "
                                         r"starting potential must be of the same or a lower "
                                         r"level"):
        pyfit.fit(None, settings(tmp_path, split_files, model={"init": str(pot), "level": 4}),
                  progress=False)
    with pytest.raises(PyfitError, match=r"model.init: .* has max_dist = 5.0, the \[model\] "
                                         r"settings give 6.0"):
        pyfit.fit(None, settings(tmp_path, split_files,
                                 model={"init": str(pot), "max_dist": 6.0}), progress=False)
    with pytest.raises(PyfitError, match=r"n_models = 1 with model.init"):
        pyfit.fit(None, settings(tmp_path, split_files, model={"init": str(pot)},
                                 optimizer={"n_models": 2}), progress=False)
    with pytest.raises(PyfitError, match="no_such.mtp"):
        pyfit.fit(None, settings(tmp_path, split_files,
                                 model={"init": str(tmp_path / "no_such.mtp")}), progress=False)


def test_init_from_a_lower_level(tmp_path, split_files, trained):
    """--level 10 --init <level-6 potential>: the fit starts exactly at the level-6 loss (the
    embedded potential computes the same energies, forces and stresses) and improves on it."""
    pot = trained.potential_path
    cfg = settings(tmp_path, split_files, model={"init": str(pot), "level": 10},
                   optimizer={"max_iter": 12})
    res = pyfit.fit(None, cfg, progress=False).models[0]
    start = json.loads(open(tmp_path / "out" / "pot.jsonl").readline())
    configs = read_configurations(split_files[0]) + read_configurations(split_files[1])
    low = Loss(make_template(6, 3, 2.0, 5.0, 8), configs, n_threads=1)
    assert start["loss"] == pytest.approx(low.value(low.pack(read_mtp(pot))), rel=1e-10)
    assert res.loss < start["loss"]
    # the new linear parameters are solved for before the first step, and that helps
    solves = [r for r in map(json.loads, open(tmp_path / "out" / "pot.jsonl"))
              if r["event"] == "linear_solve"]
    assert solves[0]["iter"] == 0 and solves[0]["accepted"]
    assert solves[0]["loss_after"] < start["loss"]
    assert read_mtp(tmp_path / "out" / "pot.mtp").potential_name == "MTP10"


def test_cli_init_flag(tmp_path, split_files, trained, capsys):
    out = tmp_path / "cli.mtp"
    rc = cli_main(["train", "--train", str(split_files[0]), str(split_files[1]), "--level", "6",
                   "--species", "Cu,Ag,Au", "--init", str(trained.potential_path),
                   "--max-iter", "3", "--threads", "1", "-o", str(out), "--quiet"])
    assert rc == 0 and out.is_file()
    start = json.loads(open(tmp_path / "cli.jsonl").readline())
    assert start["loss"] == pytest.approx(trained.loss, rel=1e-12)
