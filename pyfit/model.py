"""`MTPModel`: the parameters of a Moment Tensor Potential (pure data, no evaluation).

The layout follows MLIP-2's ``.mtp`` files (format 1.1.0):

* ``alpha_index_basic`` rows ``{mu, a, b, c}``: basic moment
  ``sum_j f_mu(r_ij) x^a y^b z^c / r^(a+b+c)``;
* ``alpha_index_times`` rows ``{i, j, k, out}``: ``moment[out] += k * moment[i] * moment[j]``,
  applied in order;
* ``alpha_moment_mapping``: the moments whose linear combination (``moment_coeffs``) is the energy;
* ``radial_coeffs[z_i, z_j, mu, b]``: block ``"z_i-z_j"`` of the file, line ``mu``, entry ``b``.
"""

from __future__ import annotations

import copy as _copy
from dataclasses import dataclass, fields

import numpy as np

from pyfit.errors import PyfitError

__all__ = ["MTPModel", "RADIAL_BASIS_TYPES", "EVALUATED_RADIAL_BASIS_TYPES"]

#: Radial basis names MLIP writes; all can be read, only the evaluated ones can be used.
RADIAL_BASIS_TYPES = ("RBChebyshev", "RBChebyshev_repuls", "RBShapeev", "RBTaylor")
EVALUATED_RADIAL_BASIS_TYPES = ("RBChebyshev",)

_INDEX_FIELDS = ("alpha_index_basic", "alpha_index_times", "alpha_moment_mapping")
_COEFF_FIELDS = ("radial_coeffs", "species_coeffs", "moment_coeffs")


@dataclass(eq=False)
class MTPModel:
    species_count: int
    min_dist: float
    max_dist: float
    radial_basis_size: int  # R
    radial_funcs_count: int  # K
    alpha_moments_count: int
    alpha_index_basic: np.ndarray  # (n_basic, 4) int64 {mu, a, b, c}
    alpha_index_times: np.ndarray  # (n_times, 4) int64 {i, j, k, out}
    alpha_moment_mapping: np.ndarray  # (n_scalar,) int64
    radial_coeffs: np.ndarray | None = None  # (C, C, K, R) float64
    species_coeffs: np.ndarray | None = None  # (C,)
    moment_coeffs: np.ndarray | None = None  # (n_scalar,)
    scaling: float = 1.0
    radial_basis_type: str = "RBChebyshev"
    potential_name: str | None = None
    potential_tag: str | None = None
    version: str = "1.1.0"

    def __post_init__(self):
        for name in _INDEX_FIELDS:
            try:
                value = np.asarray(getattr(self, name))
            except (TypeError, ValueError):
                raise PyfitError(f"{name}: expected a rectangular array of integers") from None
            if value.size == 0:
                value = value.reshape((0, 4) if name != "alpha_moment_mapping" else (0,))
            integral = value.dtype.kind == "f" and np.all(value == np.round(value))
            if value.dtype.kind in "iub" or integral:
                value = value.astype(np.int64)
            setattr(self, name, value)
        for name in _COEFF_FIELDS:
            value = getattr(self, name)
            if value is not None:
                try:
                    setattr(self, name, np.asarray(value, dtype=np.float64))
                except (TypeError, ValueError):
                    raise PyfitError(f"{name}: expected an array of numbers, found "
                                     f"{type(value).__name__}") from None

    # ------------------------------------------------------------------ sizes
    @property
    def alpha_scalar_moments(self) -> int:
        return int(len(self.alpha_moment_mapping))

    @property
    def alpha_index_basic_count(self) -> int:
        return int(len(self.alpha_index_basic))

    @property
    def alpha_index_times_count(self) -> int:
        return int(len(self.alpha_index_times))

    @property
    def is_trained(self) -> bool:
        return all(getattr(self, n) is not None for n in _COEFF_FIELDS)

    @property
    def n_radial_params(self) -> int:
        C, K, R = self.species_count, self.radial_funcs_count, self.radial_basis_size
        return int(C * C * K * R)

    @property
    def n_params(self) -> int:
        """Radial + species + moment (linear) coefficients."""
        return self.n_radial_params + int(self.species_count) + self.alpha_scalar_moments

    # ------------------------------------------------------------------ copies
    def copy(self) -> "MTPModel":
        return _copy.deepcopy(self)

    def untrained(self) -> "MTPModel":
        """A copy without radial_coeffs / species_coeffs / moment_coeffs (a template)."""
        kwargs = {f.name: _copy.deepcopy(getattr(self, f.name)) for f in fields(self)}
        kwargs.update(radial_coeffs=None, species_coeffs=None, moment_coeffs=None)
        return MTPModel(**kwargs)

    # ------------------------------------------------------------------ validation
    def validate(self, source: str = "<model>", for_evaluation: bool = False) -> None:
        """Checks every size, index and value; raises :class:`PyfitError` naming the key.

        With ``for_evaluation=True`` the model must also be trained and use a radial basis
        that pyfit evaluates (RBChebyshev).
        """
        problem = self.find_problem(for_evaluation=for_evaluation)
        if problem is not None:
            raise PyfitError(f"{source}: {problem[0]}: {problem[1]}")

    def find_problem(self, for_evaluation: bool = False) -> tuple[str, str] | None:
        """The first problem as ``(key, message)``, or ``None`` if the model is valid."""
        for key, message in _problems(self, for_evaluation):
            return key, message
        return None


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _is_real(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and \
        not isinstance(x, (bool, np.bool_))


def _problems(m: MTPModel, for_evaluation: bool):
    """Yields ``(key, message)`` for each problem, most basic first."""
    for key, low in (("species_count", 1), ("radial_basis_size", 2), ("radial_funcs_count", 1),
                     ("alpha_moments_count", 1)):
        v = getattr(m, key)
        if not _is_int(v) or v < low:
            yield key, f"expected an integer >= {low}, found {v!r}"
            return
    for key in ("min_dist", "max_dist", "scaling"):
        v = getattr(m, key)
        if not _is_real(v) or not np.isfinite(v):
            yield key, f"expected a finite number, found {v!r}"
            return
    if not m.min_dist >= 0:
        yield "min_dist", f"expected min_dist >= 0, found {m.min_dist!r}"
    if not m.min_dist < m.max_dist:
        yield "max_dist", f"expected min_dist < max_dist, found min_dist = {m.min_dist!r}, " \
                          f"max_dist = {m.max_dist!r}"
    if m.radial_basis_type not in RADIAL_BASIS_TYPES:
        yield "radial_basis_type", (f"expected one of {', '.join(RADIAL_BASIS_TYPES)}, "
                                    f"found {m.radial_basis_type!r}")
    elif for_evaluation and m.radial_basis_type not in EVALUATED_RADIAL_BASIS_TYPES:
        yield "radial_basis_type", (f"{m.radial_basis_type} is not supported for evaluation; "
                                    f"expected {' or '.join(EVALUATED_RADIAL_BASIS_TYPES)}")
    C, K, R, M = m.species_count, m.radial_funcs_count, m.radial_basis_size, m.alpha_moments_count
    basic, times, mapping = m.alpha_index_basic, m.alpha_index_times, m.alpha_moment_mapping
    for key, arr, shape in (("alpha_index_basic", basic, "(n_basic, 4)"),
                            ("alpha_index_times", times, "(n_times, 4)"),
                            ("alpha_moment_mapping", mapping, "(n_scalar,)")):
        ndim = 1 if key == "alpha_moment_mapping" else 2
        if arr.ndim != ndim or (ndim == 2 and arr.shape[1] != 4):
            yield key, f"expected an integer array of shape {shape}, found shape {arr.shape}"
            return
        if arr.dtype.kind not in "iu":
            yield key, f"expected integers, found dtype {arr.dtype}"
            return
    nb = len(basic)
    if nb == 0:
        yield "alpha_index_basic", "expected at least one basic moment, found none"
        return
    if nb > M:
        yield "alpha_index_basic", (f"{nb} basic moments but alpha_moments_count = {M}; expected "
                                    f"alpha_moments_count >= alpha_index_basic_count")
        return
    if M > nb + len(times):
        yield "alpha_moments_count", (f"expected at most {nb + len(times)} moments (basic + "
                                      f"contractions), found alpha_moments_count = {M}")
        return
    bad = np.nonzero((basic[:, 0] < 0) | (basic[:, 0] >= K))[0]
    if bad.size:
        e = bad[0]
        yield "alpha_index_basic", (f"entry {e} {_fmt(basic[e])}: expected mu in 0..{K - 1} "
                                    f"(radial_funcs_count = {K}), found mu = {basic[e, 0]}")
        return
    bad = np.nonzero((basic[:, 1:] < 0).any(axis=1))[0]
    if bad.size:
        yield "alpha_index_basic", (f"entry {bad[0]} {_fmt(basic[bad[0]])}: expected powers "
                                    f"a, b, c >= 0")
        return
    if len(times):
        t = times
        bad = np.nonzero((t[:, :2] < 0).any(axis=1) | (t[:, :2] >= M).any(axis=1))[0]
        if bad.size:
            yield "alpha_index_times", (f"entry {bad[0]} {_fmt(t[bad[0]])}: expected moment "
                                        f"indices i, j in 0..{M - 1} (alpha_moments_count = {M})")
            return
        bad = np.nonzero((t[:, 3] < nb) | (t[:, 3] >= M))[0]
        if bad.size:
            yield "alpha_index_times", (f"entry {bad[0]} {_fmt(t[bad[0]])}: expected out in "
                                        f"{nb}..{M - 1} (basic moments are 0..{nb - 1})")
            return
        # a moment may only be read once every contribution to it has been added
        last_write = np.full(M, -1, dtype=np.int64)
        last_write[t[:, 3]] = np.arange(len(t))  # later entries overwrite earlier ones
        order = np.arange(len(t))
        for col in (0, 1):
            bad = np.nonzero(last_write[t[:, col]] >= order)[0]
            if bad.size:
                e = bad[0]
                yield "alpha_index_times", (
                    f"entry {e} {_fmt(t[e])} reads moment {t[e, col]} before its last "
                    f"contribution (entry {last_write[t[e, col]]}); expected contractions "
                    f"ordered so that every input is complete")
                return
    computed = np.zeros(M, dtype=bool)
    computed[:nb] = True
    if len(times):
        computed[times[:, 3]] = True
    if len(mapping) == 0:
        yield "alpha_moment_mapping", "expected at least one scalar moment, found none"
        return
    bad = np.nonzero((mapping < 0) | (mapping >= M))[0]
    if bad.size:
        yield "alpha_moment_mapping", (f"entry {bad[0]} = {mapping[bad[0]]}: expected a moment "
                                       f"index in 0..{M - 1} (alpha_moments_count = {M})")
        return
    used = np.concatenate([mapping, times[:, 0], times[:, 1]]) if len(times) else mapping
    missing = used[~computed[used]]
    if missing.size:
        yield "alpha_index_times", (f"moment {missing[0]} is used but never computed (no "
                                    f"alpha_index_times entry has out = {missing[0]})")
        return
    expect = {"radial_coeffs": (C, C, K, R), "species_coeffs": (C,),
              "moment_coeffs": (len(mapping),)}
    for key, shape in expect.items():
        arr = getattr(m, key)
        if arr is None:
            if for_evaluation:
                yield key, "missing: the potential is untrained (no coefficients)"
                return
            continue
        if arr.shape != shape:
            yield key, f"expected shape {shape}, found {arr.shape}"
            return
        if not np.all(np.isfinite(arr)):
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
            yield key, f"expected finite numbers, found {arr[where]} at index {where}"
            return


def _fmt(row) -> str:
    return "{" + ", ".join(str(int(x)) for x in row) + "}"
