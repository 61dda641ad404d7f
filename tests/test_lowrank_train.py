"""`pyfit.fit` / `pyfit train` with a [compression] table: the trainer fits MF and TF through
pyfit.lowrank.objective.make_objective and writes factored potentials; rmf and mfra are refused
with a pointer to their optimisers."""

import json
from pathlib import Path

import pytest

import pyfit
from pyfit.errors import PyfitError
from pyfit.io.dataset import read_configurations
from pyfit.io.lowrank_file import read_lowrank, read_potential
from pyfit.metrics import compute_errors

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def configs():
    return read_configurations(DATA / "multi_training_20.cfg")[:10]


def settings(tmp_path, compression, max_iter=20):
    return {"model": {"level": 8, "species": ["Cu", "Ag", "Au"]},
            "optimizer": {"max_iter": max_iter, "threads": 1, "linear_solve_every": 10,
                          "rel_tol": 0.0},
            "output": {"potential": str(tmp_path / "pot.mtplr"), "checkpoint_every": 5,
                       "progress_every": 10},
            "compression": compression}


@pytest.mark.parametrize("compression, form, n_radial", [
    ({"method": "mf", "rank": 3}, "mf", 3 * (9 + 16)),  # level 8: K = 2, R = 8
    ({"method": "tf", "ranks": [3, 4, 2]}, "tt", 3 * 3 + 3 * 3 * 4 + 4 * 2 * 2 + 2 * 8),
])
def test_train_writes_factored_potential(tmp_path, configs, compression, form, n_radial):
    res = pyfit.fit(configs, settings(tmp_path, compression), progress=False)
    m = res.models[0]
    assert m.iterations == 20
    data = read_lowrank(tmp_path / "pot.mtplr")
    assert data.factors.n_params == n_radial
    assert ("mf" if hasattr(data.factors, "rank") else "tt") == form
    assert data.species_names == ("Cu", "Ag", "Au")
    pot = read_potential(tmp_path / "pot.mtplr")
    again = compute_errors(pot, configs)
    assert again.forces_rmse == pytest.approx(m.train_errors.forces_rmse, rel=1e-9)
    log = [json.loads(line) for line in open(tmp_path / "pot.jsonl")]
    assert log[0]["event"] == "start" and log[0]["n_params"] == n_radial + 3 + 9
    assert m.train_errors.forces_rmse < 0.7 * log[0]["train"]["F_rmse"]


@pytest.mark.parametrize("method", ["rmf", "mfra"])
def test_train_refuses_riemannian_and_augmented(tmp_path, configs, method):
    with pytest.raises(PyfitError, match=f"method = {method}: pyfit train runs Euclidean BFGS"):
        pyfit.fit(configs, settings(tmp_path, {"method": method, "rank": 2}), progress=False)
