"""Riemannian BFGS on the manifold of rank-r matrices (times a Euclidean space): R-MF.

Geometry (embedded, as pymanopt's ``FixedRankEmbedded``; written here from the formulas):

- a point ``X = U diag(s) Vt`` (thin SVD, ``U`` m x r, ``Vt`` r x n) — :class:`Point`;
- the tangent space ``T_X = {U M Vt + Up Vt + U Vp^T : Up^T U = 0, Vp^T V = 0}``, of dimension
  ``d = r (m + n - r)``, with the Euclidean (Frobenius) inner product;
- an orthonormal basis ``E_X`` of ``T_X`` (columns are vectorised ``U e_i e_j^T Vt``,
  ``U_perp e_k e_j^T Vt``, ``U e_i e_l^T V_perp^T``), so a tangent vector is stored as its
  ``d`` coordinates ``[U^T Z V, U_perp^T Z V, U^T Z V_perp]`` and inner products of coordinates
  are inner products of the matrices;
- the orthogonal projection of an ambient ``Z`` (``P_U Z + Z P_V - P_U Z P_V``), whose
  coordinates are ``E_X^T vec(Z)``; the Riemannian gradient is the projection of the Euclidean
  gradient;
- the retraction ``R_X(xi)`` = the rank-r truncated SVD of ``X + xi``, computed from QR factors
  of ``[U Up]`` and ``[V Vp]`` and the SVD of a 2r x 2r core (no m x n SVD); the rank stays r;
- vector transport by projection, ``T_{X->Y} = P_Y`` restricted to ``T_X``; in coordinates the
  d x d matrix ``Q = E_Y^T E_X``; the inverse transport (the paper's supplement,
  Prop. IV.1: ``E_X (E_Y^T E_X)^{-1} E_Y^T``) is ``Q^{-1}`` in coordinates.

The optimiser (:func:`rbfgs`) is the Riemannian BFGS of Qi, Gallivan and Absil (2010) in the
inverse-Hessian form, on the product of the fixed-rank manifold with the Euclidean space of the
linear parameters (their transport is the identity): the direction is ``eta = -H g``; before a
step the approximation is carried to the new tangent space, ``H <- T H T^{-1}``, then updated
with ``s = T(alpha eta)``, ``y = g_new - T(g)``. The *sufficient-descent coefficient* ``sigma``
(the paper's modification; the original has ``sigma = 0``) requires
``<g, eta> <= -sigma |g| |eta|``; a direction that fails is replaced by the (scaled) negative
gradient and ``H`` is reset. The step length satisfies Armijo's condition (constant ``c1``),
found by backtracking with quadratic interpolation; an update whose ``<y, s>`` is not positive is
skipped (``H`` is only transported).

(The paper's text does not give the formula of its coefficient; read as the Armijo constant
instead, it is ``c1`` here. Both default to 1e-4, the paper's value, so the default run is the
same under either reading.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from pyfit.errors import PyfitError

__all__ = ["Point", "FixedRankManifold", "rbfgs", "RBFGSResult", "RBFGSState", "rbfgs_start",
           "rbfgs_step", "rbfgs_set_linear"]


class Point(NamedTuple):
    """``X = u @ diag(s) @ vt`` with orthonormal columns of ``u`` and rows of ``vt``."""

    u: np.ndarray
    s: np.ndarray
    vt: np.ndarray

    def full(self) -> np.ndarray:
        return (self.u * self.s) @ self.vt


def _complement(q: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the orthogonal complement of the columns of ``q``."""
    m, r = q.shape
    full, _ = np.linalg.qr(q, mode="complete")
    return full[:, r:]


class FixedRankManifold:
    """The manifold of m x n matrices of rank r (embedded geometry, see the module docstring)."""

    def __init__(self, m: int, n: int, r: int):
        if not (1 <= r <= min(m, n)):
            raise PyfitError(f"rank {r} is larger than a {m} x {n} matrix allows: expected "
                             f"1 <= rank <= {min(m, n)}")
        self.m, self.n, self.r = int(m), int(n), int(r)
        self._cache: dict = {}

    @property
    def dim(self) -> int:
        return self.r * (self.m + self.n - self.r)

    # ------------------------------------------------------------------ points
    def point(self, matrix: np.ndarray) -> Point:
        """The rank-r truncated SVD of ``matrix`` as a point."""
        u, s, vt = np.linalg.svd(np.asarray(matrix, dtype=float), full_matrices=False)
        return Point(u[:, :self.r], s[:self.r], vt[:self.r])

    def from_factors(self, a: np.ndarray, b: np.ndarray) -> Point:
        """The point ``a @ b.T`` (a: m x r, b: n x r), via QR factors."""
        qa, ra = np.linalg.qr(a)
        qb, rb = np.linalg.qr(b)
        x, s, yt = np.linalg.svd(ra @ rb.T)
        return Point(qa @ x, s, yt @ qb.T)

    def _perps(self, x: Point):
        """``(U_perp, V_perp)`` of a point (cached for the two latest points)."""
        key = (id(x.u), id(x.vt))
        hit = self._cache.get(key)
        if hit is None or hit[0] is not x.u or hit[1] is not x.vt:
            hit = (x.u, x.vt, _complement(x.u), _complement(x.vt.T))
            if len(self._cache) >= 2:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = hit
        return hit[2], hit[3]

    # ------------------------------------------------------------------ tangent spaces
    def basis(self, x: Point) -> np.ndarray:
        """``E_X`` (m*n x d): an orthonormal basis of ``T_X`` (row-major vectorisation)."""
        up, vp = self._perps(x)
        v = x.vt.T
        return np.hstack([np.kron(x.u, v), np.kron(up, v), np.kron(x.u, vp)])

    def project(self, x: Point, z: np.ndarray) -> np.ndarray:
        """Coordinates of the orthogonal projection of the ambient ``z`` (m x n) onto T_X."""
        up, vp = self._perps(x)
        zv = z @ x.vt.T
        return np.concatenate([(x.u.T @ zv).ravel(), (up.T @ zv).ravel(),
                               ((x.u.T @ z) @ vp).ravel()])

    def components(self, x: Point, coords: np.ndarray):
        """``(M, Up, Vp)`` of the tangent vector ``U M Vt + Up Vt + U Vp^T``."""
        r, m, n = self.r, self.m, self.n
        up, vp = self._perps(x)
        c = np.asarray(coords, dtype=float)
        M = c[:r * r].reshape(r, r)
        Up = up @ c[r * r:r * r + (m - r) * r].reshape(m - r, r)
        Vp = vp @ c[r * r + (m - r) * r:].reshape(r, n - r).T
        return M, Up, Vp

    def to_ambient(self, x: Point, coords: np.ndarray) -> np.ndarray:
        M, Up, Vp = self.components(x, coords)
        return x.u @ M @ x.vt + Up @ x.vt + x.u @ Vp.T

    def riemannian_gradient(self, x: Point, egrad: np.ndarray) -> np.ndarray:
        """Coordinates of the Riemannian gradient: the projection of the Euclidean one."""
        return self.project(x, egrad)

    # ------------------------------------------------------------------ retraction, transport
    def retract(self, x: Point, coords: np.ndarray) -> Point:
        """The rank-r truncated SVD of ``X + xi``."""
        r = self.r
        M, Up, Vp = self.components(x, coords)
        qu, ru = np.linalg.qr(np.hstack([x.u, Up]))
        qv, rv = np.linalg.qr(np.hstack([x.vt.T, Vp]))
        core = np.zeros((2 * r, 2 * r))
        core[:r, :r] = np.diag(x.s) + M
        core[:r, r:] = np.eye(r)
        core[r:, :r] = np.eye(r)
        a, s, bt = np.linalg.svd(ru @ core @ rv.T)
        return Point(qu @ a[:, :r], s[:r], (qv @ bt[:r].T).T)

    def transport_matrix(self, x: Point, y: Point) -> np.ndarray:
        """``Q = E_Y^T E_X`` (d x d): the transport by projection T_X -> T_Y in coordinates.

        Every basis block is a Kronecker product ``A (x) B``, so each block of ``Q`` is
        ``kron(A_Y^T A_X, B_Y^T B_X)`` (no m*n x d matrix is formed)."""
        upx, vpx = self._perps(x)
        upy, vpy = self._perps(y)
        left_x, right_x = (x.u, upx, x.u), (x.vt.T, x.vt.T, vpx)
        left_y, right_y = (y.u, upy, y.u), (y.vt.T, y.vt.T, vpy)
        return np.block([[np.kron(ly.T @ lx, ry.T @ rx) for lx, rx in zip(left_x, right_x)]
                         for ly, ry in zip(left_y, right_y)])

    def transport(self, x: Point, y: Point, coords: np.ndarray) -> np.ndarray:
        """Projection of the tangent vector (at x) onto T_Y, as coordinates at y."""
        return self.project(y, self.to_ambient(x, coords))

    def inverse_transport(self, x: Point, y: Point, coords_y: np.ndarray) -> np.ndarray:
        """The tangent vector at x whose transport to y is ``coords_y`` (coordinates at x):
        ``(E_Y^T E_X)^{-1}`` applied to the coordinates (the paper's Prop. IV.1)."""
        return np.linalg.solve(self.transport_matrix(x, y), coords_y)


# --------------------------------------------------------------------------- optimiser
@dataclass
class RBFGSResult:
    point: Point
    linear: np.ndarray
    value: float
    n_iter: int
    message: str
    history: list = field(default_factory=list)
    n_resets: int = 0
    n_skipped: int = 0


@dataclass
class RBFGSState:
    """Everything needed to continue a Riemannian BFGS run (:func:`rbfgs_step`).

    ``point`` (the rank-r matrix) and ``w`` (linear parameters) are the iterate, ``f`` its loss,
    ``g`` the Riemannian gradient in the coordinates of ``T_point`` followed by ``dL/dw``, ``H``
    the inverse Hessian approximation in the same coordinates (d + len(w) square), ``scaled``
    whether ``H`` has had its first curvature scaling. ``status``: ``running``, ``converged``
    (gradient norm <= gtol) or ``line_search_failed``."""

    point: Point
    w: np.ndarray
    f: float
    g: np.ndarray
    H: np.ndarray
    scaled: bool = False
    iteration: int = 0
    n_evals: int = 1
    n_resets: int = 0
    n_skipped: int = 0
    alpha: float = 0.0
    status: str = "running"

    def to_dict(self, prefix: str = "") -> dict[str, np.ndarray]:
        """NumPy arrays only; exact round trip with :meth:`from_dict`."""
        d = {"u": self.point.u, "s": self.point.s, "vt": self.point.vt, "w": self.w,
             "f": np.float64(self.f), "g": self.g, "H": self.H, "scaled": np.bool_(self.scaled),
             "iteration": np.int64(self.iteration), "n_evals": np.int64(self.n_evals),
             "n_resets": np.int64(self.n_resets), "n_skipped": np.int64(self.n_skipped),
             "alpha": np.float64(self.alpha), "status": np.str_(self.status)}
        return {prefix + k: np.asarray(v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d, manifold: "FixedRankManifold", n_linear: int,
                  prefix: str = "") -> "RBFGSState":
        """Inverse of :meth:`to_dict`; shapes are checked against ``manifold`` and
        ``n_linear``."""
        def get(k):
            try:
                return np.array(d[prefix + k])
            except KeyError:
                raise PyfitError(f"R-BFGS state: missing entry {prefix + k!r}") from None

        m, n, r = manifold.m, manifold.n, manifold.r
        size = manifold.dim + n_linear
        expected = {"u": (m, r), "s": (r,), "vt": (r, n), "w": (n_linear,), "g": (size,),
                    "H": (size, size)}
        arrays = {k: get(k).astype(float) for k in expected}
        for k, shape in expected.items():
            if arrays[k].shape != shape:
                raise PyfitError(f"R-BFGS state: {prefix + k} has shape {arrays[k].shape}, "
                                 f"expected {shape} (rank {r}, {m} x {n} matrix, {n_linear} "
                                 f"linear parameters)")
        return cls(Point(arrays["u"], arrays["s"], arrays["vt"]), arrays["w"], float(get("f")),
                   arrays["g"], arrays["H"], bool(get("scaled")), int(get("iteration")),
                   int(get("n_evals")), int(get("n_resets")), int(get("n_skipped")),
                   float(get("alpha")), str(get("status")))


def _check_settings(sufficient_descent, c1) -> None:
    if not (isinstance(sufficient_descent, (int, float)) and 0 <= sufficient_descent < 1):
        raise PyfitError(f"sufficient_descent: expected 0 <= sigma < 1, found "
                         f"{sufficient_descent!r}")
    if not (isinstance(c1, (int, float)) and 0 < c1 < 1):
        raise PyfitError(f"c1: expected 0 < c1 < 1, found {c1!r}")


def _gradient(fun: Callable, manifold: "FixedRankManifold", x: Point, w: np.ndarray):
    f, G, gw = fun(x.full(), w)
    return float(f), np.concatenate([manifold.riemannian_gradient(x, G), gw])


def rbfgs_start(fun: Callable, manifold: "FixedRankManifold", x0: Point,
                w0: np.ndarray) -> RBFGSState:
    """The state at ``(x0, w0)`` (one evaluation of ``fun``; ``H = I``)."""
    w = np.array(w0, dtype=float)
    f, g = _gradient(fun, manifold, x0, w)
    return RBFGSState(x0, w, f, g, np.eye(g.size))


def rbfgs_set_linear(fun: Callable, manifold: "FixedRankManifold", state: RBFGSState,
                     w: np.ndarray) -> RBFGSState:
    """A copy of ``state`` moved to the linear parameters ``w`` (e.g. an exact linear solve);
    ``H`` is kept (the jump adds no curvature pair)."""
    from dataclasses import replace

    w = np.array(w, dtype=float)
    f, g = _gradient(fun, manifold, state.point, w)
    return replace(state, w=w, f=f, g=g, H=state.H.copy(), n_evals=state.n_evals + 1)


def rbfgs_step(fun: Callable, manifold: "FixedRankManifold", state: RBFGSState,
               sufficient_descent: float = 1e-4, c1: float = 1e-4, gtol: float = 1e-10,
               max_backtracks: int = 40) -> RBFGSState:
    """One Riemannian BFGS iteration from ``state`` (not modified); returns the new state.
    A state that is not ``running`` is returned unchanged. On convergence or a failed line
    search the iterate is kept, the status set and the iteration count not advanced."""
    from dataclasses import replace

    _check_settings(sufficient_descent, c1)
    if state.status != "running":
        return state
    d_r = manifold.dim
    x, w, f, g, H = state.point, state.w, state.f, state.g, state.H
    d = g.size
    scaled = state.scaled
    n_resets, n_skipped, n_evals = state.n_resets, state.n_skipped, state.n_evals
    gnorm = float(np.linalg.norm(g))
    if gnorm <= gtol:
        return replace(state, status="converged")
    eta = -H @ g
    slope = float(g @ eta)
    if slope > -sufficient_descent * gnorm * float(np.linalg.norm(eta)):
        n_resets += 1
        H = np.eye(d) * (H.trace() / d if scaled else 1.0)
        eta = -H @ g
        slope = float(g @ eta)
    alpha = 1.0 if scaled else min(1.0, 1.0 / gnorm)
    for _ in range(max_backtracks):
        y = manifold.retract(x, alpha * eta[:d_r])
        w_new = w + alpha * eta[d_r:]
        f_new, G_new, gw_new = fun(y.full(), w_new)
        n_evals += 1
        if np.isfinite(f_new) and f_new <= f + c1 * alpha * slope:
            break
        if not np.isfinite(f_new):
            alpha *= 0.1
            continue
        # minimiser of the quadratic through f, slope and f_new, kept in [0.1, 0.5] alpha
        q = -slope * alpha * alpha / (2.0 * (f_new - f - slope * alpha))
        alpha = float(np.clip(q, 0.1 * alpha, 0.5 * alpha))
    else:
        return replace(state, status="line_search_failed", n_evals=n_evals, n_resets=n_resets)
    Q = manifold.transport_matrix(x, y)
    T = np.eye(d)
    T[:d_r, :d_r] = Q
    g_new = np.concatenate([manifold.riemannian_gradient(y, G_new), gw_new])
    s_vec = T @ (alpha * eta)
    y_vec = g_new - T @ g
    H = np.linalg.solve(T.T, (T @ H).T).T  # T H T^{-1}
    ys = float(y_vec @ s_vec)
    if ys > 1e-12 * float(np.linalg.norm(y_vec) * np.linalg.norm(s_vec)):
        if not scaled:
            H = np.eye(d) * (ys / float(y_vec @ y_vec))
            scaled = True
        # (I - rho s y^T) H (I - rho y s^T) + rho s s^T; the transported H need not be
        # symmetric (Q is not orthogonal), so y^T H and H y are kept apart
        rho = 1.0 / ys
        Hy = H @ y_vec
        yH = y_vec @ H
        H = H - rho * (np.outer(s_vec, yH) + np.outer(Hy, s_vec)) \
            + (rho * rho * float(y_vec @ Hy) + rho) * np.outer(s_vec, s_vec)
    else:
        n_skipped += 1
    return RBFGSState(y, np.asarray(w_new, dtype=float), float(f_new), g_new, H, scaled,
                      state.iteration + 1, n_evals, n_resets, n_skipped, float(alpha), "running")


def rbfgs(fun: Callable, manifold: FixedRankManifold, x0: Point, w0: np.ndarray,
          max_iter: int = 100, sufficient_descent: float = 1e-4, c1: float = 1e-4,
          gtol: float = 1e-10, rel_tol: float = 0.0, rel_window: int = 50,
          linear_solve: Callable | None = None, linear_solve_every: int = 0,
          callback: Callable | None = None, max_backtracks: int = 40) -> RBFGSResult:
    """Riemannian BFGS over (rank-r matrix X, linear parameters w).

    ``fun(matrix, w) -> (value, dL/dX (m x n), dL/dw)`` gives the Euclidean gradients.
    ``linear_solve(matrix, w) -> w``, if given, re-solves the linear parameters every
    ``linear_solve_every`` iterations (the step is not used for the BFGS update).
    Stops after ``max_iter`` iterations, when the gradient norm is below ``gtol``, when the loss
    decreased by less than ``rel_tol`` (relative) over ``rel_window`` iterations, or when the
    line search finds no decrease. ``callback(k, value, point, w)`` after each iteration; a
    ``True`` return stops. (A loop over :func:`rbfgs_step`; the trainer drives the same steps
    with checkpoints, see :mod:`pyfit.lowrank.drivers`.)
    """
    _check_settings(sufficient_descent, c1)
    state = rbfgs_start(fun, manifold, x0, w0)
    history = [float(state.f)]
    message = f"reached max_iter = {max_iter}"
    k = 0
    for k in range(1, max_iter + 1):
        new = rbfgs_step(fun, manifold, state, sufficient_descent, c1, gtol, max_backtracks)
        if new.status == "converged":
            message = f"gradient norm {float(np.linalg.norm(state.g)):.3e} <= gtol"
            k -= 1
            break
        if new.status == "line_search_failed":
            message = "line search found no decrease"
            state = new
            k -= 1
            break
        state = new
        if linear_solve is not None and linear_solve_every and k % linear_solve_every == 0:
            state = rbfgs_set_linear(fun, manifold, state,
                                     linear_solve(state.point.full(), state.w))
        history.append(float(state.f))
        if callback is not None and callback(k, state.f, state.point, state.w):
            message = "stopped by callback"
            break
        if rel_tol > 0 and len(history) > rel_window:
            old = history[-1 - rel_window]
            if old - state.f < rel_tol * abs(old):
                message = f"relative decrease over {rel_window} iterations < {rel_tol}"
                break
    return RBFGSResult(state.point, state.w, float(state.f), k, message, history,
                       state.n_resets, state.n_skipped)
