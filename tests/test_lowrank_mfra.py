"""MFRA (the paper's Algorithm 1): augmentation keeps the loss, adds directions outside the
current spaces, and the rank grows on schedule; fits through fit_objective for every method."""

import numpy as np
import pytest

from pyfit.errors import PyfitError
from pyfit.lowrank.fit import fit_objective
from pyfit.fitting.optimize import initial_state, step
from pyfit.lowrank.mfra import augment, augment_state, fit_mfra, parameter_map
from pyfit.lowrank.objective import MatrixObjective, objective_from_table
from test_lowrank_objective import real_problem


@pytest.fixture(scope="module")
def loss():
    return real_problem()[0]


def test_augmentation_is_continuous_and_uses_new_directions(loss):
    obj = MatrixObjective(loss, 1, method="mfra")
    x = obj.linear_solve(obj.initial(np.random.default_rng(0)))
    new, y = augment(obj, x, 2)
    assert new.rank == 3 and new.method == "mfra"
    assert new.value(y) == obj.value(x)  # V's new columns are zero: the same U V^T exactly
    np.testing.assert_array_equal(new.linear(y), obj.linear(x))
    u, v = obj.split(x)
    u2, v2 = new.split(y)
    np.testing.assert_array_equal(u2[:, :1], u)
    np.testing.assert_array_equal(v2[:, 1:], 0)
    # the new columns are orthogonal to span U, and lie along the dominant singular vectors
    # of the gradient's part outside the current spaces
    qu = np.linalg.qr(u)[0]
    np.testing.assert_allclose(qu.T @ u2[:, 1:], 0, atol=1e-12)
    _, G, _ = obj.matrix_value_and_grad(u @ v.T, obj.linear(x))
    qv = np.linalg.qr(v)[0]
    gp = (G - qu @ qu.T @ G) @ (np.eye(obj.n) - qv @ qv.T)
    a = np.linalg.svd(gp)[0][:, :2]
    cols = u2[:, 1:] / np.linalg.norm(u2[:, 1:], axis=0)
    np.testing.assert_allclose(np.abs(np.sum(cols * a, axis=0)), 1, atol=1e-10)
    # the gradient with respect to the new V columns is not zero: BFGS can use them
    _, g = new.value_and_grad(y)
    gv = g[new.m * new.rank:new.n_factor_params].reshape(new.n, new.rank)
    assert np.linalg.norm(gv[:, 1:]) > 1e-3 * np.linalg.norm(gv[:, :1])
    with pytest.raises(PyfitError, match=r"cannot add 9 columns to rank 1 \(9 x 24 matrix\): "
                                         r"expected 1 <= delta_r <= 8"):
        augment(obj, x, 9)


def test_optimizer_state_survives_augmentation(loss):
    obj = MatrixObjective(loss, 2, method="mfra")
    x = obj.initial(np.random.default_rng(3))
    state = initial_state(obj.value_and_grad, x)
    for _ in range(4):
        state = step(obj.value_and_grad, state)
    assert state.H is not None and state.iteration == 4
    new, y = augment(obj, state.x, 2)
    index = parameter_map(obj, 2)
    np.testing.assert_array_equal(y[index], state.x)  # old parameters at their new positions
    rest = np.setdiff1d(np.arange(new.n_params), index)
    u2, v2 = new.split(y)
    np.testing.assert_array_equal(np.sort(y[rest]), np.sort(np.concatenate(
        [u2[:, 2:].ravel(), v2[:, 2:].ravel()])))
    moved = augment_state(state, obj, new, y)
    assert moved.iteration == 4 and moved.gamma == state.gamma and moved.f == state.f
    np.testing.assert_array_equal(moved.H[np.ix_(index, index)], state.H)
    np.testing.assert_array_equal(moved.H[np.ix_(rest, index)], 0)
    np.testing.assert_allclose(np.diag(moved.H)[rest], state.gamma)
    np.testing.assert_allclose(moved.g[index][:obj.n_factor_params],
                               state.g[:obj.n_factor_params], rtol=1e-12, atol=1e-14)
    nxt = step(new.value_and_grad, moved)  # the carried state keeps working
    assert nxt.f < moved.f and nxt.iteration == 5


def test_rank_grows_on_schedule(loss):
    obj = MatrixObjective(loss, 4, method="mfra")
    m, n = obj.m, obj.n
    seen = []
    res = fit_mfra(obj, rng=np.random.default_rng(1), r0=1, delta_r=1, every=6, r_max=3,
                   max_iter=25, linear_solve_every=0,
                   callback=lambda k, f, x: seen.append((k, x.size)) and False)
    assert res.objective.rank == 3 and res.n_iter == 25
    assert res.ranks == [1] * 7 + [2] * 6 + [3] * 13
    assert len(res.history) == 26
    assert [k for k, _ in seen] == list(range(1, 26))
    sizes = {r: obj.n_linear + r * (m + n) for r in (1, 2, 3)}
    assert [n for _, n in seen] == [sizes[r] for r in res.ranks[1:]]
    # the loss never increases, in particular not at the augmentations (iterations 6 and 12)
    h = np.array(res.history)
    assert np.all(np.diff(h) <= 1e-12 * h[0])
    assert res.value < 0.9 * h[0]
    # delta_r = 2 from r0 = 1 to r_max = 4: ranks 1, 3, 4
    res = fit_mfra(obj, rng=np.random.default_rng(1), r0=1, delta_r=2, every=3, r_max=4,
                   max_iter=10, linear_solve_every=0)
    assert res.ranks == [1] * 4 + [3] * 3 + [4] * 4


def test_mfra_settings_are_checked(loss):
    obj = MatrixObjective(loss, 3, method="mfra")
    rng = np.random.default_rng(0)
    with pytest.raises(PyfitError, match=r"MFRA r0: expected an integer 1 <= r0 <= 3, found 4"):
        fit_mfra(obj, rng=rng, r0=4)
    with pytest.raises(PyfitError, match=r"MFRA r_max: expected an integer 1 <= r_max <= 9"):
        fit_mfra(obj, rng=rng, r_max=10)
    with pytest.raises(PyfitError, match=r"MFRA every: expected an integer 1 <= every"):
        fit_mfra(obj, rng=rng, every=0)
    with pytest.raises(PyfitError, match=r"MFRA delta_r"):
        fit_mfra(obj, rng=rng, delta_r=0)


@pytest.mark.parametrize("compression", [
    {"method": "mf", "rank": 3},
    {"method": "rmf", "rank": 3},
    {"method": "mfra", "rank": 3, "r0": 1, "every": 10},
    {"method": "tf", "ranks": [3, 4, 3]},
])
def test_every_method_fits(loss, compression, tmp_path):
    obj = objective_from_table(loss, compression)
    res = fit_objective(obj, rng=np.random.default_rng(2), max_iter=30, linear_solve_every=10)
    assert res.method == compression["method"]
    assert res.value < 0.9 * res.history[0]
    assert res.objective.value(res.x) == pytest.approx(res.value, rel=1e-10)
    pot = res.to_potential(species=["Cu", "Ag", "Au"])
    pot.save(tmp_path / "p.mtplr")
    assert pot.n_radial_params == res.objective.n_radial_params
