"""LowRank and TensorTrain factors: the paper's parameter counts, exact reconstruction,
truncation error bounds, unfoldings, rounding and bad input."""

import numpy as np
import pytest

from pyfit.errors import PyfitError
from pyfit.lowrank.factors import LowRank, TensorTrain, fold, unfold, unfolding_shape


def low_rank_tensor(rng, shape, rank, unfolding="pairs", noise=0.0):
    m, n = unfolding_shape(shape, unfolding)
    mat = rng.normal(size=(m, rank)) @ rng.normal(size=(rank, n)) + noise * rng.normal(size=(m, n))
    return fold(mat, shape, unfolding)


# --------------------------------------------------------------------------- parameter counts
@pytest.mark.parametrize("C, K, R, r, base, mf, rmf", [
    (4, 4, 8, 8, 512, 384, 8 * (16 + 32 - 8)),
    (4, 4, 8, 6, 512, 6 * 48, 252),          # the paper's R-MF r = 6 -> 252 (16 x 32)
    (4, 5, 8, 9, 640, 504, 9 * (16 + 40 - 9)),  # glycine: 640 -> 504 at r = 9
    (4, 5, 8, 11, 640, 11 * 56, 495),        # glycine R-MF r = 11 -> 495 (16 x 40)
])
def test_matrix_parameter_counts(C, K, R, r, base, mf, rmf):
    rng = np.random.default_rng(0)
    lr = LowRank(rng.normal(size=(C * C, r)), rng.normal(size=(K * R, r)), (C, C, K, R))
    assert C * C * K * R == base
    assert lr.rank == r
    assert lr.n_params == mf
    assert lr.n_params_riemannian == rmf


def test_tt_parameter_count_paper():
    rng = np.random.default_rng(1)
    tt = TensorTrain.from_dense(rng.normal(size=(4, 4, 5, 8)), max_rank=(4, 10, 5))
    assert tt.ranks == (4, 10, 5)
    assert tt.shape == (4, 4, 5, 8)
    assert tt.n_params == 466 == 4 * 4 + 4 * 4 * 10 + 10 * 5 * 5 + 5 * 8
    assert [g.shape for g in tt.cores] == [(1, 4, 4), (4, 4, 10), (10, 5, 5), (5, 8, 1)]


# --------------------------------------------------------------------------- unfoldings
def test_unfolding_index_conventions():
    C, K, R = 3, 2, 5
    c = np.arange(C * C * K * R, dtype=float).reshape(C, C, K, R)
    p = unfold(c, "pairs")
    q = unfold(c, "pairs_funcs")
    assert p.shape == (9, 10) and q.shape == (18, 5)
    for zi, zj, mu, b in [(0, 0, 0, 0), (1, 2, 1, 3), (2, 1, 0, 4), (2, 2, 1, 4)]:
        assert p[zi * C + zj, mu * R + b] == c[zi, zj, mu, b]
        assert q[(zi * C + zj) * K + mu, b] == c[zi, zj, mu, b]
    np.testing.assert_array_equal(fold(p, c.shape, "pairs"), c)
    np.testing.assert_array_equal(fold(q, c.shape, "pairs_funcs"), c)


@pytest.mark.parametrize("unfolding", ["pairs", "pairs_funcs"])
def test_exact_at_full_and_true_rank(unfolding):
    rng = np.random.default_rng(2)
    shape = (2, 2, 3, 8)
    c = rng.normal(size=shape)
    full = LowRank.from_dense(c, unfolding=unfolding)
    assert full.rank == min(unfolding_shape(shape, unfolding))
    np.testing.assert_allclose(full.to_dense(), c, atol=1e-12)
    assert full.error_bound < 1e-12
    c3 = low_rank_tensor(rng, shape, 3, unfolding)
    lr = LowRank.from_dense(c3, max_rank=3, unfolding=unfolding)
    np.testing.assert_allclose(lr.to_dense(), c3, atol=1e-11)
    assert lr.unfolding == unfolding and lr.shape == shape


def test_one_species_pairs_funcs_is_K_by_R():
    rng = np.random.default_rng(3)
    c = rng.normal(size=(1, 1, 4, 8))
    lr = LowRank.from_dense(c, max_rank=2, unfolding="pairs_funcs")
    assert lr.matrix_shape == (4, 8)
    np.testing.assert_allclose(lr.matrix(), np.linalg.svd(c[0, 0])[0][:, :2]
                               @ np.diag(np.linalg.svd(c[0, 0])[1][:2])
                               @ np.linalg.svd(c[0, 0])[2][:2], atol=1e-12)


# --------------------------------------------------------------------------- truncation
def test_matrix_truncation_error_is_exact_and_optimal():
    rng = np.random.default_rng(4)
    c = low_rank_tensor(rng, (4, 4, 4, 8), 6, noise=0.05)
    s = np.linalg.svd(unfold(c), compute_uv=False)
    for r in (1, 3, 6, 10):
        lr = LowRank.from_dense(c, max_rank=r)
        err = np.linalg.norm(c - lr.to_dense())
        assert lr.error_bound == pytest.approx(err, rel=1e-10)
        assert err == pytest.approx(np.sqrt(np.sum(s[r:] ** 2)), rel=1e-10)
        np.testing.assert_allclose(lr.singular_values, s, rtol=1e-12)
        # balanced factors
        np.testing.assert_allclose(np.linalg.norm(lr.u, axis=0), np.linalg.norm(lr.v, axis=0),
                                   rtol=1e-10)


def test_matrix_rtol_picks_smallest_rank():
    rng = np.random.default_rng(5)
    c = low_rank_tensor(rng, (4, 4, 4, 8), 5, noise=1e-3)
    norm = np.linalg.norm(c)
    lr = LowRank.from_dense(c, rtol=1e-2)
    assert lr.rank == 5
    assert np.linalg.norm(c - lr.to_dense()) <= 1e-2 * norm
    assert LowRank.from_dense(c, max_rank=4).error_bound > 1e-2 * norm
    assert LowRank.from_dense(c, max_rank=3, rtol=1e-2).rank == 3  # max_rank caps


def test_svd_of_factors():
    rng = np.random.default_rng(6)
    lr = LowRank(rng.normal(size=(9, 3)), rng.normal(size=(12, 3)), (3, 3, 3, 4))
    u, s, vt = lr.svd()
    assert u.shape == (9, 3) and s.shape == (3,) and vt.shape == (3, 12)
    np.testing.assert_allclose((u * s) @ vt, lr.matrix(), atol=1e-12)
    np.testing.assert_allclose(u.T @ u, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(vt @ vt.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(s, np.linalg.svd(lr.matrix(), compute_uv=False)[:3], rtol=1e-12)
    assert np.all(np.diff(s) <= 0)
    back = LowRank.from_svd(u, s, vt, lr.shape)
    np.testing.assert_allclose(back.to_dense(), lr.to_dense(), atol=1e-12)


def test_tt_exact_and_error_bound():
    rng = np.random.default_rng(7)
    c = rng.normal(size=(3, 3, 4, 8))
    full = TensorTrain.from_dense(c)
    assert full.ranks == (3, 9, 8)
    np.testing.assert_allclose(full.to_dense(), c, atol=1e-12)
    for ranks in [(2, 4, 3), (3, 5, 5), (1, 1, 1)]:
        tt = TensorTrain.from_dense(c, max_rank=ranks)
        assert tt.ranks == ranks
        err = np.linalg.norm(c - tt.to_dense())
        assert err <= tt.error_bound * (1 + 1e-12)
        # the TT-SVD bound: the error is at most sqrt(d-1) times the best per-unfolding error
        assert tt.error_bound < np.linalg.norm(c)
    cores = [rng.normal(size=s) for s in [(1, 3, 2), (2, 3, 3), (3, 4, 2), (2, 8, 1)]]
    c2 = TensorTrain(cores).to_dense()
    c2 += 1e-3 * np.linalg.norm(c2) / np.sqrt(c2.size) * rng.normal(size=c2.shape)
    tt = TensorTrain.from_dense(c2, rtol=0.01)
    assert tt.ranks == (2, 3, 2)
    assert np.linalg.norm(c2 - tt.to_dense()) <= tt.error_bound * (1 + 1e-12) <= 0.01 * np.linalg.norm(c2)
    assert TensorTrain.from_dense(c2, max_rank=(2, 2, 2)).error_bound > 0.01 * np.linalg.norm(c2)
    assert TensorTrain.from_dense(c, max_rank=2).ranks == (2, 2, 2)


def test_tt_of_low_rank_tensor_is_exact():
    rng = np.random.default_rng(8)
    cores = [rng.normal(size=s) for s in [(1, 4, 2), (2, 4, 3), (3, 5, 2), (2, 8, 1)]]
    c = TensorTrain(cores).to_dense()
    tt = TensorTrain.from_dense(c, max_rank=(2, 3, 2))
    np.testing.assert_allclose(tt.to_dense(), c, atol=1e-10)
    assert tt.error_bound < 1e-10
    # explicit contraction (the file format's formula)
    i, j, mu, b = 3, 1, 4, 7
    value = cores[0][0, i] @ cores[1][:, j] @ cores[2][:, mu] @ cores[3][:, b, 0]
    assert c[i, j, mu, b] == pytest.approx(value, rel=1e-12)


def test_tt_round():
    rng = np.random.default_rng(9)
    c = rng.normal(size=(3, 3, 4, 8))
    tt = TensorTrain.from_dense(c)
    for ranks in [(2, 4, 3), (3, 6, 5)]:
        rounded = tt.round(max_rank=ranks)
        assert rounded is not tt and rounded.ranks == ranks
        direct = TensorTrain.from_dense(c, max_rank=ranks)
        err = np.linalg.norm(c - rounded.to_dense())
        assert err <= rounded.error_bound * (1 + 1e-12)
        # rounding an exact train is TT-SVD: same error
        assert err == pytest.approx(np.linalg.norm(c - direct.to_dense()), rel=1e-8)
    cores = [rng.normal(size=s) for s in [(1, 3, 2), (2, 3, 3), (3, 4, 2), (2, 8, 1)]]
    c2 = TensorTrain(cores).to_dense()
    c2 += 1e-3 * np.linalg.norm(c2) / np.sqrt(c2.size) * rng.normal(size=c2.shape)
    rounded = TensorTrain.from_dense(c2).round(rtol=0.01)
    assert rounded.ranks == (2, 3, 2)
    assert np.linalg.norm(c2 - rounded.to_dense()) <= rounded.error_bound * (1 + 1e-12) \
        <= 0.01 * np.linalg.norm(c2)
    # rounding a train with redundant ranks to its true ranks is exact
    low = TensorTrain.from_dense(c, max_rank=(2, 3, 2))
    padded = TensorTrain([low.cores[0], low.cores[1] @ np.eye(3, 5),
                          np.tensordot(np.eye(5, 3), low.cores[2], axes=(1, 0)), low.cores[3]])
    assert padded.ranks == (2, 5, 2)
    back = padded.round(max_rank=(2, 3, 2))
    np.testing.assert_allclose(back.to_dense(), low.to_dense(), atol=1e-10)
    assert padded.ranks == (2, 5, 2)  # unchanged


# --------------------------------------------------------------------------- bad input
def test_rank_larger_than_matrix_allows():
    rng = np.random.default_rng(10)
    c = rng.normal(size=(2, 2, 3, 8))
    with pytest.raises(PyfitError, match=r"rank 5 .*\(4 x 24\): expected 1 <= rank <= 4"):
        LowRank.from_dense(c, max_rank=5)
    with pytest.raises(PyfitError, match=r"expected 1 <= rank <= 8"):
        LowRank.from_dense(c, max_rank=9, unfolding="pairs_funcs")
    with pytest.raises(PyfitError, match="expected 1 <= rank"):
        LowRank.from_dense(c, max_rank=0)
    with pytest.raises(PyfitError, match="max_rank: expected an integer"):
        LowRank.from_dense(c, max_rank=2.5)
    with pytest.raises(PyfitError, match=r"rank 5 is larger than a 4 x 6 matrix allows: "
                                         r"expected rank <= 4"):
        LowRank(rng.normal(size=(4, 5)), rng.normal(size=(6, 5)))


def test_lowrank_shape_errors():
    rng = np.random.default_rng(11)
    with pytest.raises(PyfitError, match=r"expected u with 16 rows and v with 32 rows, found "
                                         r"u \(9, 2\) and v \(32, 2\)"):
        LowRank(rng.normal(size=(9, 2)), rng.normal(size=(32, 2)), (4, 4, 4, 8))
    with pytest.raises(PyfitError, match="same number of columns"):
        LowRank(rng.normal(size=(16, 2)), rng.normal(size=(32, 3)), (4, 4, 4, 8))
    with pytest.raises(PyfitError, match="expected 2-d arrays"):
        LowRank(rng.normal(size=16), rng.normal(size=(32, 1)))
    with pytest.raises(PyfitError, match="unfolding: expected one of pairs, pairs_funcs"):
        LowRank(rng.normal(size=(16, 2)), rng.normal(size=(32, 2)), (4, 4, 4, 8), "rows")
    with pytest.raises(PyfitError, match=r"expected \(C, C, K, R\)"):
        LowRank(rng.normal(size=(12, 2)), rng.normal(size=(32, 2)), (3, 4, 4, 8))
    with pytest.raises(PyfitError, match="u: expected finite numbers, found nan"):
        LowRank(np.full((4, 1), np.nan), np.ones((3, 1)))
    with pytest.raises(PyfitError, match="no tensor shape"):
        LowRank(np.ones((4, 1)), np.ones((3, 1))).to_dense()
    with pytest.raises(PyfitError, match=r"expected a matrix of shape \(16, 32\), found \(16, 31\)"):
        fold(np.zeros((16, 31)), (4, 4, 4, 8))


def test_tt_rank_errors():
    rng = np.random.default_rng(12)
    c = rng.normal(size=(4, 4, 5, 8))
    with pytest.raises(PyfitError, match=r"TT ranks \(5, 10, 5\) are inconsistent with the shape "
                                         r"\(4, 4, 5, 8\): r1 = 5 but r1 <= .* = 4"):
        TensorTrain.from_dense(c, max_rank=(5, 10, 5))
    with pytest.raises(PyfitError, match=r"r3 = 9 but r3 <= min\(r2 \* n3, n4 \* r4\) = "
                                         r"min\(10 \* 5, 8 \* 1\) = 8"):
        TensorTrain.from_dense(c, max_rank=(4, 10, 9))
    with pytest.raises(PyfitError, match=r"r2 = 17 .* = 16"):
        TensorTrain.from_dense(c, max_rank=(4, 17, 5))
    with pytest.raises(PyfitError, match=r"expected 3 ranks .* found 2"):
        TensorTrain.from_dense(c, max_rank=(4, 10))
    with pytest.raises(PyfitError, match="expected every rank >= 1"):
        TensorTrain.from_dense(c, max_rank=(4, 0, 5))
    with pytest.raises(PyfitError, match="max_rank: expected >= 1"):
        TensorTrain.from_dense(c, max_rank=0)


def test_tt_core_errors():
    rng = np.random.default_rng(13)
    good = [rng.normal(size=s) for s in [(1, 4, 2), (2, 4, 3), (3, 5, 2), (2, 8, 1)]]
    with pytest.raises(PyfitError, match=r"TT cores 2 and 3 do not chain: core 2 has shape "
                                         r"\(2, 4, 3\) .* expected its first dimension 3"):
        TensorTrain([good[0], good[1], rng.normal(size=(4, 5, 2)), good[3]])
    with pytest.raises(PyfitError, match=r"TT core 1: expected shape \(1, n1, r1\), found "
                                         r"\(2, 4, 2\)"):
        TensorTrain([rng.normal(size=(2, 4, 2))] + good[1:])
    with pytest.raises(PyfitError, match=r"TT core 4: expected shape \(r3, n4, 1\)"):
        TensorTrain(good[:3] + [rng.normal(size=(2, 8, 2))])
    with pytest.raises(PyfitError, match=r"TT core 2: expected a 3-d array"):
        TensorTrain([good[0], rng.normal(size=(2, 4)), good[2], good[3]])
    # consistent chaining but a rank the shape cannot support: r1 = 5 > n1 = 4
    with pytest.raises(PyfitError, match="inconsistent with the shape"):
        TensorTrain([rng.normal(size=(1, 4, 5)), rng.normal(size=(5, 4, 3)), good[2], good[3]])
