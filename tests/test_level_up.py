"""Starting a fit from a lower-level potential (pyfit.fitting.level_up): the embedded
higher-level model computes exactly the lower-level potential."""

from pathlib import Path

import numpy as np
import pytest

from pyfit.errors import PyfitError
from pyfit.fitting.level_up import embed_lower_level, fold_scaling
from pyfit.fitting.trainer import make_template
from pyfit.io.dataset import read_configurations
from pyfit.io.mtp_file import read_mtp
from pyfit.potential import MTP

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def low():
    # MLIP-2-trained level 10, 3 species, scaling != 1 (tests/data/README.md)
    return read_mtp(DATA / "multi_10_pot.mtp")


def test_fold_scaling_keeps_the_potential(low):
    assert low.scaling != 1.0
    folded = fold_scaling(low)
    assert folded.scaling == 1.0 and low.scaling != 1.0  # a copy
    c = read_configurations(DATA / "multi_training_20.cfg")[3]
    a, b = MTP(low).evaluate(c), MTP(folded).evaluate(c)
    assert b.energy == pytest.approx(a.energy, rel=1e-13)
    np.testing.assert_allclose(b.forces, a.forces, rtol=0, atol=1e-12)


@pytest.mark.parametrize("level", [10, 16])
def test_embedding_reproduces_the_lower_level(low, level):
    tpl = make_template(level, low.species_count, low.min_dist, low.max_dist,
                        low.radial_basis_size)
    high = embed_lower_level(low, tpl, np.random.default_rng(5))
    assert high.potential_name == f"MTP{level}"
    assert len(high.moment_coeffs) == len(tpl.alpha_moment_mapping)
    assert np.count_nonzero(high.moment_coeffs) == np.count_nonzero(low.moment_coeffs)
    k = low.radial_funcs_count
    np.testing.assert_array_equal(high.radial_coeffs[:, :, :k], low.radial_coeffs * low.scaling)
    if level == 16:  # K = 4 vs 3: the new radial function is random, not zero
        assert tpl.radial_funcs_count == 4 and np.all(high.radial_coeffs[:, :, k:] != 0)
    for c in read_configurations(DATA / "multi_training_20.cfg")[:4]:
        a, b = MTP(low).evaluate(c), MTP(high).evaluate(c)
        assert b.energy == pytest.approx(a.energy, rel=1e-11)
        np.testing.assert_allclose(b.forces, a.forces, rtol=0, atol=1e-9)
        np.testing.assert_allclose(b.plus_stress, a.plus_stress, rtol=0, atol=1e-8)


def test_embedding_errors(low):
    tpl = make_template(16, low.species_count, low.min_dist, low.max_dist + 1.0,
                        low.radial_basis_size)
    with pytest.raises(PyfitError, match=r"pot.mtp has max_dist = 5.0, the \[model\] settings "
                       r"give 6.0"):
        embed_lower_level(low, tpl, np.random.default_rng(0), source="pot.mtp")
    tpl = make_template(8, low.species_count, low.min_dist, low.max_dist, low.radial_basis_size)
    with pytest.raises(PyfitError, match="must be of the same or a lower level"):
        embed_lower_level(low, tpl, np.random.default_rng(0))
    untrained = tpl.copy()
    with pytest.raises(PyfitError, match="untrained"):
        embed_lower_level(untrained, tpl, np.random.default_rng(0))
