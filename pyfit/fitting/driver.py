"""Optimizer drivers: the part of a fit that owns the optimizer state.

The trainer (:func:`pyfit.fitting.trainer.train_model`) runs the loop — stopping rules, exact
linear solves on a schedule, logging, checkpoints, signals — and asks a *driver* to take the
steps. :class:`EuclideanDriver` (BFGS / L-BFGS over the whole parameter vector) serves the dense
MTP and every factored objective whose parameters are a plain vector (MF, TF). An objective that
needs another optimizer provides ``make_driver(options, check)`` returning an object with the
same members (:mod:`pyfit.lowrank.drivers`: Riemannian BFGS for R-MF, rank augmentation for
MFRA)::

    objective                   # the objective of the current state (MFRA: the current rank);
                                # errors(x), to_potential(x) are called on it
    state                       # has .x (parameters of `objective`), .f, .iteration, .n_evals,
                                # .alpha (last step length), .status ("running" or the reason)
    start(rng, init=None)       # initial point: objective.initial(rng), or from the dense
                                # parameters init (objective.start_from); evaluates once
    before_iteration() -> dict | None   # hook at the top of each iteration, before the linear
                                # solve (MFRA augments the rank here); a dict is logged
    linear_solve() -> (f_before, f_after, accepted)   # exact linear parameters, kept only
                                # when the loss decreases; None if the objective has none
    step()                      # one iteration
    stop_status() -> str | None # why the optimizer cannot continue (None: it can)
    rel_tol_from: int           # iteration from which the relative-decrease rule may look back
    to_dict() -> {name: array}; load(arrays)   # exact checkpoint round trip

``check()``, passed to the driver, raises when a stop signal arrived; drivers call it before
every evaluation of the objective.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from pyfit.errors import PyfitError
from pyfit.fitting.optimize import (OptimizerOptions, OptimizerState, initial_state,
                                    reset_memory, step)

__all__ = ["EuclideanDriver", "make_driver", "start_from"]


class EuclideanDriver:
    """BFGS / L-BFGS with a strong-Wolfe line search over ``objective.value_and_grad``.

    ``options``: the ``[optimizer]`` settings (method, memory, c1, c2,
    reset_after_linear_solve)."""

    rel_tol_from = 0

    def __init__(self, objective, options, check: Callable[[], None] = lambda: None):
        self.objective = objective
        self.options = options
        self.check = check
        self.step_options = OptimizerOptions(c1=options.c1, c2=options.c2)
        self.state: OptimizerState | None = None

    def fun(self, x):
        self.check()
        return self.objective.value_and_grad(x)

    def start(self, rng: np.random.Generator, init=None) -> None:
        x0 = self.objective.initial(rng) if init is None else start_from(self.objective, init)
        self.state = initial_state(self.objective.value_and_grad, x0,
                                   method=self.options.method, memory=self.options.memory)

    def before_iteration(self):
        return None

    def linear_solve(self):
        solve = getattr(self.objective, "linear_solve", None)
        if solve is None:
            return None
        state = self.state
        x_lin = solve(state.x)
        f_lin, g_lin = self.fun(x_lin)
        accepted = bool(f_lin < state.f)
        f_before = state.f
        if accepted:
            state = reset_memory(state, x_lin, f_lin, g_lin,
                                 keep_memory=not self.options.reset_after_linear_solve)
        state.n_evals += 1
        self.state = state
        return f_before, float(f_lin), accepted

    def step(self) -> None:
        self.state = step(self.fun, self.state, self.step_options)

    def stop_status(self):
        return None if self.state.status == "running" else self.state.status

    def to_dict(self) -> dict:
        return self.state.to_dict(prefix="opt.")

    def load(self, arrays) -> None:
        state = OptimizerState.from_dict(arrays, prefix="opt.")
        if state.n != self.objective.n_params:
            raise PyfitError(f"checkpoint: {state.n} parameters, the model has "
                             f"{self.objective.n_params}")
        self.state = state


def start_from(objective, init):
    """``objective.start_from(init)``, or a clear error for objectives without it."""
    method = getattr(objective, "start_from", None)
    if method is None:
        raise PyfitError(f"model.init: a {type(objective).__name__} cannot start from a trained "
                         f"potential")
    return method(init)


def make_driver(objective, options, check: Callable[[], None] = lambda: None):
    """The objective's own driver (``objective.make_driver(options, check)``) if it has one,
    else :class:`EuclideanDriver`."""
    factory = getattr(objective, "make_driver", None)
    driver = factory(options, check) if factory is not None else None
    return driver if driver is not None else EuclideanDriver(objective, options, check)
