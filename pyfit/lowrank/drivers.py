"""Trainer drivers for the factored fits that are not plain BFGS over a vector
(see :mod:`pyfit.fitting.driver` for the protocol):

- :class:`RiemannianDriver` — R-MF: Riemannian BFGS (:func:`pyfit.lowrank.riemannian.rbfgs_step`)
  on the rank-r matrices x the linear parameters. ``state.x`` is the MF parameter vector of the
  iterate with balanced factors (``U sqrt(s)``, ``V sqrt(s)``); the checkpoint stores the
  point ``(u, s, vt)``, the linear parameters and the inverse Hessian approximation, so a
  resumed fit continues exactly.
- :class:`MFRADriver` — MFRA: BFGS over ``(U, V, linear)`` from rank ``r0``, ``delta_r`` columns
  added (:func:`pyfit.lowrank.mfra.augment`, BFGS memory carried by
  :func:`~pyfit.lowrank.mfra.augment_state`) every ``every`` iterations (or as soon as BFGS stops
  at a rank below ``r_max``) until ``r_max``; the relative-decrease stopping rule only looks at
  iterations at ``r_max``. The checkpoint stores the current rank with the BFGS state.

With ``reset_after_linear_solve = true`` both reproduce :func:`pyfit.lowrank.fit.fit_objective`
step for step (tested), with the trainer's logs, checkpoints, resume and signal handling.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Callable

import numpy as np

from pyfit.errors import PyfitError
from pyfit.fitting.driver import EuclideanDriver
from pyfit.fitting.optimize import OptimizerState, initial_state
from pyfit.lowrank.fit import _balanced
from pyfit.lowrank.objective import MatrixObjective
from pyfit.lowrank.riemannian import (FixedRankManifold, RBFGSState, rbfgs_set_linear,
                                      rbfgs_start, rbfgs_step)

__all__ = ["RiemannianDriver", "MFRADriver"]


class RiemannianDriver:
    """R-MF for the trainer. ``objective``: a rank-r :class:`MatrixObjective`; its
    ``settings`` give ``sufficient_descent`` and ``armijo_c1`` (default 1e-4 each)."""

    rel_tol_from = 0

    def __init__(self, objective: MatrixObjective, options, check: Callable[[], None]):
        from pyfit.lowrank.riemannian import _check_settings

        self.objective = objective
        self.options = options
        self.check = check
        settings = getattr(objective, "settings", {})
        self.sufficient_descent = settings.get("sufficient_descent", 1e-4)
        self.c1 = settings.get("armijo_c1", 1e-4)
        _check_settings(self.sufficient_descent, self.c1)
        self.manifold = FixedRankManifold(objective.m, objective.n, objective.rank)
        self.rstate: RBFGSState | None = None
        self._view = None

    def fun(self, matrix, w):
        self.check()
        return self.objective.matrix_value_and_grad(matrix, w)

    @property
    def state(self):
        st = self.rstate
        if self._view is None or self._view[0] is not st:
            x = _balanced(self.objective, st.point, st.w)
            self._view = (st, SimpleNamespace(x=x, f=st.f, iteration=st.iteration,
                                              n_evals=st.n_evals, alpha=st.alpha,
                                              status=st.status))
        return self._view[1]

    def start(self, rng: np.random.Generator, init=None) -> None:
        x0 = self.objective.initial(rng) if init is None else self.objective.start_from(init)
        u, v = self.objective.split(x0)
        point = self.manifold.from_factors(u, v)
        self.rstate = rbfgs_start(self.objective.matrix_value_and_grad, self.manifold, point,
                                  self.objective.linear(x0))

    def before_iteration(self):
        return None

    def linear_solve(self):
        st = self.rstate
        x_new = self.objective.linear_solve(self.state.x)
        new = rbfgs_set_linear(self.fun, self.manifold, st, self.objective.linear(x_new))
        accepted = bool(new.f < st.f)
        if accepted:
            self.rstate = new
        else:
            from dataclasses import replace

            self.rstate = replace(st, n_evals=st.n_evals + 1)
        return st.f, float(new.f), accepted

    def step(self) -> None:
        self.rstate = rbfgs_step(self.fun, self.manifold, self.rstate, self.sufficient_descent,
                                 self.c1)

    def stop_status(self):
        return None if self.rstate.status == "running" else self.rstate.status

    def to_dict(self) -> dict:
        return self.rstate.to_dict(prefix="rmf.")

    def load(self, arrays) -> None:
        if "rmf.u" not in arrays:
            raise PyfitError("not an R-MF checkpoint (no rmf.* entries): written by another "
                             "fit method")
        self.rstate = RBFGSState.from_dict(arrays, self.manifold, self.objective.n_linear,
                                           prefix="rmf.")


class MFRADriver(EuclideanDriver):
    """MFRA for the trainer. ``objective``: the rank-``r_max`` :class:`MatrixObjective`
    (method ``mfra``); its ``settings`` give ``r0``, ``delta_r``, ``every``, ``r_max``."""

    def __init__(self, objective: MatrixObjective, options, check: Callable[[], None]):
        from pyfit.lowrank.mfra import settings_of

        super().__init__(objective, options, check)
        self.base = objective
        self.r0, self.delta_r, self.every, self.r_max = settings_of(objective)
        self.rank_start = 0  # iteration at which the current rank began

    def start(self, rng: np.random.Generator, init=None) -> None:
        self.objective = self.base.at_rank(self.r0, method="mfra")  # init: rank-r0 truncation
        super().start(rng, init)
        self.rank_start = 0

    @property
    def rel_tol_from(self) -> int:
        """The relative-decrease rule looks only at iterations at r_max (before: past the end
        of any history)."""
        return self.rank_start if self.objective.rank >= self.r_max else 1 << 62

    def before_iteration(self):
        from pyfit.lowrank.mfra import augment, augment_state

        state, obj = self.state, self.objective
        if obj.rank >= self.r_max:
            return None
        if state.iteration - self.rank_start < self.every and state.status == "running":
            return None
        new, x = augment(obj, state.x, min(self.delta_r, self.r_max - obj.rank))
        if state.status == "running":
            state = augment_state(state, obj, new, x)
        else:  # BFGS stopped at this rank (e.g. converged): start it afresh at the new rank
            fresh = initial_state(new.value_and_grad, x, method=self.options.method,
                                  memory=self.options.memory)
            fresh.iteration, fresh.n_evals = state.iteration, state.n_evals + 1
            state = fresh
        self.objective, self.state = new, state
        self.rank_start = state.iteration
        return {"event": "augment", "iter": state.iteration, "rank": new.rank,
                "n_params": new.n_params, "loss": state.f}

    def stop_status(self):
        if self.state.status != "running" and self.objective.rank < self.r_max:
            return None  # the next before_iteration() augments
        return super().stop_status()

    def to_dict(self) -> dict:
        d = super().to_dict()
        d.update({"mfra.rank": np.int64(self.objective.rank),
                  "mfra.rank_start": np.int64(self.rank_start)})
        return d

    def load(self, arrays) -> None:
        if "mfra.rank" not in arrays:
            raise PyfitError("not an MFRA checkpoint (no mfra.* entries): written by another "
                             "fit method")
        rank = int(arrays["mfra.rank"])
        if not self.r0 <= rank <= self.r_max:
            raise PyfitError(f"MFRA checkpoint at rank {rank}, expected {self.r0} <= rank <= "
                             f"{self.r_max}")
        self.objective = self.base.at_rank(rank, method="mfra")
        state = OptimizerState.from_dict(arrays, prefix="opt.")
        if state.n != self.objective.n_params:
            raise PyfitError(f"checkpoint: {state.n} parameters, the rank-{rank} model has "
                             f"{self.objective.n_params}")
        self.state = state
        self.rank_start = int(arrays["mfra.rank_start"])
