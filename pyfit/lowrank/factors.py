"""Low-rank factors of the radial coefficient tensor ``c[z_i, z_j, mu, b]``, shape (C, C, K, R).

* :class:`LowRank` — a rank-``r`` factorisation ``M = U V^T`` of an unfolding ``M`` of ``c``:

  - ``"pairs"`` (the paper's, default): ``M`` is ``(C*C) x (K*R)``, row ``z_i*C + z_j``, column
    ``mu*R + b``;
  - ``"pairs_funcs"``: ``M`` is ``(C*C*K) x R``, row ``(z_i*C + z_j)*K + mu``, column ``b`` (with
    one species this is the ``K x R`` unfolding).

  ``u`` has shape ``(m, r)``, ``v`` has shape ``(n, r)``; ``n_params = r (m + n)`` (MF) and
  ``n_params_riemannian = r (m + n - r)`` (the dimension of the manifold of rank-``r`` matrices,
  the free parameters of R-MF).

* :class:`TensorTrain` — a tensor train over the four indices with cores of shape
  ``(r_{k-1}, n_k, r_k)`` (``r_0 = r_4 = 1``, ``n = (C, C, K, R)``), as tensorly's ``TTTensor``:
  ``c[i, j, mu, b] = core1[0, i, :] @ core2[:, j, :] @ core3[:, mu, :] @ core4[:, b, 0]``;
  ``n_params = C r1 + r1 C r2 + r2 K r3 + r3 R``.

``from_dense`` truncates with the SVD (matrix) or the TT-SVD (tensor train) and records the
truncation: ``error_bound`` (Frobenius norm; for a matrix it is the exact error
``sqrt(sum of the discarded s_k^2)``, for a tensor train the TT-SVD bound
``sqrt(sum_k eps_k^2) >= ||c - TT||_F``) and ``singular_values`` (the full spectra).
Shapes and ranks are checked; errors say what was expected and what was found.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pyfit.errors import PyfitError

__all__ = ["LowRank", "TensorTrain", "UNFOLDINGS", "unfold", "fold", "unfolding_shape"]

UNFOLDINGS = ("pairs", "pairs_funcs")


# --------------------------------------------------------------------------- unfoldings
def _check_tensor_shape(shape) -> tuple[int, int, int, int]:
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise PyfitError(f"radial tensor shape: expected (C, C, K, R), found {shape!r}") from None
    if len(shape) != 4 or shape[0] != shape[1] or min(shape) < 1:
        raise PyfitError(f"radial tensor shape: expected (C, C, K, R) with C, K, R >= 1, "
                         f"found {shape}")
    return shape


def _check_unfolding(unfolding: str) -> str:
    if unfolding not in UNFOLDINGS:
        raise PyfitError(f"unfolding: expected one of {', '.join(UNFOLDINGS)}, "
                         f"found {unfolding!r}")
    return unfolding


def unfolding_shape(shape, unfolding: str = "pairs") -> tuple[int, int]:
    """``(m, n)`` of the unfolding of a radial tensor of shape ``(C, C, K, R)``."""
    C, _, K, R = _check_tensor_shape(shape)
    if _check_unfolding(unfolding) == "pairs":
        return C * C, K * R
    return C * C * K, R


def unfold(c: np.ndarray, unfolding: str = "pairs") -> np.ndarray:
    """The unfolding matrix of a radial tensor ``c`` (C, C, K, R) (a copy)."""
    c = np.asarray(c, dtype=float)
    return np.array(c.reshape(unfolding_shape(c.shape, unfolding)))


def fold(matrix: np.ndarray, shape, unfolding: str = "pairs") -> np.ndarray:
    """The radial tensor (C, C, K, R) of an unfolding matrix (inverse of :func:`unfold`)."""
    shape = _check_tensor_shape(shape)
    expected = unfolding_shape(shape, unfolding)
    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape != expected:
        raise PyfitError(f"{unfolding} unfolding of a {shape} tensor: expected a matrix of shape "
                         f"{expected}, found {matrix.shape}")
    return np.array(matrix.reshape(shape))


def _as_factor(x, name: str) -> np.ndarray:
    try:
        x = np.array(x, dtype=float)
    except (TypeError, ValueError):
        raise PyfitError(f"{name}: expected an array of numbers") from None
    if not np.all(np.isfinite(x)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise PyfitError(f"{name}: expected finite numbers, found {x[bad]} at index {bad}")
    return x


def _rank_for_tolerance(s: np.ndarray, rtol: float, norm: float) -> int:
    """Smallest rank whose discarded tail sqrt(sum s_k^2, k >= rank) is <= rtol * norm."""
    tail = np.sqrt(np.concatenate([np.cumsum((s ** 2)[::-1])[::-1], [0.0]]))
    ok = np.nonzero(tail <= rtol * norm)[0]
    return max(1, int(ok[0]))


def _check_rtol(rtol) -> float:
    if not (isinstance(rtol, (int, float, np.floating)) and np.isfinite(rtol) and rtol >= 0):
        raise PyfitError(f"rtol: expected a finite number >= 0, found {rtol!r}")
    return float(rtol)


# --------------------------------------------------------------------------- matrix factors
class LowRank:
    """``M = u @ v.T``: a rank-``r`` factorisation of an unfolding of the radial tensor.

    Parameters
    ----------
    u, v:
        ``(m, r)`` and ``(n, r)`` arrays.
    shape:
        The radial tensor's shape ``(C, C, K, R)``; needed by :meth:`to_dense` and checked
        against ``u``, ``v`` and ``unfolding``. ``None`` for a plain matrix factorisation.
    unfolding:
        ``"pairs"`` (default) or ``"pairs_funcs"``, see the module docstring.
    """

    def __init__(self, u, v, shape=None, unfolding: str = "pairs"):
        u = _as_factor(u, "u")
        v = _as_factor(v, "v")
        self.unfolding = _check_unfolding(unfolding)
        if u.ndim != 2 or v.ndim != 2:
            raise PyfitError(f"u, v: expected 2-d arrays (m, r) and (n, r), found shapes "
                             f"{u.shape} and {v.shape}")
        if u.shape[1] != v.shape[1]:
            raise PyfitError(f"u, v: expected the same number of columns (the rank), found "
                             f"u {u.shape} and v {v.shape}")
        m, r = u.shape
        n = v.shape[0]
        if r < 1:
            raise PyfitError("rank: expected >= 1 columns in u and v, found 0")
        if shape is not None:
            self.shape = _check_tensor_shape(shape)
            expected = unfolding_shape(self.shape, unfolding)
            if (m, n) != expected:
                raise PyfitError(
                    f"{unfolding} unfolding of a {self.shape} tensor is {expected[0]} x "
                    f"{expected[1]}: expected u with {expected[0]} rows and v with {expected[1]} "
                    f"rows, found u {u.shape} and v {v.shape}")
        else:
            self.shape = None
        if r > min(m, n):
            raise PyfitError(f"rank {r} is larger than a {m} x {n} matrix allows: expected "
                             f"rank <= {min(m, n)}")
        self.u, self.v = u, v
        self.error_bound: float | None = None
        self.singular_values: np.ndarray | None = None

    # ------------------------------------------------------------------ sizes
    @property
    def rank(self) -> int:
        return int(self.u.shape[1])

    @property
    def matrix_shape(self) -> tuple[int, int]:
        return int(self.u.shape[0]), int(self.v.shape[0])

    @property
    def n_params(self) -> int:
        """Parameters of the factors: ``r (m + n)`` (MF)."""
        m, n = self.matrix_shape
        return self.rank * (m + n)

    @property
    def n_params_riemannian(self) -> int:
        """Dimension of the manifold of rank-r m x n matrices: ``r (m + n - r)`` (R-MF)."""
        m, n = self.matrix_shape
        return self.rank * (m + n - self.rank)

    def __repr__(self) -> str:
        return (f"LowRank(rank={self.rank}, matrix={self.matrix_shape}, shape={self.shape}, "
                f"unfolding={self.unfolding!r})")

    # ------------------------------------------------------------------ conversions
    def matrix(self) -> np.ndarray:
        return self.u @ self.v.T

    def to_dense(self) -> np.ndarray:
        """The radial tensor ``(C, C, K, R)``."""
        if self.shape is None:
            raise PyfitError("to_dense: this LowRank has no tensor shape; pass shape=(C, C, K, R)")
        return fold(self.matrix(), self.shape, self.unfolding)

    def svd(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Thin SVD of ``u @ v.T``: ``(u, s, vt)`` with shapes (m, r), (r,), (r, n), named as
        numpy's; computed from QR factors of ``u`` and ``v`` (no m x n matrix formed)."""
        qu, ru = np.linalg.qr(self.u)
        qv, rv = np.linalg.qr(self.v)
        a, s, bt = np.linalg.svd(ru @ rv.T)
        return qu @ a, s, (qv @ bt.T).T

    @classmethod
    def from_svd(cls, u, s, vt, shape=None, unfolding: str = "pairs") -> "LowRank":
        """Balanced factors ``u sqrt(s)``, ``v sqrt(s)`` of a thin SVD."""
        root = np.sqrt(np.asarray(s, dtype=float))
        return cls(np.asarray(u) * root, np.asarray(vt).T * root, shape, unfolding)

    @classmethod
    def from_dense(cls, c, max_rank: int | None = None, rtol: float | None = None,
                   unfolding: str = "pairs") -> "LowRank":
        """Truncated SVD of the unfolding of ``c`` (C, C, K, R).

        The rank is ``max_rank`` if given (it must not exceed ``min(m, n)``), reduced further to
        the smallest rank whose error is at most ``rtol * ||c||_F`` if ``rtol`` is given; with
        neither, the full rank ``min(m, n)`` (exact). The factors are balanced
        (``u = U_r sqrt(s)``, ``v = V_r sqrt(s)``). ``error_bound`` is the exact Frobenius error
        ``||c - u v^T||_F``; ``singular_values`` the whole spectrum of the unfolding.
        """
        c = _as_factor(c, "c")
        shape = _check_tensor_shape(c.shape)
        mat = unfold(c, unfolding)
        m, n = mat.shape
        full = min(m, n)
        if max_rank is not None:
            if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)):
                raise PyfitError(f"max_rank: expected an integer, found {max_rank!r}")
            if max_rank < 1 or max_rank > full:
                raise PyfitError(f"rank {max_rank} for the {unfolding} unfolding of a {shape} "
                                 f"tensor ({m} x {n}): expected 1 <= rank <= {full}")
        U, s, Vt = np.linalg.svd(mat, full_matrices=False)
        rank = full if max_rank is None else int(max_rank)
        if rtol is not None:
            rank = min(rank, _rank_for_tolerance(s, _check_rtol(rtol), float(np.linalg.norm(s))))
        out = cls.from_svd(U[:, :rank], s[:rank], Vt[:rank], shape, unfolding)
        out.error_bound = float(np.sqrt(np.sum(s[rank:] ** 2)))
        out.singular_values = s
        return out

    def copy(self) -> "LowRank":
        out = LowRank(self.u.copy(), self.v.copy(), self.shape, self.unfolding)
        out.error_bound = self.error_bound
        out.singular_values = None if self.singular_values is None else self.singular_values.copy()
        return out


# --------------------------------------------------------------------------- tensor train
def _max_tt_ranks(shape: Sequence[int]) -> tuple[int, ...]:
    """Largest meaningful TT ranks: r_k <= min(n_1...n_k, n_{k+1}...n_d)."""
    d = len(shape)
    return tuple(min(int(np.prod(shape[:k])), int(np.prod(shape[k:]))) for k in range(1, d))


def _check_tt_ranks(ranks, shape) -> tuple[int, ...]:
    """Internal ranks (r_1..r_{d-1}) consistent with ``shape``: r_k <= r_{k-1} n_k and
    r_k <= n_{k+1} r_{k+1} (each unfolding's rank cannot exceed its smaller side)."""
    d = len(shape)
    try:
        ranks = tuple(int(r) for r in ranks)
    except (TypeError, ValueError):
        raise PyfitError(f"TT ranks: expected {d - 1} integers, found {ranks!r}") from None
    if len(ranks) != d - 1:
        raise PyfitError(f"TT ranks: expected {d - 1} ranks (r1, ..., r{d - 1}) for a "
                         f"{d}-index tensor, found {len(ranks)}: {ranks}")
    if min(ranks) < 1:
        raise PyfitError(f"TT ranks: expected every rank >= 1, found {ranks}")
    full = (1,) + ranks + (1,)
    for k in range(1, d):
        left = full[k - 1] * shape[k - 1]
        right = shape[k] * full[k + 1]
        if full[k] > min(left, right):
            raise PyfitError(
                f"TT ranks {ranks} are inconsistent with the shape {tuple(shape)}: r{k} = "
                f"{full[k]} but r{k} <= min(r{k - 1} * n{k}, n{k + 1} * r{k + 1}) = "
                f"min({full[k - 1]} * {shape[k - 1]}, {shape[k]} * {full[k + 1]}) = "
                f"{min(left, right)}; the largest consistent ranks are {_max_tt_ranks(shape)}")
    return ranks


class TensorTrain:
    """A tensor train (TT) with cores ``(r_{k-1}, n_k, r_k)``, ``r_0 = r_d = 1``."""

    def __init__(self, cores: Sequence):
        cores = [_as_factor(g, f"TT core {k + 1}") for k, g in enumerate(cores)]
        if len(cores) < 2:
            raise PyfitError(f"TT cores: expected at least 2 cores, found {len(cores)}")
        for k, g in enumerate(cores):
            if g.ndim != 3:
                raise PyfitError(f"TT core {k + 1}: expected a 3-d array (r_{k}, n_{k + 1}, "
                                 f"r_{k + 1}), found shape {g.shape}")
            if min(g.shape) < 1:
                raise PyfitError(f"TT core {k + 1}: expected every dimension >= 1, found "
                                 f"{g.shape}")
        if cores[0].shape[0] != 1:
            raise PyfitError(f"TT core 1: expected shape (1, n1, r1), found {cores[0].shape}")
        if cores[-1].shape[2] != 1:
            raise PyfitError(f"TT core {len(cores)}: expected shape (r{len(cores) - 1}, "
                             f"n{len(cores)}, 1), found {cores[-1].shape}")
        for k in range(len(cores) - 1):
            if cores[k].shape[2] != cores[k + 1].shape[0]:
                raise PyfitError(
                    f"TT cores {k + 1} and {k + 2} do not chain: core {k + 1} has shape "
                    f"{cores[k].shape} (r{k + 1} = {cores[k].shape[2]}) but core {k + 2} has "
                    f"shape {cores[k + 1].shape}; expected its first dimension "
                    f"{cores[k].shape[2]}")
        self.cores = cores
        _check_tt_ranks(self.ranks, self.shape)
        self.error_bound: float | None = None
        self.singular_values: list[np.ndarray] | None = None

    # ------------------------------------------------------------------ sizes
    @property
    def ranks(self) -> tuple[int, ...]:
        """Internal ranks (r_1, ..., r_{d-1})."""
        return tuple(int(g.shape[2]) for g in self.cores[:-1])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(g.shape[1]) for g in self.cores)

    @property
    def n_params(self) -> int:
        return int(sum(g.size for g in self.cores))

    def __repr__(self) -> str:
        return f"TensorTrain(shape={self.shape}, ranks={self.ranks})"

    # ------------------------------------------------------------------ conversions
    def to_dense(self) -> np.ndarray:
        out = self.cores[0].reshape(self.shape[0], -1)
        for g in self.cores[1:]:
            r, n, r_next = g.shape
            out = (out @ g.reshape(r, n * r_next)).reshape(-1, r_next)
        return out.reshape(self.shape)

    def copy(self) -> "TensorTrain":
        out = TensorTrain([g.copy() for g in self.cores])
        out.error_bound = self.error_bound
        out.singular_values = (None if self.singular_values is None
                               else [s.copy() for s in self.singular_values])
        return out

    @staticmethod
    def _rank_caps(max_rank, d: int, shape) -> list[int]:
        if max_rank is None:
            return list(_max_tt_ranks(shape))
        if isinstance(max_rank, (int, np.integer)) and not isinstance(max_rank, bool):
            if max_rank < 1:
                raise PyfitError(f"max_rank: expected >= 1, found {max_rank}")
            return [min(int(max_rank), m) for m in _max_tt_ranks(shape)]
        return list(_check_tt_ranks(max_rank, shape))

    @classmethod
    def from_dense(cls, c, max_rank=None, rtol: float | None = None) -> "TensorTrain":
        """TT-SVD of ``c``.

        ``max_rank``: an int (a cap on every rank, reduced to what the shape allows) or a tuple
        ``(r1, ..., r_{d-1})`` (exact ranks; must be consistent with the shape). ``rtol``: each
        of the ``d-1`` truncations discards at most ``rtol ||c||_F / sqrt(d-1)``, so
        ``||c - TT||_F <= error_bound <= rtol ||c||_F``. ``singular_values[k]`` is the spectrum
        of the k-th unfolding met by the sweep.
        """
        c = _as_factor(c, "c")
        shape = c.shape
        d = c.ndim
        if d < 2 or min(shape) < 1:
            raise PyfitError(f"TT-SVD: expected a tensor with >= 2 indices, found shape {shape}")
        caps = cls._rank_caps(max_rank, d, shape)
        delta = None
        if rtol is not None:
            delta = _check_rtol(rtol) * float(np.linalg.norm(c)) / np.sqrt(d - 1)
        cores, spectra, errors = [], [], []
        rest = c.reshape(1, -1)
        r_prev = 1
        for k in range(d - 1):
            mat = rest.reshape(r_prev * shape[k], -1)
            U, s, Vt = np.linalg.svd(mat, full_matrices=False)
            r = min(caps[k], len(s))
            if delta is not None:
                r = min(r, _rank_for_tolerance(s, delta, 1.0))
            errors.append(float(np.sum(s[r:] ** 2)))
            spectra.append(s)
            if r > len(s):  # pragma: no cover - excluded by _check_tt_ranks
                raise PyfitError(f"TT rank r{k + 1} = {r} exceeds {len(s)}")
            cores.append(U[:, :r].reshape(r_prev, shape[k], r))
            rest = s[:r, None] * Vt[:r]
            r_prev = r
        cores.append(rest.reshape(r_prev, shape[-1], 1))
        out = cls(cores)
        out.error_bound = float(np.sqrt(sum(errors)))
        out.singular_values = spectra
        return out

    def round(self, max_rank=None, rtol: float | None = None) -> "TensorTrain":
        """TT-rounding: a new train with ranks reduced to ``max_rank`` (int cap or tuple) and/or
        relative accuracy ``rtol`` (right-to-left orthogonalisation, then left-to-right
        truncated SVDs); ``error_bound`` as in :meth:`from_dense`."""
        d = len(self.cores)
        caps = self._rank_caps(max_rank, d, self.shape)
        cores = [g.copy() for g in self.cores]
        for k in range(d - 1, 0, -1):  # right-orthogonalise cores d..2
            r, n, r_next = cores[k].shape
            q, rr = np.linalg.qr(cores[k].reshape(r, n * r_next).T)
            cores[k] = q.T.reshape(-1, n, r_next)
            cores[k - 1] = np.tensordot(cores[k - 1], rr.T, axes=(2, 0))
        norm = float(np.linalg.norm(cores[0]))
        delta = None if rtol is None else _check_rtol(rtol) * norm / np.sqrt(d - 1)
        errors, spectra = [], []
        for k in range(d - 1):
            r, n, r_next = cores[k].shape
            U, s, Vt = np.linalg.svd(cores[k].reshape(r * n, r_next), full_matrices=False)
            rank = min(caps[k], len(s))
            if delta is not None:
                rank = min(rank, _rank_for_tolerance(s, delta, 1.0))
            errors.append(float(np.sum(s[rank:] ** 2)))
            spectra.append(s)
            cores[k] = U[:, :rank].reshape(r, n, rank)
            cores[k + 1] = np.tensordot(s[:rank, None] * Vt[:rank], cores[k + 1], axes=(1, 0))
        out = TensorTrain(cores)
        out.error_bound = float(np.sqrt(sum(errors)))
        out.singular_values = spectra
        return out
