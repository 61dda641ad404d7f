"""`pyfit.fit` / `pyfit train` with a [compression] table: the trainer fits MF and TF (its
Euclidean BFGS), R-MF and MFRA (their drivers, pyfit.lowrank.drivers) through
pyfit.lowrank.objective.make_objective and writes factored potentials; the R-MF / MFRA fits are
the same as pyfit.lowrank.fit.fit_objective's and resume exactly."""

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
    import io

    out = io.StringIO()
    res = pyfit.fit(configs, settings(tmp_path, compression), stream=out, live=False)
    m = res.models[0]
    assert m.iterations == 20
    # the header counts what is fitted: factors + 9 moment + 3 species coefficients
    dense = 3 * 3 * 2 * 8 + 9 + 3
    assert (f"{n_radial + 12} parameters ({compression['method'].upper()}; dense {dense})"
            in out.getvalue().splitlines()[0])
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


RMF = {"method": "rmf", "rank": 2}
MFRA = {"method": "mfra", "rank": 3, "r0": 1, "delta_r": 1, "every": 7}


def same_as_fit_objective(tmp_path, configs, compression, max_iter):
    """pyfit.fit (trainer + driver) and fit_objective: the same iterates."""
    import numpy as np

    from pyfit.fitting.loss import Loss
    from pyfit.fitting.trainer import make_template
    from pyfit.lowrank.fit import fit_objective
    from pyfit.lowrank.objective import objective_from_table

    cfg = settings(tmp_path, compression, max_iter)
    cfg["optimizer"]["reset_after_linear_solve"] = True  # as fit_objective's BFGS
    res = pyfit.fit(configs, cfg, progress=False).models[0]
    loss = Loss(make_template(8, 3, 2.0, 5.0, 8), configs, n_threads=1)
    ref = fit_objective(objective_from_table(loss, compression), rng=np.random.default_rng(0),
                        max_iter=max_iter, linear_solve_every=10)
    return res, ref


def test_train_rmf_is_riemannian_bfgs(tmp_path, configs):
    # 23 iterations: linear solves at 10 and 20 in both (fit_objective's R-BFGS also solves
    # after its last iteration when max_iter is a multiple of 10)
    # fit_rmf re-derives the factors for its linear solves from an SVD of the full matrix, the
    # driver uses the iterate's own; that round-off grows to ~5e-9 relative in 23 iterations
    # (a different step would differ by 1e-2)
    res, ref = same_as_fit_objective(tmp_path, configs, RMF, 23)
    assert res.iterations == ref.n_iter == 23
    assert res.x == pytest.approx(ref.x, rel=1e-7, abs=1e-10)
    assert res.loss == pytest.approx(ref.value, rel=1e-9)
    data = read_lowrank(tmp_path / "pot.mtplr")
    assert data.factors.rank == 2
    log = [json.loads(line) for line in open(tmp_path / "pot.jsonl")]
    assert log[0]["n_params"] == 2 * (9 + 16) + 3 + 9
    assert res.train_errors.forces_rmse < 0.8 * log[0]["train"]["F_rmse"]  # it learns


def test_train_mfra_augments_like_fit_mfra(tmp_path, configs):
    res, ref = same_as_fit_objective(tmp_path, configs, MFRA, 25)
    assert ref.ranks[-1] == 3 and res.iterations == ref.n_iter == 25
    assert res.x == pytest.approx(ref.x, rel=1e-9, abs=1e-12)
    log = [json.loads(line) for line in open(tmp_path / "pot.jsonl")]
    augments = [(r["iter"], r["rank"]) for r in log if r["event"] == "augment"]
    assert augments == [(7, 2), (14, 3)]
    assert log[0]["n_params"] == 1 * (9 + 16) + 3 + 9  # starts at r0 = 1
    assert read_lowrank(tmp_path / "pot.mtplr").factors.rank == 3


@pytest.mark.parametrize("compression", [RMF, MFRA], ids=["rmf", "mfra"])
def test_train_rmf_mfra_resume_equals_uninterrupted(tmp_path, configs, compression):
    full = pyfit.fit(configs, settings(tmp_path / "full", compression, 23),
                     progress=False).models[0]
    # stop at 11 (MFRA: at rank 2, between augmentations and linear solves), continue to 23
    part = settings(tmp_path / "part", compression, 11)
    pyfit.fit(configs, part, progress=False)
    part["optimizer"]["max_iter"] = 23
    resumed = pyfit.fit(configs, part, resume=True, progress=False).models[0]
    assert resumed.iterations == full.iterations == 23
    assert resumed.n_evals == full.n_evals
    assert resumed.loss == full.loss
    assert (resumed.x == full.x).all()
    assert (tmp_path / "full" / "pot.mtplr").read_bytes() == \
        (tmp_path / "part" / "pot.mtplr").read_bytes()


def test_train_resume_refuses_another_method(tmp_path, configs):
    pyfit.fit(configs, settings(tmp_path, {"method": "mf", "rank": 2}, 3), progress=False)
    with pytest.raises(PyfitError, match="written by a different fit"):
        pyfit.fit(configs, settings(tmp_path, RMF, 6), resume=True, progress=False)


def test_train_mfra_settings_are_checked(tmp_path, configs):
    with pytest.raises(PyfitError, match=r"MFRA r0: expected an integer 1 <= r0 <= 3, found 5"):
        pyfit.fit(configs, settings(tmp_path, {**MFRA, "r0": 5}), progress=False)
    with pytest.raises(PyfitError, match=r"sufficient_descent: expected 0 <= sigma < 1"):
        pyfit.fit(configs, settings(tmp_path, {**RMF, "sufficient_descent": 2.0}),
                  progress=False)
