"""BFGS and L-BFGS with a strong-Wolfe line search, as a resumable state machine.

The objective is any callable ``fun(x) -> (f, g)`` returning the value and the gradient. An
optimisation is a sequence of immutable-by-convention :class:`OptimizerState` objects::

    state = initial_state(fun, x0, method="bfgs")      # one evaluation at x0
    while state.status == "running":
        state = step(fun, state)                      # one iteration (line search included)

:func:`step` never modifies its input: an exception raised by ``fun`` in the middle of an
iteration (Ctrl-C, a signal turned into an exception) leaves the previous state intact, and
re-running ``step`` from it repeats exactly the same arithmetic. :meth:`OptimizerState.to_dict`
gives a dict of NumPy arrays (``np.savez``-able, no pickling) and
:meth:`OptimizerState.from_dict` restores it bit for bit, so a run resumed from a saved state
reaches the same iterates as an uninterrupted one (for a deterministic ``fun``).

Algorithm (Nocedal & Wright, *Numerical Optimization*, 2nd ed., algorithms 3.5, 3.6, 6.1, 7.4):

- ``method="bfgs"``: dense inverse-Hessian approximation ``H`` (n x n), MLIP's choice. Before the
  first update ``H`` is ``gamma I`` with ``gamma = s.y / y.y`` (eq. 6.20).
- ``method="lbfgs"``: the last ``memory`` pairs (s, y), two-loop recursion, ``H0 = gamma I``.
- Line search: strong Wolfe conditions ``f(x + a d) <= f + c1 a g.d`` and
  ``|g(x + a d).d| <= c2 |g.d|``, bracketing then zoom with safeguarded cubic interpolation.
  Defaults ``c1 = 1e-4``, ``c2 = 0.9`` (the textbook quasi-Newton values: the unit step is accepted
  most of the time, so an iteration costs about one evaluation). MLIP-2 uses ``c1 = 0.1``,
  ``c2 = 0.5`` (a more exact search, more evaluations per iteration); pass
  ``OptimizerOptions(c1=0.1, c2=0.5)`` to match it.
- The first step (no curvature information yet) is ``-g`` with ``alpha0 = min(1, 1/|g|,
  2 f/|g|^2)`` (the last term, used only when ``f > 0``, is the exact step for a quadratic
  whose minimum is 0: least-squares losses start with a sensibly scaled step instead of many
  backtracking evaluations); later steps start from ``alpha = 1``.
- Pairs with ``s.y <= 1e-10 |s| |y|`` are skipped (the update would lose positive definiteness).
- Near a minimum the decrease ``c1 a g.d`` can fall below the round-off of ``f`` (a loss
  summed over many terms is exact to ~1e-14 relative, not 1e-16), and the strong Wolfe test then
  refuses every step. A point that fails sufficient decrease is still accepted when ``f`` rose
  by at most ``1e-10 |f|`` and its directional derivative meets the curvature condition and
  ``g(x + a d).d <= (2 c1 - 1) g.d`` (the approximate Wolfe conditions of Hager and Zhang,
  SIAM J. Optim. 16, 170 (2005)); away from round-off this never applies.
- Line-search failure: when the search ends without a point satisfying the strong Wolfe
  conditions it still accepts its lowest point that satisfies sufficient decrease. When no
  point decreases ``f``, the curvature memory is reset (``H = gamma I``) and the iteration is
  retried from the same point with a scaled steepest-descent direction; after
  ``max_failures`` consecutive failures the state stops with status ``"line_search_failed"``.

Statuses: ``"running"``, ``"converged"`` (``max|g| <= gtol``), ``"line_search_failed"``,
``"max_iter"`` and ``"stopped"`` (set by :func:`minimize_bfgs`, or by a caller).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from pyfit.errors import PyfitError

__all__ = ["OptimizerOptions", "OptimizerState", "OptimizeResult", "initial_state", "step",
           "reset_memory", "minimize_bfgs", "METHODS"]

METHODS = ("bfgs", "lbfgs")
_F_NOISE = 1e-10  # relative round-off allowed in f by the approximate Wolfe test
_STATE_VERSION = 1


@dataclass(frozen=True)
class OptimizerOptions:
    """Line-search and update settings (not part of the saved state: pass the same ones when
    resuming)."""

    c1: float = 1e-4  # sufficient decrease
    c2: float = 0.9  # curvature (strong Wolfe)
    max_ls: int = 20  # evaluations per line search
    gtol: float = 0.0  # converged when max|g| <= gtol
    max_failures: int = 2  # consecutive line-search failures before stopping

    def __post_init__(self):
        if not (0.0 < self.c1 < self.c2 < 1.0):
            raise PyfitError(f"line search: need 0 < c1 < c2 < 1, found c1={self.c1}, "
                             f"c2={self.c2}")
        if self.max_ls < 2 or self.max_failures < 1:
            raise PyfitError("line search: max_ls must be >= 2 and max_failures >= 1")


@dataclass
class OptimizerState:
    """Everything needed to continue an optimisation (see :func:`step`)."""

    method: str
    x: np.ndarray
    f: float
    g: np.ndarray
    H: np.ndarray | None = None  # bfgs: dense inverse Hessian; None = gamma * I
    S: np.ndarray | None = None  # lbfgs: (k, n) last steps, oldest first
    Y: np.ndarray | None = None  # lbfgs: (k, n) last gradient changes
    memory: int = 20  # lbfgs: pairs kept
    gamma: float = 0.0  # scale of the initial inverse Hessian; 0 = unknown
    iteration: int = 0
    n_evals: int = 1
    n_failures: int = 0  # consecutive line-search failures
    status: str = "running"
    alpha: float = 0.0  # step length of the last accepted iteration
    n_updates: int = 0  # curvature pairs used since the last reset
    extra: dict = field(default_factory=dict)  # free slot for callers (saved as float arrays)

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def grad_max(self) -> float:
        return float(np.max(np.abs(self.g))) if self.g.size else 0.0

    def copy(self) -> "OptimizerState":
        def c(a):
            return None if a is None else a.copy()

        return replace(self, x=self.x.copy(), g=self.g.copy(), H=c(self.H), S=c(self.S),
                       Y=c(self.Y), extra={k: np.array(v, copy=True) for k, v in
                                           self.extra.items()})

    # ---------------------------------------------------------------- serialisation
    def to_dict(self, prefix: str = "") -> dict[str, np.ndarray]:
        """NumPy arrays only (``np.savez(path, **state.to_dict())``), exact round trip."""
        d = {
            "version": np.int64(_STATE_VERSION), "method": np.str_(self.method),
            "x": self.x, "f": np.float64(self.f), "g": self.g, "memory": np.int64(self.memory),
            "gamma": np.float64(self.gamma), "iteration": np.int64(self.iteration),
            "n_evals": np.int64(self.n_evals), "n_failures": np.int64(self.n_failures),
            "status": np.str_(self.status), "alpha": np.float64(self.alpha),
            "n_updates": np.int64(self.n_updates),
        }
        if self.H is not None:
            d["H"] = self.H
        if self.S is not None:
            d["S"], d["Y"] = self.S, self.Y
        for k, v in self.extra.items():
            d[f"extra.{k}"] = np.asarray(v)
        return {prefix + k: np.asarray(v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d, prefix: str = "") -> "OptimizerState":
        """Inverse of :meth:`to_dict` (accepts an ``np.load`` result)."""
        def get(k):
            try:
                return np.asarray(d[prefix + k])
            except KeyError:
                raise PyfitError(f"optimizer state: missing entry {prefix + k!r}") from None

        keys = list(d.keys())
        version = int(get("version"))
        if version != _STATE_VERSION:
            raise PyfitError(f"optimizer state: version {version}, expected {_STATE_VERSION}")
        has = lambda k: prefix + k in keys  # noqa: E731
        state = cls(
            method=str(get("method")), x=get("x").astype(float, copy=True),
            f=float(get("f")), g=get("g").astype(float, copy=True),
            H=get("H").copy() if has("H") else None,
            S=get("S").copy() if has("S") else None, Y=get("Y").copy() if has("Y") else None,
            memory=int(get("memory")), gamma=float(get("gamma")),
            iteration=int(get("iteration")), n_evals=int(get("n_evals")),
            n_failures=int(get("n_failures")), status=str(get("status")),
            alpha=float(get("alpha")), n_updates=int(get("n_updates")),
            extra={k[len(prefix) + 6:]: np.array(d[k]) for k in keys
                   if k.startswith(prefix + "extra.")},
        )
        _check_state(state)
        return state


def _check_state(state: OptimizerState) -> None:
    if state.method not in METHODS:
        raise PyfitError(f"optimizer: method {state.method!r}, expected one of {METHODS}")
    n = state.x.shape
    if state.x.ndim != 1 or state.g.shape != n:
        raise PyfitError(f"optimizer state: x and g must be vectors of one length, found "
                         f"{state.x.shape} and {state.g.shape}")
    if state.H is not None and state.H.shape != (n[0], n[0]):
        raise PyfitError(f"optimizer state: H has shape {state.H.shape}, expected {n * 2}")
    if (state.S is None) != (state.Y is None) or (
            state.S is not None and (state.S.shape != state.Y.shape or state.S.shape[1:] != n)):
        raise PyfitError("optimizer state: S and Y must both be (k, n) arrays")


def _evaluate(fun, x) -> tuple[float, np.ndarray]:
    f, g = fun(x)
    g = np.array(g, dtype=float, copy=True).reshape(x.shape)
    return float(f), g


def initial_state(fun: Callable, x0, method: str = "bfgs", memory: int = 20) -> OptimizerState:
    """The state at ``x0`` (evaluates ``fun`` once)."""
    if method not in METHODS:
        raise PyfitError(f"optimizer: method {method!r}, expected one of {METHODS}")
    if memory < 1:
        raise PyfitError(f"optimizer: memory must be >= 1, found {memory}")
    x = np.array(x0, dtype=float, copy=True).ravel()
    f, g = _evaluate(fun, x)
    if not math.isfinite(f) or not np.all(np.isfinite(g)):
        raise PyfitError("optimizer: the objective or its gradient is not finite at the "
                         "starting point")
    state = OptimizerState(method=method, x=x, f=f, g=g, memory=int(memory))
    if method == "lbfgs":
        state.S, state.Y = np.zeros((0, x.size)), np.zeros((0, x.size))
    return state


def reset_memory(state: OptimizerState, x=None, f=None, g=None,
                 keep_memory: bool = False) -> OptimizerState:
    """A copy with the curvature memory cleared (``H = gamma I``, the scale ``gamma`` kept),
    optionally moved to a new point ``x`` with its value ``f`` and gradient ``g`` (e.g. after
    an exact solve of some of the parameters). ``keep_memory=True``: only move (the jump adds
    no curvature pair; ``H`` stays positive definite, so the next direction is still a descent
    direction)."""
    new = state.copy()
    if x is not None:
        new.x = np.array(x, dtype=float, copy=True)
        new.f = float(f)
        new.g = np.array(g, dtype=float, copy=True)
    if keep_memory:
        return new
    new.H = None
    if new.method == "lbfgs":
        new.S, new.Y = np.zeros((0, new.n)), np.zeros((0, new.n))
    new.n_updates = 0
    return new


# -------------------------------------------------------------------- directions and updates
def _direction(state: OptimizerState) -> np.ndarray:
    g = state.g
    if state.method == "bfgs":
        if state.H is not None:
            return -(state.H @ g)
    elif state.S.shape[0] > 0:
        q = g.copy()
        k = state.S.shape[0]
        rho = np.empty(k)
        a = np.empty(k)
        for i in range(k - 1, -1, -1):
            rho[i] = 1.0 / (state.Y[i] @ state.S[i])
            a[i] = rho[i] * (state.S[i] @ q)
            q -= a[i] * state.Y[i]
        r = state.gamma * q
        for i in range(k):
            b = rho[i] * (state.Y[i] @ r)
            r += (a[i] - b) * state.S[i]
        return -r
    return -(state.gamma if state.gamma > 0 else 1.0) * g


def _update(state: OptimizerState, s: np.ndarray, y: np.ndarray) -> None:
    """Adds the pair (s, y) to the curvature memory of ``state`` (in place, on a new copy)."""
    sy = float(s @ y)
    if not (sy > 1e-10 * np.linalg.norm(s) * np.linalg.norm(y)) or not math.isfinite(sy):
        return
    state.gamma = sy / float(y @ y)
    state.n_updates += 1
    if state.method == "bfgs":
        H = state.H if state.H is not None else state.gamma * np.eye(state.n)
        rho = 1.0 / sy
        Hy = H @ y
        yHy = float(y @ Hy)
        # (I - rho s y^T) H (I - rho y s^T) + rho s s^T, symmetric by construction
        state.H = H + (rho * rho * yHy + rho) * np.outer(s, s) - rho * (
            np.outer(Hy, s) + np.outer(s, Hy))
    else:
        S = np.vstack([state.S, s[None]])[-state.memory:]
        Y = np.vstack([state.Y, y[None]])[-state.memory:]
        state.S, state.Y = S, Y


# -------------------------------------------------------------------- line search
def _cubic_min(a, fa, da, b, fb, db):
    """Minimiser of the cubic through (a, fa, da), (b, fb, db), or None."""
    if a == b:
        return None
    d1 = da + db - 3.0 * (fa - fb) / (a - b)
    rad = d1 * d1 - da * db
    if not math.isfinite(rad) or rad < 0:
        return None
    d2 = math.copysign(math.sqrt(rad), b - a)
    den = db - da + 2.0 * d2
    if den == 0 or not math.isfinite(den):
        return None
    t = b - (b - a) * (db + d2 - d1) / den
    return t if math.isfinite(t) else None


@dataclass
class _Point:
    alpha: float
    f: float
    g: np.ndarray | None
    dphi: float
    x: np.ndarray | None


def _line_search(fun, x, f0, d, dphi0, alpha0, opts: OptimizerOptions):
    """Strong-Wolfe search along d. Returns (point or None, n_evals, wolfe_ok)."""
    n_evals = 0
    best = None  # lowest point with sufficient decrease

    def probe(alpha):
        nonlocal n_evals, best
        xa = x + alpha * d
        fa, ga = _evaluate(fun, xa)
        n_evals += 1
        if not math.isfinite(fa) or not np.all(np.isfinite(ga)):
            return _Point(alpha, math.inf, None, math.nan, None)
        p = _Point(alpha, fa, ga, float(ga @ d), xa)
        if fa <= f0 + opts.c1 * alpha * dphi0 and fa < f0 and (best is None or fa < best.f):
            best = p
        return p

    def wolfe(p):
        return (p.f <= f0 + opts.c1 * p.alpha * dphi0) and abs(p.dphi) <= -opts.c2 * dphi0

    f_noise = _F_NOISE * abs(f0)

    def approx_wolfe(p):
        # near a minimum the decrease c1 a g.d falls below the round-off of f: judge the
        # point by its directional derivative and allow f to rise by round-off (Hager and
        # Zhang's approximate Wolfe conditions)
        return (p.g is not None and not p.f > f0 + f_noise
                and (2.0 * opts.c1 - 1.0) * dphi0 >= p.dphi
                and abs(p.dphi) <= -opts.c2 * dphi0)

    def zoom(lo: _Point, hi: _Point):
        while n_evals < opts.max_ls:
            a, b = sorted((lo.alpha, hi.alpha))
            width = b - a
            if width <= 1e-14 * max(b, 1e-300):
                return None
            t = None
            if math.isfinite(hi.f):
                t = _cubic_min(lo.alpha, lo.f, lo.dphi, hi.alpha, hi.f, hi.dphi)
            if t is None or not (a + 0.1 * width <= t <= b - 0.1 * width):
                t = 0.5 * (lo.alpha + hi.alpha)
            p = probe(t)
            no_decrease = p.f > f0 + opts.c1 * t * dphi0
            if no_decrease and approx_wolfe(p):
                return p
            if no_decrease or p.f >= lo.f:
                hi = p
            else:
                if abs(p.dphi) <= -opts.c2 * dphi0:
                    return p
                if p.dphi * (hi.alpha - lo.alpha) >= 0:
                    hi = lo
                lo = p
        return None

    prev = _Point(0.0, f0, None, dphi0, x)
    alpha = alpha0
    found = None
    while n_evals < opts.max_ls:
        p = probe(alpha)
        no_decrease = p.f > f0 + opts.c1 * alpha * dphi0
        if no_decrease and approx_wolfe(p):
            found = p
            break
        if no_decrease or (prev.alpha > 0 and p.f >= prev.f):
            found = zoom(prev, p)
            break
        if abs(p.dphi) <= -opts.c2 * dphi0:
            found = p
            break
        if p.dphi >= 0:
            found = zoom(p, prev)
            break
        t = _cubic_min(prev.alpha, prev.f, prev.dphi, p.alpha, p.f, p.dphi)
        nxt = 4.0 * alpha if t is None else min(4.0 * alpha, max(1.5 * alpha, t))
        prev, alpha = p, nxt
    if found is not None and (wolfe(found) or approx_wolfe(found)):
        return found, n_evals, True
    return best, n_evals, False


# -------------------------------------------------------------------- iteration
def step(fun: Callable, state: OptimizerState,
         options: OptimizerOptions | None = None) -> OptimizerState:
    """One iteration from ``state`` (which is not modified); returns the new state.

    A state whose status is not ``"running"`` is returned unchanged (as a copy).
    """
    opts = options or OptimizerOptions()
    new = state.copy()
    if state.status != "running":
        return new
    if opts.gtol > 0 and state.grad_max <= opts.gtol:
        new.status = "converged"
        return new
    d = _direction(state)
    dphi0 = float(state.g @ d)
    if not (dphi0 < 0) or not np.all(np.isfinite(d)):
        # not a descent direction (round-off in H): restart from steepest descent
        new = reset_memory(state)
        d = _direction(new)
        dphi0 = float(state.g @ d)
        if not dphi0 < 0:  # zero gradient
            new.status = "converged"
            return new
    fresh = new.n_updates == 0
    if fresh and new.gamma <= 0:
        gg = float(d @ d)
        alpha0 = min(1.0, 1.0 / math.sqrt(gg))
        if state.f > 0:  # a loss bounded below by 0: the linear model reaches 0 at f/g.g
            alpha0 = min(alpha0, 2.0 * state.f / gg)
    else:
        alpha0 = 1.0
    p, n_evals, _ = _line_search(fun, state.x, state.f, d, dphi0, alpha0, opts)
    new.n_evals += n_evals
    new.iteration += 1
    if p is None:
        new.n_failures += 1
        if fresh or new.n_failures >= opts.max_failures:
            new.status = "line_search_failed"
        new = reset_memory(new)
        return new
    s = p.x - state.x
    y = p.g - state.g
    new.x, new.f, new.g, new.alpha = p.x, p.f, p.g, p.alpha
    new.n_failures = 0
    _update(new, s, y)
    if opts.gtol > 0 and new.grad_max <= opts.gtol:
        new.status = "converged"
    return new


@dataclass
class OptimizeResult:
    x: np.ndarray
    f: float
    g: np.ndarray
    n_iter: int
    n_evals: int
    status: str
    state: OptimizerState

    @property
    def success(self) -> bool:
        return self.status in ("converged", "max_iter", "stopped")


def minimize_bfgs(fun: Callable, x0=None, max_iter: int = 1000, method: str = "bfgs",
                  callback: Callable | None = None, options: OptimizerOptions | None = None,
                  memory: int = 20, state: OptimizerState | None = None) -> OptimizeResult:
    """Minimises ``fun(x) -> (f, g)`` from ``x0`` (or continues ``state``) for at most
    ``max_iter`` iterations in total (counted from the start of the run, so a resumed state runs
    only the remaining ones). ``callback(state)`` is called after every iteration; returning
    True stops with status ``"stopped"``."""
    if state is None:
        if x0 is None:
            raise PyfitError("minimize_bfgs: give x0 or state")
        state = initial_state(fun, x0, method=method, memory=memory)
    while state.status == "running":
        if state.iteration >= max_iter:
            state = replace(state.copy(), status="max_iter")
            break
        state = step(fun, state, options)
        if callback is not None and callback(state) and state.status == "running":
            state = replace(state, status="stopped")
    return OptimizeResult(state.x.copy(), state.f, state.g.copy(), state.iteration,
                          state.n_evals, state.status, state)
