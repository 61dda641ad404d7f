"""Fitting compressed MTPs: MF and TF (Euclidean BFGS over the factors and the linear
parameters), R-MF (Riemannian BFGS, :mod:`pyfit.lowrank.riemannian`) and MFRA
(:mod:`pyfit.lowrank.mfra`), with the linear parameters re-solved exactly every
``linear_solve_every`` iterations (accepted when the loss decreases, as the trainer does).

:func:`fit_objective` runs any of them on an objective from :mod:`pyfit.lowrank.objective`
and returns a :class:`CompressedFit` (final parameters, loss history, ranks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from pyfit.errors import PyfitError
from pyfit.fitting.optimize import OptimizerOptions, initial_state, reset_memory, step
from pyfit.lowrank.objective import MatrixObjective, TTObjective
from pyfit.lowrank.riemannian import FixedRankManifold, rbfgs

__all__ = ["CompressedFit", "fit_objective", "fit_euclidean", "fit_rmf"]


@dataclass
class CompressedFit:
    """Result of a compressed fit. ``x`` is the parameter vector of ``objective`` (for MFRA the
    objective of the final rank)."""

    method: str
    objective: object
    x: np.ndarray
    value: float
    n_iter: int
    message: str
    history: list = field(default_factory=list)  # loss after each iteration (index 0: start)
    ranks: list = field(default_factory=list)  # rank at each iteration (MF family)
    state: object = None  # the optimizer's final state (Euclidean BFGS)

    def to_potential(self, species=None):
        return self.objective.to_potential(self.x, species=species)


def fit_euclidean(objective, x0, max_iter: int = 100, linear_solve_every: int = 50,
                  rel_tol: float = 0.0, rel_window: int = 50, callback: Callable | None = None,
                  method: str = "bfgs", options: OptimizerOptions | None = None,
                  state=None) -> CompressedFit:
    """BFGS over all parameters of ``objective`` (MF or TF) for ``max_iter`` iterations.
    ``state``: continue this :class:`~pyfit.fitting.optimize.OptimizerState` (its iteration
    count is kept, and the linear solves follow it; ``x0`` is then ignored).
    ``callback(k, f, x)`` after every iteration (``k``: the state's iteration); True stops."""
    if state is None:
        state = initial_state(objective.value_and_grad, np.asarray(x0, dtype=float),
                              method=method)
    start = state.iteration
    history = [state.f]
    message = f"reached max_iter = {max_iter}"
    while state.iteration < start + max_iter:
        k = state.iteration
        if linear_solve_every and k > 0 and k % linear_solve_every == 0:
            x_lin = objective.linear_solve(state.x)
            f_lin, g_lin = objective.value_and_grad(x_lin)
            if f_lin < state.f:
                state = reset_memory(state, x_lin, f_lin, g_lin)
        state = step(objective.value_and_grad, state, options)
        history.append(state.f)
        if state.status != "running":
            message = state.status
            break
        if callback is not None and callback(state.iteration, state.f, state.x):
            message = "stopped by callback"
            break
        if rel_tol > 0 and len(history) > rel_window:
            old = history[-1 - rel_window]
            if old - state.f < rel_tol * abs(old):
                message = f"relative decrease over {rel_window} iterations < {rel_tol}"
                break
    ranks = [objective.rank] * len(history) if isinstance(objective, MatrixObjective) else []
    return CompressedFit(objective.method, objective, state.x.copy(), state.f,
                         state.iteration - start, message, history, ranks, state)


def fit_rmf(objective: MatrixObjective, x0, max_iter: int = 100, linear_solve_every: int = 50,
            sufficient_descent: float = 1e-4, rel_tol: float = 0.0, rel_window: int = 50,
            callback: Callable | None = None, c1: float = 1e-4) -> CompressedFit:
    """R-MF: Riemannian BFGS on rank-r matrices x the linear parameters, from the factors in
    ``x0`` (an MF parameter vector of ``objective``). The result is returned as balanced MF
    factors (``u = U sqrt(s)``, ``v = V sqrt(s)``)."""
    if not isinstance(objective, MatrixObjective):
        raise PyfitError(f"R-MF needs a matrix objective, found {type(objective).__name__}")
    u, v = objective.split(x0)
    manifold = FixedRankManifold(objective.m, objective.n, objective.rank)
    point = manifold.from_factors(u, v)

    def linear_solve(matrix, w):
        pt = manifold.point(matrix)
        x = _balanced(objective, pt, w)
        f_old = objective.value(x)
        x_new = objective.linear_solve(x)
        return objective.linear(x_new) if objective.value(x_new) < f_old else w

    cb = None
    if callback is not None:
        def cb(k, f, pt, w):
            return callback(k, f, _balanced(objective, pt, w))

    res = rbfgs(objective.matrix_value_and_grad, manifold, point, objective.linear(x0),
                max_iter=max_iter, sufficient_descent=sufficient_descent, c1=c1,
                rel_tol=rel_tol, rel_window=rel_window, linear_solve=linear_solve,
                linear_solve_every=linear_solve_every, callback=cb)
    x = _balanced(objective, res.point, res.linear)
    return CompressedFit("rmf", objective, x, res.value, res.n_iter, res.message, res.history,
                         [objective.rank] * len(res.history))


def _balanced(objective: MatrixObjective, point, w) -> np.ndarray:
    root = np.sqrt(point.s)
    return objective.from_factors(point.u * root, point.vt.T * root, w)


def fit_objective(objective, x0=None, rng: np.random.Generator | None = None,
                  max_iter: int = 100, linear_solve_every: int = 50, rel_tol: float = 0.0,
                  rel_window: int = 50, callback: Callable | None = None,
                  **settings) -> CompressedFit:
    """Fits ``objective`` by its method (``objective.method``: mf, rmf, mfra or tf) from ``x0``
    (default: ``objective.initial(rng)``). ``settings``: ``sufficient_descent``, ``armijo_c1``
    (R-MF);
    ``r0``, ``delta_r``, ``every``, ``r_max`` (MFRA; see :func:`pyfit.lowrank.mfra.fit_mfra`).
    Settings from a ``[compression]`` table (``objective.settings``) are used as defaults."""
    settings = {**getattr(objective, "settings", {}), **settings}
    method = objective.method
    if method != "mfra" and x0 is None:
        if rng is None:
            raise PyfitError("fit_objective: give x0 or rng")
        x0 = objective.initial(rng)
    common = dict(max_iter=max_iter, linear_solve_every=linear_solve_every, rel_tol=rel_tol,
                  rel_window=rel_window, callback=callback)
    if method == "rmf":
        return fit_rmf(objective, x0, sufficient_descent=settings.get("sufficient_descent", 1e-4),
                       c1=settings.get("armijo_c1", 1e-4), **common)
    if method == "mfra":
        from pyfit.lowrank.mfra import fit_mfra

        return fit_mfra(objective, rng=rng, x0=x0, r0=settings.get("r0", 1),
                        delta_r=settings.get("delta_r", 1), every=settings.get("every", 50),
                        r_max=settings.get("r_max", objective.rank), **common)
    if isinstance(objective, (MatrixObjective, TTObjective)):
        return fit_euclidean(objective, x0, **common)
    raise PyfitError(f"fit_objective: unknown objective {type(objective).__name__}")
