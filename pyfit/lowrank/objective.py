"""Losses over factored radial parameters: MF (``U V^T`` of an unfolding) and TF (tensor train).

Both wrap a dense :class:`pyfit.fitting.loss.Loss` (whose parameter vector is
``[radial (C*C*K*R), species (C), moment (n_scalar)]``) and evaluate it at the dense tensor
contracted from the factors; gradients follow from the dense radial gradient ``G = dL/dc`` by
the chain rule, so only one kernel call is made per evaluation:

- MF, ``M = U V^T`` (``G`` unfolded the same way): ``dL/dU = G V``, ``dL/dV = G^T U``;
- TF, cores ``G_k`` (``r_{k-1}, n_k, r_k``): ``dL/dG_k[a, i, b] = sum G[p, i, q] L_k[p, a]
  R_k[b, q]`` with ``L_k`` the contraction of the cores left of ``k`` and ``R_k`` of those right
  of it.

The parameter vector of an objective is ``[factors..., species (C), moment (n_scalar)]``:
MF ``[U.ravel() (m*r), V.ravel() (n*r), linear]``, TF ``[core_1.ravel(), ..., core_4.ravel(),
linear]``. The linear (species + moment) coefficients are solved exactly with the dense loss's
least squares (:meth:`linear_solve`).

The protocol used by the trainer (``pyfit.fitting.trainer``): ``n_params``, ``initial(rng)``,
``value(x)``, ``value_and_grad(x)``, ``linear_solve(x)``, ``to_potential(x)`` (a
:class:`~pyfit.lowrank.potential.CompressedMTP`, whose ``save`` writes the factored file),
``errors(x)``. :func:`make_objective` builds one from a ``[compression]`` table.
"""

from __future__ import annotations

import numpy as np

from pyfit.errors import PyfitError
from pyfit.lowrank.factors import (LowRank, TensorTrain, _check_tt_ranks, _max_tt_ranks, fold,
                                   unfold, unfolding_shape)
from pyfit.lowrank.potential import CompressedMTP

__all__ = ["MatrixObjective", "TTObjective", "make_objective", "objective_from_table",
           "COMPRESSION_KEYS",
           "rank_for_compression", "tt_ranks_for_compression"]


class _FactoredObjective:
    """Common part: the dense loss, the linear parameters and the conversions."""

    method = "?"

    def __init__(self, loss, species=None):
        self.loss = loss
        m = loss.template
        self.tensor_shape = (m.species_count, m.species_count, m.radial_funcs_count,
                             m.radial_basis_size)
        self.n_linear = loss.n_params - loss.radial_slice.stop
        self.species = species
        self.n_evaluations = 0

    # to be provided: n_factor_params, radial(x) -> dense tensor, _chain(x, G) -> factor grad
    @property
    def n_params(self) -> int:
        return self.n_factor_params + self.n_linear

    def _check(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if x.shape != (self.n_params,):
            raise PyfitError(f"{self.method}: expected {self.n_params} parameters, found shape "
                             f"{x.shape}")
        return x

    def linear(self, x) -> np.ndarray:
        return self._check(x)[self.n_factor_params:]

    def dense(self, x) -> np.ndarray:
        """The dense loss's parameter vector at ``x``."""
        x = self._check(x)
        return np.concatenate([self.radial(x).ravel(), x[self.n_factor_params:]])

    def value(self, x) -> float:
        self.n_evaluations += 1
        return self.loss.value(self.dense(x))

    def value_and_grad(self, x):
        self.n_evaluations += 1
        value, grad = self.loss.value_and_grad(self.dense(x))
        g_radial = grad[self.loss.radial_slice].reshape(self.tensor_shape)
        return value, np.concatenate([self._chain(x, g_radial), grad[self.loss.radial_slice.stop:]])

    def linear_solve(self, x) -> np.ndarray:
        """``x`` with the species and moment coefficients replaced by their exact least-squares
        optimum at the current factors."""
        x = self._check(x).copy()
        solved = self.loss.linear_solve(self.dense(x))
        x[self.n_factor_params:] = solved[self.loss.radial_slice.stop:]
        return x

    def with_linear(self, factor_params, linear) -> np.ndarray:
        """A parameter vector from a list of factor arrays and the linear parameters."""
        return np.concatenate([np.ravel(a) for a in factor_params] + [np.ravel(linear)])

    def to_potential(self, x, species=None) -> CompressedMTP:
        model = self.loss.unpack(self.dense(x))
        return CompressedMTP(model, self.factors(x), species=species or self.species,
                             method=self.method)

    def errors(self, x):
        return self.loss.errors(self.dense(x))

    def start_from(self, params) -> np.ndarray:
        """The trainer's start from a trained dense parameter vector (``model.init``): the
        truncation of its radial tensor (SVD / TT-SVD) with the linear parameters re-solved."""
        return self.from_dense(params, solve=True)

    def _random_scale(self) -> float:
        """Entry scale of the dense initial radial tensor (as Loss.initial_params)."""
        m = self.loss.template
        width = m.max_dist - m.min_dist
        return 1.0 / (m.radial_basis_size * width * width)


# --------------------------------------------------------------------------- MF
class MatrixObjective(_FactoredObjective):
    """MF: the radial tensor is ``fold(U V^T)``, ``U`` (m, r), ``V`` (n, r)."""

    method = "mf"

    def __init__(self, loss, rank: int, unfolding: str = "pairs", species=None,
                 method: str = "mf"):
        super().__init__(loss, species)
        self.unfolding = unfolding
        self.m, self.n = unfolding_shape(self.tensor_shape, unfolding)
        full = min(self.m, self.n)
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or \
                not 1 <= rank <= full:
            raise PyfitError(f"rank {rank!r} for the {unfolding} unfolding of a "
                             f"{self.tensor_shape} radial tensor ({self.m} x {self.n}): expected "
                             f"an integer 1 <= rank <= {full}")
        self.rank = int(rank)
        if method not in ("mf", "rmf", "mfra"):
            raise PyfitError(f"method: expected mf, rmf or mfra, found {method!r}")
        self.method = method

    @property
    def n_factor_params(self) -> int:
        return self.rank * (self.m + self.n)

    @property
    def n_radial_params(self) -> int:
        """MF: r (m + n); R-MF: r (m + n - r) (the manifold's dimension)."""
        if self.method == "rmf":
            return self.rank * (self.m + self.n - self.rank)
        return self.n_factor_params

    def split(self, x) -> tuple[np.ndarray, np.ndarray]:
        x = self._check(x)
        mr = self.m * self.rank
        return (x[:mr].reshape(self.m, self.rank),
                x[mr:self.n_factor_params].reshape(self.n, self.rank))

    def factors(self, x) -> LowRank:
        u, v = self.split(x)
        return LowRank(u.copy(), v.copy(), self.tensor_shape, self.unfolding)

    def radial(self, x) -> np.ndarray:
        u, v = self.split(x)
        return fold(u @ v.T, self.tensor_shape, self.unfolding)

    def _chain(self, x, g_radial):
        u, v = self.split(x)
        g = unfold(g_radial, self.unfolding)
        return np.concatenate([(g @ v).ravel(), (g.T @ u).ravel()])

    # ------------------------------------------------------------------ matrix form
    def matrix_value_and_grad(self, matrix, linear):
        """Loss and Euclidean gradients ``(dL/dM (m, n), dL/d linear)`` at the unfolded radial
        matrix ``M`` (used by the Riemannian optimiser and MFRA)."""
        self.n_evaluations += 1
        params = np.concatenate([fold(matrix, self.tensor_shape, self.unfolding).ravel(), linear])
        value, grad = self.loss.value_and_grad(params)
        g = unfold(grad[self.loss.radial_slice].reshape(self.tensor_shape), self.unfolding)
        return value, g, grad[self.loss.radial_slice.stop:]

    def matrix_value(self, matrix, linear) -> float:
        self.n_evaluations += 1
        params = np.concatenate([fold(matrix, self.tensor_shape, self.unfolding).ravel(), linear])
        return self.loss.value(params)

    # ------------------------------------------------------------------ starting points
    def initial(self, rng: np.random.Generator) -> np.ndarray:
        """Random factors whose product has the entry scale of :meth:`Loss.initial_params`
        (balanced: U and V entries ~ N(0, (s^2 / r)^(1/4))), then the exact linear solve."""
        sigma = (self._random_scale() ** 2 / 3.0 / self.rank) ** 0.25  # uniform(-s, s) variance
        u = rng.normal(scale=sigma, size=(self.m, self.rank))
        v = rng.normal(scale=sigma, size=(self.n, self.rank))
        return self.linear_solve(self.with_linear([u.ravel(), v.ravel()], np.zeros(self.n_linear)))

    def from_dense(self, params, solve: bool = False) -> np.ndarray:
        """The truncated SVD (balanced factors) of a dense parameter vector's radial tensor, with
        its linear parameters (re-solved exactly if ``solve``)."""
        params = np.asarray(params, dtype=float)
        c = params[self.loss.radial_slice].reshape(self.tensor_shape)
        f = LowRank.from_dense(c, max_rank=self.rank, unfolding=self.unfolding)
        x = self.with_linear([f.u.ravel(), f.v.ravel()], params[self.loss.radial_slice.stop:])
        return self.linear_solve(x) if solve else x

    def from_factors(self, u, v, linear) -> np.ndarray:
        return self.with_linear([u, v], linear)

    def at_rank(self, rank: int, method: str | None = None) -> "MatrixObjective":
        """The same objective (loss, unfolding, species, settings) at another rank."""
        new = MatrixObjective(self.loss, int(rank), self.unfolding, species=self.species,
                              method=method or self.method)
        new.settings = getattr(self, "settings", {})
        return new

    def make_driver(self, options, check):
        """The trainer's driver (:mod:`pyfit.fitting.driver`): R-BFGS for ``rmf``, rank
        augmentation for ``mfra``, None (the Euclidean BFGS) for ``mf``."""
        from pyfit.lowrank.drivers import MFRADriver, RiemannianDriver

        if self.method == "rmf":
            return RiemannianDriver(self, options, check)
        if self.method == "mfra":
            return MFRADriver(self, options, check)
        return None


# --------------------------------------------------------------------------- TF
class TTObjective(_FactoredObjective):
    """TF: the radial tensor is a tensor train with ranks ``(r1, r2, r3)``."""

    method = "tf"

    def __init__(self, loss, ranks, species=None):
        super().__init__(loss, species)
        self.ranks = _check_tt_ranks(ranks, self.tensor_shape)
        full = (1,) + self.ranks + (1,)
        self.core_shapes = [(full[k], self.tensor_shape[k], full[k + 1]) for k in range(4)]
        self.offsets = np.cumsum([0] + [int(np.prod(s)) for s in self.core_shapes])

    @property
    def n_factor_params(self) -> int:
        return int(self.offsets[-1])

    @property
    def n_radial_params(self) -> int:
        return self.n_factor_params

    def cores(self, x) -> list[np.ndarray]:
        x = self._check(x)
        return [x[self.offsets[k]:self.offsets[k + 1]].reshape(s)
                for k, s in enumerate(self.core_shapes)]

    def factors(self, x) -> TensorTrain:
        return TensorTrain([g.copy() for g in self.cores(x)])

    def radial(self, x) -> np.ndarray:
        return TensorTrain(self.cores(x)).to_dense()

    def _chain(self, x, g_radial):
        cores = self.cores(x)
        n = self.tensor_shape
        lefts = [np.ones((1, 1))]  # (prod n[:k], r_{k-1})
        for g in cores[:-1]:
            r, nk, r_next = g.shape
            lefts.append((lefts[-1] @ g.reshape(r, nk * r_next)).reshape(-1, r_next))
        rights = [np.ones((1, 1))]  # (r_k, prod n[k+1:]), built from the right
        for g in cores[:0:-1]:
            r, nk, r_next = g.shape
            rights.append((g.reshape(r * nk, r_next) @ rights[-1]).reshape(r, -1))
        rights = rights[::-1]
        out = []
        for k, g in enumerate(cores):
            gk = g_radial.reshape(int(np.prod(n[:k])), n[k], int(np.prod(n[k + 1:])))
            out.append(np.einsum("pa,piq,bq->aib", lefts[k], gk, rights[k], optimize=True).ravel())
        return np.concatenate(out)

    def initial(self, rng: np.random.Generator) -> np.ndarray:
        """Random cores whose contraction has the entry scale of :meth:`Loss.initial_params`,
        then the exact linear solve."""
        target = self._random_scale() ** 2 / 3.0  # entry variance of the dense initial tensor
        # an entry is a sum over r1 r2 r3 products of four core entries of variance s^2 each
        s2 = (target / float(np.prod(self.ranks))) ** 0.25
        cores = [rng.normal(scale=np.sqrt(s2), size=s) for s in self.core_shapes]
        return self.linear_solve(self.with_linear([g.ravel() for g in cores],
                                                  np.zeros(self.n_linear)))

    def from_dense(self, params, solve: bool = False) -> np.ndarray:
        params = np.asarray(params, dtype=float)
        c = params[self.loss.radial_slice].reshape(self.tensor_shape)
        tt = TensorTrain.from_dense(c, max_rank=self.ranks)
        x = self.with_linear([g.ravel() for g in tt.cores], params[self.loss.radial_slice.stop:])
        return self.linear_solve(x) if solve else x


# --------------------------------------------------------------------------- ranks
def rank_for_compression(shape, fraction: float, unfolding: str = "pairs",
                         method: str = "mf") -> int:
    """The rank whose radial parameter count is closest to ``(1 - fraction)`` of the dense
    count (``fraction`` = share of radial parameters removed, e.g. 0.5)."""
    if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
        raise PyfitError(f"compression: expected a fraction 0 < f < 1 of radial parameters to "
                         f"remove, found {fraction!r}")
    m, n = unfolding_shape(shape, unfolding)
    target = (1 - fraction) * m * n
    counts = {r: (r * (m + n - r) if method == "rmf" else r * (m + n))
              for r in range(1, min(m, n) + 1)}
    return min(counts, key=lambda r: (abs(counts[r] - target), r))


def tt_ranks_for_compression(shape, fraction: float) -> tuple[int, int, int]:
    """TT ranks with a parameter count closest to ``(1 - fraction)`` of the dense count, among
    the consistent ranks (ties: the most balanced)."""
    if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
        raise PyfitError(f"compression: expected a fraction 0 < f < 1 of radial parameters to "
                         f"remove, found {fraction!r}")
    C, _, K, R = shape
    target = (1 - fraction) * C * C * K * R
    caps = _max_tt_ranks(shape)
    best = None
    for r1 in range(1, caps[0] + 1):
        for r2 in range(1, caps[1] + 1):
            for r3 in range(1, caps[2] + 1):
                try:
                    _check_tt_ranks((r1, r2, r3), shape)
                except PyfitError:
                    continue
                count = C * r1 + r1 * C * r2 + r2 * K * r3 + r3 * R
                key = (abs(count - target), max(r1, r2, r3) - min(r1, r2, r3))
                if best is None or key < best[0]:
                    best = (key, (r1, r2, r3))
    return best[1]


#: keys of the ``[compression]`` table (TOML) / ``compression`` dict.
COMPRESSION_KEYS = {
    "method": "mf | rmf | mfra | tf",
    "rank": "MF/R-MF rank (MFRA: r_max)",
    "ranks": "TF ranks [r1, r2, r3]",
    "compression": "instead of rank(s): the fraction of radial parameters to remove, e.g. 0.5",
    "unfolding": "pairs (default) | pairs_funcs",
    "r0": "MFRA initial rank (default 1)",
    "delta_r": "MFRA rank increment (default 1)",
    "every": "MFRA augmentation interval in iterations (default 50)",
    "r_max": "MFRA maximum rank (default: rank)",
    "sufficient_descent": "R-MF sufficient-descent coefficient (default 1e-4)",
    "armijo_c1": "R-MF Armijo constant of the line search (default 1e-4)",
}


def make_objective(loss, compression: dict, rng: np.random.Generator | None = None,
                   species=None):
    """The trainer's factory (``pyfit train`` with a ``[compression]`` table): the objective of
    :func:`objective_from_table`. ``mf`` and ``tf`` are fitted by the trainer's Euclidean BFGS;
    ``rmf`` and ``mfra`` objectives bring their own optimizer (``make_driver``: Riemannian BFGS,
    rank augmentation; :mod:`pyfit.lowrank.drivers`). ``rng`` is unused (starting points come
    from ``objective.initial(rng)``)."""
    obj = objective_from_table(loss, compression, species)
    if obj.method == "mfra":
        from pyfit.lowrank.mfra import settings_of

        settings_of(obj)  # bad r0 / delta_r / every / r_max: an error before any fitting
    return obj


def objective_from_table(loss, compression: dict, species=None):
    """The factored objective described by a ``[compression]`` table (keys: COMPRESSION_KEYS).

    ``method = "mf" | "rmf" | "mfra"`` gives a :class:`MatrixObjective` (for rmf and mfra it
    also carries the optimiser settings in ``.settings``: ``sufficient_descent``; ``r0``,
    ``delta_r``, ``every``, ``r_max``, used by :func:`pyfit.lowrank.fit.fit_objective`);
    ``"tf"`` a :class:`TTObjective`.
    """
    if not isinstance(compression, dict):
        raise PyfitError(f"[compression]: expected a table, found {type(compression).__name__}")
    unknown = sorted(set(compression) - set(COMPRESSION_KEYS))
    if unknown:
        raise PyfitError(f"[compression]: unknown key {unknown[0]!r}; allowed keys: "
                         f"{', '.join(COMPRESSION_KEYS)}")
    method = compression.get("method", "mf")
    if method not in ("mf", "rmf", "mfra", "tf"):
        raise PyfitError(f"[compression] method: expected mf, rmf, mfra or tf, found {method!r}")
    m = loss.template
    shape = (m.species_count, m.species_count, m.radial_funcs_count, m.radial_basis_size)
    fraction = compression.get("compression")
    if method == "tf":
        if "rank" in compression:
            raise PyfitError("[compression] method = tf takes ranks = [r1, r2, r3], not rank")
        ranks = compression.get("ranks")
        if ranks is None:
            if fraction is None:
                raise PyfitError("[compression] method = tf needs ranks = [r1, r2, r3] or "
                                 "compression = <fraction>")
            ranks = tt_ranks_for_compression(shape, fraction)
        return TTObjective(loss, tuple(ranks), species=species)
    if "ranks" in compression:
        raise PyfitError(f"[compression] method = {method} takes rank = r, not ranks")
    unfolding = compression.get("unfolding", "pairs")
    rank = compression.get("rank", compression.get("r_max") if method == "mfra" else None)
    if rank is None:
        if fraction is None:
            raise PyfitError(f"[compression] method = {method} needs rank = r or compression = "
                             f"<fraction>")
        rank = rank_for_compression(shape, fraction, unfolding, method)
    obj = MatrixObjective(loss, rank, unfolding, species=species, method=method)
    obj.settings = {k: compression[k] for k in ("r0", "delta_r", "every", "r_max",
                                                "sufficient_descent", "armijo_c1")
                    if k in compression}
    return obj
