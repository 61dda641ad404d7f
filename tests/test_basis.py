"""Tests of pyfit.basis: counts against MLIP, structure of the contraction list, numerics."""

from __future__ import annotations

import re
from math import factorial
from pathlib import Path

import numpy as np
import pytest

from pyfit.basis import ALLOWED_LEVELS, Basis, generate_basis, radial_funcs_count_for_level

DATA = Path(__file__).resolve().parent / "data"

# level: (K, basic, scalars) of MLIP's untrained templates (basic only known for L >= 10)
MLIP_COUNTS = {
    2: (1, None, 1), 4: (1, None, 2), 6: (2, 5, 5), 8: (2, 11, 9), 10: (3, 25, 16),
    12: (3, 46, 29), 14: (4, 81, 52), 16: (4, 130, 92), 18: (5, 201, 163), 20: (5, 295, 288),
    22: (6, 421, 500), 24: (6, 581, 864), 26: (6, 706, 1464), 28: (6, 866, 2445),
}
LEVELS = sorted(MLIP_COUNTS)


# ---------------------------------------------------------------------------------------------
# a tiny independent evaluator
# ---------------------------------------------------------------------------------------------

def random_environments(rng, n_env, n_neigh, K):
    """Random unit vectors u (n_env, n_neigh, 3) and radial values f (n_env, n_neigh, K)."""
    u = rng.normal(size=(n_env, n_neigh, 3))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    f = rng.uniform(-1.0, 1.0, size=(n_env, n_neigh, K))
    return u, f


def evaluate(basic, times, mapping, n_moments, u, f):
    """Scalar moments (n_env, n_scalar) of a basis given as MLIP arrays."""
    mom = np.zeros((n_moments, u.shape[0]))
    for m, (mu, a, b, c) in enumerate(basic):
        mom[m] = np.sum(f[..., mu] * u[..., 0] ** a * u[..., 1] ** b * u[..., 2] ** c, axis=-1)
    for i, j, k, out in times:
        mom[out] += k * mom[i] * mom[j]
    return mom[np.asarray(mapping)].T


def evaluate_basis(basis: Basis, u, f):
    return evaluate(basis.alpha_index_basic, basis.alpha_index_times, basis.alpha_moment_mapping,
                    basis.alpha_moments_count, u, f)


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def numerical_rank(a, rtol=1e-9):
    a = a / np.linalg.norm(a, axis=0)  # the scalars differ wildly in scale
    s = np.linalg.svd(a, compute_uv=False)
    return int(np.sum(s > rtol * s[0]))


def read_mlip_basis(path):
    text = Path(path).read_text()

    def ints(name):
        body = re.search(rf"^{name}\s*=\s*(\{{.*\}})\s*$", text, re.M).group(1)
        return np.array([int(x) for x in re.findall(r"-?\d+", body)], dtype=np.int64)

    n_moments = int(re.search(r"^alpha_moments_count\s*=\s*(\d+)", text, re.M).group(1))
    K = int(re.search(r"radial_funcs_count\s*=\s*(\d+)", text).group(1))
    return (ints("alpha_index_basic").reshape(-1, 4), ints("alpha_index_times").reshape(-1, 4),
            ints("alpha_moment_mapping"), n_moments, K)


def test_level_28_generated_once_then_cached():
    """Runs first so that its (uncached) level-28 basis is reused by the later tests. (No time
    bound here: a timed unit test fails on a loaded machine; speed belongs in bench/.)"""
    generate_basis.cache_clear()
    basis = generate_basis(28)
    assert generate_basis(28) is basis


def test_deterministic():
    a, b = generate_basis(16), generate_basis.__wrapped__(16)
    for name in ("alpha_index_basic", "alpha_index_times", "alpha_moment_mapping"):
        assert np.array_equal(getattr(a, name), getattr(b, name))


# ---------------------------------------------------------------------------------------------
# counts
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("level", LEVELS)
def test_counts_match_mlip(level):
    K, n_basic, n_scalar = MLIP_COUNTS[level]
    basis = generate_basis(level)
    assert basis.level == level
    assert basis.radial_funcs_count == K == radial_funcs_count_for_level(level)
    assert basis.alpha_scalar_moments == n_scalar
    if n_basic is not None:
        assert basis.alpha_index_basic_count == n_basic
    assert basis.alpha_index_times_count == len(basis.alpha_index_times)


def test_small_levels_explicit():
    # L2: M00 only; L4: M00 and M00^2; L6 adds M10, M00^3 and M01.M01
    b2, b4, b6 = generate_basis(2), generate_basis(4), generate_basis(6)
    assert b2.alpha_index_basic.tolist() == [[0, 0, 0, 0]]
    assert b2.alpha_index_times.size == 0 and b2.alpha_moment_mapping.tolist() == [0]
    assert b4.alpha_index_times.tolist() == [[0, 0, 1, 1]]
    assert b4.alpha_moment_mapping.tolist() == [0, 1]
    assert b6.alpha_index_basic.tolist() == [[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                                             [1, 0, 0, 0]]
    assert b6.alpha_moments_count == 8


# ---------------------------------------------------------------------------------------------
# structure
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("level", LEVELS)
def test_structure(level):
    basis = generate_basis(level)
    basic, times, mapping = basis.alpha_index_basic, basis.alpha_index_times, basis.alpha_moment_mapping
    n_basic, n_mom = basis.alpha_index_basic_count, basis.alpha_moments_count
    for arr, ncol in ((basic, 4), (times, 4)):
        assert arr.dtype == np.int64 and arr.ndim == 2 and arr.shape[1] == ncol
        assert not arr.flags.writeable
    # basic moments: valid, unique, nu <= 10, mu < K, every (mu, nu) complete
    assert len({tuple(r) for r in basic.tolist()}) == n_basic
    assert basic.min() >= 0 and basic[:, 0].max() < basis.radial_funcs_count
    nus = basic[:, 1:].sum(axis=1)
    assert nus.max() <= 10
    for mu, nu in {(int(m), int(n)) for m, n in zip(basic[:, 0], nus)}:
        assert np.sum((basic[:, 0] == mu) & (nus == nu)) == (nu + 1) * (nu + 2) // 2
    # times: read-before-write order, integer k > 0
    if len(times):
        i, j, k, out = times.T
        assert np.all(k >= 1)
        assert np.all(out >= n_basic) and np.all(out < n_mom)
        assert np.all(i >= 0) and np.all(j >= 0)
        assert np.all(i < out) and np.all(j < out)
        assert np.all(np.diff(out) >= 0)  # outs in contiguous increasing blocks
        assert np.array_equal(np.unique(out), np.arange(n_basic, n_mom))  # every moment written
        assert len({(a, b, c) for a, b, c in zip(i.tolist(), j.tolist(), out.tolist())}) == len(times)
    else:
        assert n_mom == n_basic
    # scalars: distinct, in range, basic scalars (nu = 0) first
    assert len(set(mapping.tolist())) == len(mapping)
    assert mapping.min() >= 0 and mapping.max() < n_mom
    n_basic_scalars = int(np.sum(nus == 0))
    assert np.all(nus[mapping[:n_basic_scalars]] == 0)
    assert np.all(mapping[n_basic_scalars:] >= n_basic)


# ---------------------------------------------------------------------------------------------
# numerics
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("level", LEVELS)
def test_rotation_invariance(level):
    rng = np.random.default_rng(level)
    basis = generate_basis(level)
    u, f = random_environments(rng, 3, 7, basis.radial_funcs_count)
    s = evaluate_basis(basis, u, f)
    s_rot = evaluate_basis(basis, u @ random_rotation(rng).T, f)
    scale = np.abs(s).max(axis=0)
    assert np.all(scale > 0)
    assert np.all(np.abs(s_rot - s) <= 1e-10 * scale)


def test_rotation_check_can_fail():
    """The invariance test detects a wrong coefficient (guards the check itself)."""
    rng = np.random.default_rng(1)
    basis = generate_basis(10)
    times = basis.alpha_index_times.copy()
    row = np.flatnonzero(times[:, 2] > 1)[0]  # e.g. a 2 in M02:M02
    times[row, 2] += 1
    u, f = random_environments(rng, 3, 7, 3)
    args = (basis.alpha_index_basic, times, basis.alpha_moment_mapping, basis.alpha_moments_count)
    s, s_rot = evaluate(*args, u, f), evaluate(*args, u @ random_rotation(rng).T, f)
    assert np.abs(s_rot - s).max() > 1e-6 * np.abs(s).max()


@pytest.mark.parametrize("level", [6, 8, 10, 12, 14])
def test_linear_independence(level):
    rng = np.random.default_rng(100 + level)
    basis = generate_basis(level)
    n = basis.alpha_scalar_moments
    u, f = random_environments(rng, 3 * n, 8, basis.radial_funcs_count)
    assert numerical_rank(evaluate_basis(basis, u, f)) == n


def test_same_span_as_mlip_level_10():
    basic, times, mapping, n_moments, K = read_mlip_basis(DATA / "cubic_10_pot.mtp")
    assert K == 3 and len(mapping) == 16
    mine = generate_basis(10)
    rng = np.random.default_rng(10)
    u, f = random_environments(rng, 60, 8, K)
    a = evaluate_basis(mine, u, f)
    b = evaluate(basic, times, mapping, n_moments, u, f)
    assert numerical_rank(a) == numerical_rank(b) == numerical_rank(np.hstack([a, b])) == 16
    # MLIP's first scalars (M00, M10, M20, M00^2, M01.M01, M02:M02) appear verbatim
    for col in range(6):
        assert np.any(np.all(np.isclose(a, b[:, [col]], rtol=1e-12, atol=0), axis=0))


def test_known_scalars():
    basis = generate_basis(10)
    rng = np.random.default_rng(5)
    u, f = random_environments(rng, 4, 6, 3)
    s = evaluate_basis(basis, u, f)

    def moment(mu, nu):  # full tensor M_{mu,nu}, shape (n_env,) + (3,) * nu
        t = f[..., mu]
        for _ in range(nu):
            t = t[..., None] * u.reshape(u.shape[:2] + (1,) * (t.ndim - 2) + (3,))
        return t.sum(axis=1)

    m00, m10, m20 = moment(0, 0), moment(1, 0), moment(2, 0)
    m01, m02, m03, m11 = moment(0, 1), moment(0, 2), moment(0, 3), moment(1, 1)
    expected = {
        "M00": m00, "M10": m10, "M20": m20, "M00^2": m00 ** 2,
        "M01.M01": np.einsum("ei,ei->e", m01, m01),
        "M02:M02": np.einsum("eij,eij->e", m02, m02),
        "M03.M03": np.einsum("eijk,eijk->e", m03, m03),
        "M01.M11": np.einsum("ei,ei->e", m01, m11),
        "M01.M02.M01": np.einsum("ei,eij,ej->e", m01, m02, m01),
        "M00^4": m00 ** 4,
        "M00^2 M01.M01": m00 ** 2 * np.einsum("ei,ei->e", m01, m01),
    }
    for name, value in expected.items():
        match = np.all(np.isclose(s, value[:, None], rtol=1e-12, atol=0), axis=0)
        assert match.sum() == 1, name
    assert np.allclose(s[:, :3], np.stack([m00, m10, m20], axis=1), rtol=1e-14)  # basic first


def test_multinomial_coefficients_in_m02_contraction():
    """M02:M02 = sum over components with multiplicities 1, 2, 2, 1, 2, 1."""
    basis = generate_basis(8)
    basic = [tuple(r) for r in basis.alpha_index_basic.tolist()]
    rows = {}
    for i, j, k, out in basis.alpha_index_times.tolist():
        rows.setdefault(out, []).append((basic[i] if i < len(basic) else None,
                                         basic[j] if j < len(basic) else None, k))
    found = False
    for terms in rows.values():
        if all(a is not None and a == b and a[0] == 0 and sum(a[1:]) == 2 for a, b, _ in terms):
            assert len(terms) == 6
            for a, _, k in terms:
                assert k == factorial(2) // (factorial(a[1]) * factorial(a[2]) * factorial(a[3]))
            found = True
    assert found


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("level", [7, 30, "16", 0, -2, 16.0, True, None, 1])
def test_bad_level(level):
    with pytest.raises(ValueError) as err:
        generate_basis(level)
    msg = str(err.value)
    assert repr(level) in msg and "2" in msg and "28" in msg and "even" in msg
    with pytest.raises(ValueError):
        radial_funcs_count_for_level(level)


def test_allowed_levels():
    assert ALLOWED_LEVELS == tuple(range(2, 29, 2))
    assert generate_basis(np.int64(12)).alpha_scalar_moments == 29


def test_bad_options():
    with pytest.raises(ValueError, match="max_factors"):
        generate_basis(10, max_factors=0)
    with pytest.raises(ValueError, match="max_rank"):
        generate_basis(10, max_rank=-1)
