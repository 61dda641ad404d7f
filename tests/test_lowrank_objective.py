"""MF / TF objectives: chain-rule gradients against central finite differences, consistency with
the dense loss, linear solve, potentials, rank selection by compression and bad input."""

import numpy as np
import pytest

from pyfit.errors import PyfitError
from pyfit.fitting.config import TrainConfig
from pyfit.fitting.loss import Loss, LossWeights
from pyfit.io.lowrank_file import read_potential
from pyfit.lowrank.factors import LowRank, TensorTrain, unfold
from pyfit.lowrank.objective import (MatrixObjective, TTObjective, make_objective,
                                     objective_from_table,
                                     rank_for_compression, tt_ranks_for_compression)
from pyfit.lowrank.potential import CompressedMTP
from pyfit import MTP
from test_evaluator import random_model
from test_loss import labelled_set


def small_problem(seed=0, level=6, species=2, n=6, teacher_rank=None):
    """A dense loss over a few configurations labelled by a random (optionally low-rank) MTP."""
    rng = np.random.default_rng(seed)
    tm = random_model(level, species, rng)
    if teacher_rank is not None:
        tm.radial_coeffs = LowRank.from_dense(tm.radial_coeffs, max_rank=teacher_rank).to_dense()
    configs = labelled_set(rng, species, MTP(tm), n=n)
    return Loss(random_model(level, species, rng), configs, LossWeights(1.0, 0.01, 0.001),
                n_threads=1)


def real_problem(n=10):
    """A realistic fit: the level-10 Cu/Ag/Au basis of MLIP-2's multi_10_pot.mtp on the first
    ``n`` EMT-labelled configurations of its training set (3 species, radial tensor 3x3x3x8)."""
    from pathlib import Path

    from pyfit.io.dataset import read_configurations
    from pyfit.io.mtp_file import read_mtp

    data = Path(__file__).resolve().parent / "data"
    model = read_mtp(data / "multi_10_pot.mtp")
    configs = read_configurations(data / "multi_training_20.cfg")[:n]
    return Loss(model, configs, LossWeights(1.0, 0.01, 0.001), n_threads=1), model


@pytest.fixture(scope="module")
def loss():
    return small_problem()


def fd_gradient(fun, x, h):
    """Fourth-order central differences with steps ``h`` (one per parameter): the loss is
    strongly curved in the factors, and quadratic in the linear parameters."""
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h[i]
        g[i] = (-fun(x + 2 * e) + 8 * fun(x + e) - 8 * fun(x - e) + fun(x - 2 * e)) / (12 * h[i])
    return g


def point(obj, seed):
    """A generic point: random factors, linear parameters near (not at) their optimum."""
    rng = np.random.default_rng(seed)
    x = obj.initial(rng)
    n = obj.n_factor_params
    x[:n] *= 1 + 0.5 * rng.normal(size=n)
    x = obj.linear_solve(x)
    x[n:] += 0.3 * rng.normal(size=x.size - n)
    return x


@pytest.mark.parametrize("make", [
    lambda loss: MatrixObjective(loss, 2),
    lambda loss: MatrixObjective(loss, 3, "pairs_funcs"),
    lambda loss: MatrixObjective(loss, 4),  # full rank of the 4 x 16 unfolding
    lambda loss: TTObjective(loss, (2, 3, 2)),
    lambda loss: TTObjective(loss, (1, 1, 1)),
], ids=["mf-r2", "mf-pairs_funcs-r3", "mf-full", "tf-232", "tf-111"])
def test_gradient_matches_finite_differences(loss, make):
    obj = make(loss)
    x = point(obj, 1)
    f, g = obj.value_and_grad(x)
    assert f == obj.value(x)
    n = obj.n_factor_params
    fd = fd_gradient(obj.value, x, np.where(np.arange(x.size) < n, 1e-6, 1e-2))
    scale = np.abs(fd[:n]).max()
    assert scale > 0
    np.testing.assert_allclose(g[:n], fd[:n], rtol=0, atol=1e-6 * scale)
    np.testing.assert_allclose(g[n:], fd[n:], rtol=0, atol=1e-6 * np.abs(fd[n:]).max())


def test_chain_rule_formulas(loss):
    """dL/dU = G V and dL/dV = G^T U with G the unfolded dense radial gradient."""
    obj = MatrixObjective(loss, 3)
    x = point(obj, 2)
    u, v = obj.split(x)
    _, g_dense = loss.value_and_grad(obj.dense(x))
    G = unfold(g_dense[loss.radial_slice].reshape(obj.tensor_shape))
    _, g = obj.value_and_grad(x)
    np.testing.assert_allclose(g[:u.size].reshape(u.shape), G @ v, rtol=1e-12, atol=0)
    np.testing.assert_allclose(g[u.size:obj.n_factor_params].reshape(v.shape), G.T @ u,
                               rtol=1e-12, atol=0)


def test_dense_parameters_and_counts(loss):
    C, K, R = 2, 2, 8
    obj = MatrixObjective(loss, 3)
    assert (obj.m, obj.n) == (4, 16)
    assert obj.n_factor_params == 3 * (4 + 16) == obj.n_radial_params
    assert obj.n_params == obj.n_factor_params + C + loss.template.alpha_scalar_moments
    assert MatrixObjective(loss, 3, method="rmf").n_radial_params == 3 * (4 + 16 - 3)
    x = point(obj, 3)
    u, v = obj.split(x)
    np.testing.assert_array_equal(obj.radial(x), (u @ v.T).reshape(C, C, K, R))
    assert obj.value(x) == loss.value(obj.dense(x))
    tt = TTObjective(loss, (2, 3, 2))
    assert tt.n_factor_params == C * 2 + 2 * C * 3 + 3 * K * 2 + 2 * R
    y = point(tt, 4)
    np.testing.assert_allclose(tt.radial(y), tt.factors(y).to_dense(), rtol=0, atol=0)


def test_linear_solve_and_from_dense(loss):
    obj = MatrixObjective(loss, 2)
    x = point(obj, 5)
    x_bad = x.copy()
    x_bad[obj.n_factor_params:] += 0.3
    solved = obj.linear_solve(x_bad)
    np.testing.assert_array_equal(solved[:obj.n_factor_params], x_bad[:obj.n_factor_params])
    assert obj.value(solved) < obj.value(x_bad)
    assert obj.value(solved) == pytest.approx(obj.value(obj.linear_solve(x)), rel=1e-8)
    assert obj.value(solved) < obj.value(x)
    # a dense point of rank 2 is represented exactly
    dense = obj.dense(x)
    y = obj.from_dense(dense)
    assert obj.value(y) == pytest.approx(loss.value(dense), rel=1e-10)
    full = loss.initial_params(np.random.default_rng(6))
    z = obj.from_dense(full, solve=True)
    f = LowRank.from_dense(full[loss.radial_slice].reshape(obj.tensor_shape), max_rank=2)
    np.testing.assert_allclose(obj.radial(z), f.to_dense(), atol=1e-14)
    tt = TTObjective(loss, (2, 4, 2))
    w = tt.from_dense(full)
    t = TensorTrain.from_dense(full[loss.radial_slice].reshape(tt.tensor_shape), max_rank=(2, 4, 2))
    np.testing.assert_allclose(tt.radial(w), t.to_dense(), atol=1e-14)


def test_initial_is_random_from_generator_only(loss):
    obj = MatrixObjective(loss, 2)
    a = obj.initial(np.random.default_rng(9))
    b = obj.initial(np.random.default_rng(9))
    c = obj.initial(np.random.default_rng(10))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # the contracted tensor has the scale of the dense initial_params
    dense = loss.initial_params(np.random.default_rng(9))[loss.radial_slice]
    ratio = np.std(obj.radial(a)) / np.std(dense)
    assert 0.2 < ratio < 5


def test_potential_from_objective(tmp_path, loss):
    for obj in (MatrixObjective(loss, 2, method="rmf"), TTObjective(loss, (2, 2, 2))):
        x = point(obj, 11)
        pot = obj.to_potential(x, species=["Nb", "Mo"])
        assert isinstance(pot, CompressedMTP) and pot.method == obj.method
        assert pot.n_radial_params == obj.n_radial_params
        path = tmp_path / f"{obj.method}.mtplr"
        pot.save(path)
        back = read_potential(path)
        preds = loss.predict(obj.dense(x))
        for config, (e, f, s) in zip(loss.configs, preds):
            r = back.evaluate(config)
            assert r.energy == pytest.approx(e, rel=1e-12, abs=1e-12)
            np.testing.assert_allclose(r.forces, f, rtol=1e-10, atol=1e-12)
        stats = obj.errors(x)
        assert stats.n_configs == len(loss.configs) and np.isfinite(stats.forces_rmse)


def test_rank_for_compression():
    assert rank_for_compression((4, 4, 4, 8), 0.5) == 5  # 240 of 512 (r = 6 gives 288)
    assert rank_for_compression((4, 4, 4, 8), 0.25) == 8  # 384 = 75 % of 512
    assert rank_for_compression((4, 4, 4, 8), 0.5, method="rmf") == 6  # 252
    ranks = tt_ranks_for_compression((4, 4, 5, 8), 1 - 466 / 640)
    C, K, R = 4, 5, 8
    r1, r2, r3 = ranks
    assert C * r1 + r1 * C * r2 + r2 * K * r3 + r3 * R == 466
    with pytest.raises(PyfitError, match="expected a fraction 0 < f < 1"):
        rank_for_compression((4, 4, 4, 8), 1.5)


def test_objective_from_table(loss):
    obj = objective_from_table(loss, {"method": "mf", "rank": 3})
    assert isinstance(obj, MatrixObjective) and obj.rank == 3 and obj.method == "mf"
    obj = make_objective(loss, {"method": "tf", "ranks": [2, 3, 2]}, np.random.default_rng(0),
                         species=["Nb", "Mo"])
    assert isinstance(obj, TTObjective) and obj.ranks == (2, 3, 2) and obj.species == ["Nb", "Mo"]
    assert isinstance(make_objective(loss, {"method": "mf", "rank": 2}), MatrixObjective)
    from pyfit.lowrank.drivers import MFRADriver, RiemannianDriver

    for method, driver in (("rmf", RiemannianDriver), ("mfra", MFRADriver), ("mf", None)):
        obj = make_objective(loss, {"method": method, "rank": 2}, np.random.default_rng(0))
        assert obj.method == method
        made = obj.make_driver(TrainConfig().optimizer, lambda: None)
        assert (made is None) if driver is None else isinstance(made, driver)
    with pytest.raises(PyfitError, match=r"MFRA r0: expected an integer 1 <= r0 <= 2"):
        make_objective(loss, {"method": "mfra", "rank": 2, "r0": 3})
    obj = objective_from_table(loss, {"method": "mf", "compression": 0.5})
    assert obj.rank == rank_for_compression((2, 2, 2, 8), 0.5)
    obj = objective_from_table(loss, {"method": "mfra", "r_max": 3, "r0": 1, "every": 5})
    assert obj.rank == 3 and obj.settings == {"r_max": 3, "r0": 1, "every": 5}
    with pytest.raises(PyfitError, match="unknown key 'rnak'"):
        objective_from_table(loss, {"method": "mf", "rnak": 3})
    with pytest.raises(PyfitError, match="method: expected mf, rmf, mfra or tf, found 'svd'"):
        objective_from_table(loss, {"method": "svd", "rank": 2})
    with pytest.raises(PyfitError, match=r"rank 5 .* \(4 x 16\): expected an integer 1 <= rank "
                                         r"<= 4"):
        objective_from_table(loss, {"method": "mf", "rank": 5})
    with pytest.raises(PyfitError, match="tf takes ranks"):
        objective_from_table(loss, {"method": "tf", "rank": 2})
    with pytest.raises(PyfitError, match="needs rank = r or compression"):
        objective_from_table(loss, {"method": "rmf"})
    with pytest.raises(PyfitError, match="inconsistent with the shape"):
        objective_from_table(loss, {"method": "tf", "ranks": [3, 3, 3]})
    with pytest.raises(PyfitError, match=r"mf: expected 47 parameters, found shape \(84,\)"):
        MatrixObjective(loss, 2).value(np.zeros(84))
