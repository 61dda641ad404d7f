"""MFRA: matrix factorisation with rank augmentation (the low-rank MTP paper's Algorithm 1).

Start from random factors of rank ``r0``; run BFGS over ``(U, V, linear parameters)`` for
``every`` iterations; then, while the rank is below ``r_max``, add ``delta_r`` columns built from
the dominant singular directions of the loss gradient outside the current spaces::

    G_perp = (I - P_U) G (I - P_V)        (G = dL/dM, the unfolded radial gradient;
                                           P_U, P_V: projectors on span U, span V)
    a_1..a_dr = leading left singular vectors of G_perp
    U <- [U, t a_1, ..., t a_dr],  V <- [V, 0, ..., 0]

so ``U V^T`` — and the loss — is unchanged at the augmentation (the new columns of V start at
zero; their gradient ``G^T (t a_i)`` is the gradient information the next BFGS iterations use).
``t`` is ``sqrt`` of the median singular value of ``U V^T``, the scale of the existing balanced
columns. The BFGS state is carried across an augmentation (:func:`augment_state`): the inverse
Hessian approximation of the old parameters is kept on their new positions and the new ones
start with the current scale ``gamma I``, so the iterations after an augmentation do not restart
from a steepest-descent step; the exact linear solves follow the global iteration count. Once
``r_max`` is reached, BFGS continues to ``max_iter`` iterations in total.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from pyfit.errors import PyfitError
from pyfit.lowrank.factors import LowRank
from pyfit.lowrank.objective import MatrixObjective

__all__ = ["augment", "augment_state", "parameter_map", "check_settings", "settings_of",
           "fit_mfra"]


def augment(objective: MatrixObjective, x, delta_r: int):
    """``(new_objective, x_new)``: the rank-``r + delta_r`` objective and parameters with the
    same product ``U V^T`` and linear parameters (see the module docstring)."""
    new_rank = objective.rank + int(delta_r)
    if delta_r < 1 or new_rank > min(objective.m, objective.n):
        raise PyfitError(f"MFRA: cannot add {delta_r} columns to rank {objective.rank} "
                         f"({objective.m} x {objective.n} matrix): expected 1 <= delta_r <= "
                         f"{min(objective.m, objective.n) - objective.rank}")
    u, v = objective.split(x)
    w = objective.linear(x)
    _, G, _ = objective.matrix_value_and_grad(u @ v.T, w)
    qu, _ = np.linalg.qr(u)
    qv, _ = np.linalg.qr(v)
    gp = G - qu @ (qu.T @ G)
    gp = gp - (gp @ qv) @ qv.T
    a, _, _ = np.linalg.svd(gp, full_matrices=False)
    s = LowRank(u, v).svd()[1]
    t = float(np.sqrt(np.median(s))) if np.median(s) > 0 else 1.0
    u_new = np.hstack([u, t * a[:, :delta_r]])
    v_new = np.hstack([v, np.zeros((objective.n, delta_r))])
    new = objective.at_rank(new_rank)
    return new, new.from_factors(u_new, v_new, w)


def parameter_map(objective: MatrixObjective, delta_r: int) -> np.ndarray:
    """Positions, in the rank ``r + delta_r`` parameter vector, of the rank-``r`` parameters
    (``U`` (m, r) and ``V`` (n, r) are stored row by row, then the linear parameters)."""
    m, n, r = objective.m, objective.n, objective.rank
    r2 = r + delta_r
    rows_u = (np.arange(m)[:, None] * r2 + np.arange(r)[None, :]).ravel()
    rows_v = (m * r2 + np.arange(n)[:, None] * r2 + np.arange(r)[None, :]).ravel()
    lin = (m + n) * r2 + np.arange(objective.n_linear)
    return np.concatenate([rows_u, rows_v, lin])


def augment_state(state, objective: MatrixObjective, new: MatrixObjective, x_new):
    """The optimizer state of ``objective`` moved to the augmented ``new`` objective at
    ``x_new``: iteration count, scale and the inverse Hessian of the old parameters kept
    (new parameters: ``gamma I``, no coupling)."""
    from dataclasses import replace

    index = parameter_map(objective, new.rank - objective.rank)
    f, g = new.value_and_grad(x_new)
    H = S = Y = None
    if state.H is not None:
        H = np.eye(new.n_params) * (state.gamma if state.gamma > 0 else 1.0)
        H[np.ix_(index, index)] = state.H
    if state.S is not None:  # L-BFGS: the new parameters did not move in the stored pairs
        S = np.zeros((state.S.shape[0], new.n_params))
        Y = np.zeros_like(S)
        S[:, index], Y[:, index] = state.S, state.Y
    return replace(state.copy(), x=np.array(x_new, dtype=float), f=float(f),
                   g=np.array(g, dtype=float), H=H, S=S, Y=Y, n_evals=state.n_evals + 1,
                   n_failures=0)


def check_settings(objective: MatrixObjective, r0=1, delta_r=1, every=50, r_max=None):
    """``(r0, delta_r, every, r_max)`` checked (``r_max`` default: ``objective.rank``)."""
    if r_max is None:
        r_max = objective.rank
    full = min(objective.m, objective.n)
    top = r_max if isinstance(r_max, (int, np.integer)) and not isinstance(r_max, bool) else full
    checks = (("r_max", r_max, 1, full), ("r0", r0, 1, top), ("delta_r", delta_r, 1, max(1, top)),
              ("every", every, 1, None))
    for name, value, low, high in checks:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low \
                or (high is not None and value > high):
            bound = f"{low} <= {name}" + (f" <= {high}" if high is not None else "")
            raise PyfitError(f"MFRA {name}: expected an integer {bound}, found {value!r}")
    return int(r0), int(delta_r), int(every), int(r_max)


def settings_of(objective: MatrixObjective):
    """``(r0, delta_r, every, r_max)`` from ``objective.settings`` (a ``[compression]``
    table), checked, with the defaults of :func:`check_settings`."""
    st = getattr(objective, "settings", {})
    return check_settings(objective, **{k: st[k] for k in ("r0", "delta_r", "every", "r_max")
                                        if k in st})


def fit_mfra(objective: MatrixObjective, rng: np.random.Generator | None = None, x0=None,
             r0: int = 1, delta_r: int = 1, every: int = 50, r_max: int | None = None,
             max_iter: int = 100, linear_solve_every: int = 50, rel_tol: float = 0.0,
             rel_window: int = 50, callback: Callable | None = None):
    """MFRA from rank ``r0`` (random start from ``rng``, or ``x0``: a parameter vector of the
    rank-``r0`` MF objective) to ``r_max`` (default: ``objective.rank``), adding ``delta_r``
    columns every ``every`` iterations. Returns a
    :class:`~pyfit.lowrank.fit.CompressedFit` whose objective has rank ``r_max`` and whose
    ``ranks`` list gives the rank at each iteration. ``rel_tol`` applies only at ``r_max``."""
    from pyfit.lowrank.fit import CompressedFit, fit_euclidean

    r0, delta_r, every, r_max = check_settings(objective, r0, delta_r, every, r_max)
    obj = objective.at_rank(r0, method="mfra")
    if x0 is None:
        if rng is None:
            raise PyfitError("fit_mfra: give x0 or rng")
        x = obj.initial(rng)
    else:
        x = obj._check(x0).copy()
    history = [obj.value(x)]
    ranks = [obj.rank]
    total = 0
    state = None
    message = f"reached max_iter = {max_iter}"
    while total < max_iter:
        at_max = obj.rank >= r_max
        chunk = (max_iter - total) if at_max else min(every, max_iter - total)
        res = fit_euclidean(obj, x, max_iter=chunk, linear_solve_every=linear_solve_every,
                            rel_tol=rel_tol if at_max else 0.0, rel_window=rel_window,
                            callback=callback, state=state)
        x, state = res.x, res.state
        history += res.history[1:]
        ranks += [obj.rank] * (len(res.history) - 1)
        total += res.n_iter
        if at_max:
            message = (f"reached max_iter = {max_iter}" if res.message.startswith("reached")
                       else res.message)
            break
        if res.message == "stopped by callback":
            message = res.message
            break
        if total >= max_iter:
            break
        # (a chunk that stopped early, e.g. converged at this rank, is augmented all the same)
        new, x = augment(obj, x, min(delta_r, r_max - obj.rank))
        if state.status == "running":
            state = augment_state(state, obj, new, x)
        else:  # the optimizer stopped at this rank (e.g. converged): start afresh
            state = None
        obj = new
    return CompressedFit("mfra", obj, x, float(history[-1]), total, message, history, ranks)
