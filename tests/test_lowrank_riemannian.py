"""The fixed-rank manifold (tangent spaces, projection, retraction, transports) and Riemannian
BFGS: identities, exact rank, convergence on a matrix-completion problem, and an R-MF fit of a
small MTP whose loss decreases."""

import numpy as np
import pytest

from pyfit.errors import PyfitError
from pyfit.lowrank.fit import fit_objective, fit_rmf
from pyfit.lowrank.objective import MatrixObjective
from pyfit.lowrank.riemannian import FixedRankManifold, rbfgs
from test_lowrank_objective import real_problem

M_, N_, R_ = 7, 9, 3


@pytest.fixture
def geometry():
    rng = np.random.default_rng(0)
    man = FixedRankManifold(M_, N_, R_)
    x = man.point(rng.normal(size=(M_, R_)) @ rng.normal(size=(R_, N_)))
    return rng, man, x


def projector(x, z):
    pu = x.u @ x.u.T
    pv = x.vt.T @ x.vt
    return pu @ z + z @ pv - pu @ z @ pv


def test_basis_is_orthonormal_and_spans_the_tangent_space(geometry):
    rng, man, x = geometry
    E = man.basis(x)
    assert man.dim == R_ * (M_ + N_ - R_) == E.shape[1]
    np.testing.assert_allclose(E.T @ E, np.eye(man.dim), atol=1e-13)
    for col in E.T[:: 7]:
        z = col.reshape(M_, N_)
        np.testing.assert_allclose(projector(x, z), z, atol=1e-13)


def test_projection(geometry):
    rng, man, x = geometry
    z = rng.normal(size=(M_, N_))
    c = man.project(x, z)
    pz = man.to_ambient(x, c)
    np.testing.assert_allclose(pz, projector(x, z), atol=1e-13)
    np.testing.assert_allclose(man.project(x, pz), c, atol=1e-13)  # idempotent
    np.testing.assert_allclose(c, man.basis(x).T @ z.ravel(), atol=1e-13)
    # the residual is orthogonal to the tangent space; coordinates keep inner products
    w = rng.normal(size=(M_, N_))
    assert np.sum((z - pz) * man.to_ambient(x, man.project(x, w))) == pytest.approx(0, abs=1e-12)
    assert c @ man.project(x, w) == pytest.approx(np.sum(pz * projector(x, w)), rel=1e-12)
    M, Up, Vp = man.components(x, c)
    np.testing.assert_allclose(x.u.T @ Up, 0, atol=1e-13)
    np.testing.assert_allclose(x.vt @ Vp, 0, atol=1e-13)


def test_riemannian_gradient_is_projected_euclidean_gradient(geometry):
    rng, man, x = geometry
    A = rng.normal(size=(M_, N_))

    def f(X):
        return 0.5 * np.sum((X - A) ** 2) + np.sum(X ** 3) / 3

    egrad = x.full() - A + x.full() ** 2
    rgrad = man.riemannian_gradient(x, egrad)
    np.testing.assert_allclose(man.to_ambient(x, rgrad), projector(x, egrad), atol=1e-12)
    # directional derivative along a retraction curve = <rgrad, xi>
    xi = man.project(x, rng.normal(size=(M_, N_)))
    h = 1e-5
    fd = (f(man.retract(x, h * xi).full()) - f(man.retract(x, -h * xi).full())) / (2 * h)
    assert fd == pytest.approx(rgrad @ xi, rel=1e-7)


def test_retraction_keeps_rank_and_is_first_order(geometry):
    rng, man, x = geometry
    np.testing.assert_allclose(man.retract(x, np.zeros(man.dim)).full(), x.full(), atol=1e-13)
    xi = man.project(x, rng.normal(size=(M_, N_)))
    for t in (1e-3, 0.1, 1.0, 30.0):
        y = man.retract(x, t * xi)
        assert y.u.shape == (M_, R_) and y.s.shape == (R_,) and y.vt.shape == (R_, N_)
        assert np.linalg.matrix_rank(y.full()) == R_
        assert np.all(y.s > 0)
        np.testing.assert_allclose(y.u.T @ y.u, np.eye(R_), atol=1e-12)
        np.testing.assert_allclose(y.vt @ y.vt.T, np.eye(R_), atol=1e-12)
        # it is the best rank-r approximation of X + t xi
        s = np.linalg.svd(x.full() + t * man.to_ambient(x, xi), compute_uv=False)
        np.testing.assert_allclose(y.s, s[:R_], rtol=1e-10)
    t = 1e-4
    err = np.linalg.norm(man.retract(x, t * xi).full() - x.full() - t * man.to_ambient(x, xi))
    assert err < 10 * t * t * np.linalg.norm(man.to_ambient(x, xi)) ** 2 / x.s[-1]


def test_transport_and_inverse_transport(geometry):
    rng, man, x = geometry
    y = man.retract(x, man.project(x, 0.3 * rng.normal(size=(M_, N_))))
    Q = man.transport_matrix(x, y)
    np.testing.assert_allclose(Q, man.basis(y).T @ man.basis(x), atol=1e-13)
    xi = man.project(x, rng.normal(size=(M_, N_)))
    moved = man.transport(x, y, xi)
    np.testing.assert_allclose(moved, Q @ xi, atol=1e-12)
    np.testing.assert_allclose(man.to_ambient(y, moved), projector(y, man.to_ambient(x, xi)),
                               atol=1e-12)
    back = man.inverse_transport(x, y, moved)
    np.testing.assert_allclose(back, xi, atol=1e-10)
    # the paper's matrix form E_x (E_y^T E_x)^{-1} E_y^T in the ambient space
    Ex, Ey = man.basis(x), man.basis(y)
    eta = man.project(y, rng.normal(size=(M_, N_)))
    ambient = Ex @ np.linalg.solve(Ey.T @ Ex, Ey.T @ man.to_ambient(y, eta).ravel())
    np.testing.assert_allclose(man.to_ambient(x, man.inverse_transport(x, y, eta)).ravel(),
                               ambient, atol=1e-10)
    with pytest.raises(PyfitError, match=r"rank 8 is larger than a 7 x 9 matrix allows"):
        FixedRankManifold(7, 9, 8)


def completion_problem(seed=1, m=10, n=12, r=2, fraction=0.7):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, r)) @ rng.normal(size=(r, n))
    mask = rng.random((m, n)) < fraction
    target_w = rng.normal(size=3)

    def fun(X, w):
        res = (X - A) * mask
        return 0.5 * np.sum(res ** 2) + 0.5 * np.sum((w - target_w) ** 2), res, w - target_w

    return rng, A, target_w, fun


def test_rbfgs_matrix_completion():
    rng, A, target_w, fun = completion_problem()
    man = FixedRankManifold(10, 12, 2)
    x0 = man.point(rng.normal(size=(10, 12)))
    res = rbfgs(fun, man, x0, np.zeros(3), max_iter=400, gtol=1e-10)
    assert res.message.startswith("gradient norm")
    assert np.linalg.norm(res.point.full() - A) < 1e-7 * np.linalg.norm(A)
    np.testing.assert_allclose(res.linear, target_w, atol=1e-9)
    assert np.all(np.diff(res.history) <= 0)  # Armijo: monotone
    assert res.n_iter < 400
    # steepest descent alone (BFGS memory reset at every step) is much slower
    slow = rbfgs(fun, man, x0, np.zeros(3), max_iter=res.n_iter, sufficient_descent=0.99)
    assert slow.n_resets > res.n_iter // 2 and slow.value > 1e-12


def test_rbfgs_settings_are_checked():
    rng, A, _, fun = completion_problem()
    man = FixedRankManifold(10, 12, 2)
    with pytest.raises(PyfitError, match="sufficient_descent: expected 0 <= sigma < 1"):
        rbfgs(fun, man, man.point(A), np.zeros(3), sufficient_descent=1.5)
    with pytest.raises(PyfitError, match="c1: expected 0 < c1 < 1"):
        rbfgs(fun, man, man.point(A), np.zeros(3), c1=0)


def test_rmf_fit_of_a_small_mtp():
    loss = real_problem()[0]
    obj = MatrixObjective(loss, 2, method="rmf")
    x0 = obj.initial(np.random.default_rng(4))
    res = fit_rmf(obj, x0, max_iter=40, linear_solve_every=10)
    assert res.method == "rmf" and res.n_iter == 40
    assert np.all(np.diff(res.history) <= 1e-12 * abs(res.history[0]))
    assert res.value < 0.5 * res.history[0]
    assert obj.value(res.x) == pytest.approx(res.value, rel=1e-10)
    u, v = obj.split(res.x)
    assert np.linalg.matrix_rank(u @ v.T) == 2
    # the same through fit_objective, with the sufficient-descent coefficient from settings
    obj.settings = {"sufficient_descent": 1e-3}
    again = fit_objective(obj, x0=x0, max_iter=40, linear_solve_every=10)
    assert again.value < 0.5 * again.history[0]
