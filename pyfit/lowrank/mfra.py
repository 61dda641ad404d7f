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
columns. The BFGS memory restarts at each augmentation (the number of parameters changes). Once
``r_max`` is reached, BFGS continues to ``max_iter`` iterations in total.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from pyfit.errors import PyfitError
from pyfit.lowrank.factors import LowRank
from pyfit.lowrank.objective import MatrixObjective

__all__ = ["augment", "fit_mfra"]


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
    new = MatrixObjective(objective.loss, new_rank, objective.unfolding,
                          species=objective.species, method=objective.method)
    new.settings = getattr(objective, "settings", {})
    return new, new.from_factors(u_new, v_new, w)


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

    r_max = objective.rank if r_max is None else int(r_max)
    full = min(objective.m, objective.n)
    for name, value, low, high in (("r_max", r_max, 1, full), ("r0", r0, 1, r_max),
                                   ("delta_r", delta_r, 1, max(1, r_max)),
                                   ("every", every, 1, None)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low \
                or (high is not None and value > high):
            bound = f"{low} <= {name}" + (f" <= {high}" if high is not None else "")
            raise PyfitError(f"MFRA {name}: expected an integer {bound}, found {value!r}")
    obj = MatrixObjective(objective.loss, int(r0), objective.unfolding,
                          species=objective.species, method="mfra")
    obj.settings = getattr(objective, "settings", {})
    if x0 is None:
        if rng is None:
            raise PyfitError("fit_mfra: give x0 or rng")
        x = obj.initial(rng)
    else:
        x = obj._check(x0).copy()
    history = [obj.value(x)]
    ranks = [obj.rank]
    total = 0
    message = f"reached max_iter = {max_iter}"
    while total < max_iter:
        at_max = obj.rank >= r_max
        chunk = (max_iter - total) if at_max else min(every, max_iter - total)
        offset = total
        cb = None
        if callback is not None:
            def cb(k, f, xk, _offset=offset):
                return callback(_offset + k, f, xk)
        res = fit_euclidean(obj, x, max_iter=chunk, linear_solve_every=linear_solve_every,
                            rel_tol=rel_tol if at_max else 0.0, rel_window=rel_window,
                            callback=cb)
        x = res.x
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
        obj, x = augment(obj, x, min(delta_r, r_max - obj.rank))
    return CompressedFit("mfra", obj, x, float(history[-1]), total, message, history, ranks)
