"""The factored potential file (MTP-LOWRANK, docs/lowrank-format.md): exact round trips, the
documented layout, evaluation equal to the dense potential, read_potential dispatch, and
file:line errors for every malformed input."""

import numpy as np
import pytest

from pyfit import MTP
from pyfit.errors import FileFormatError, PyfitError
from pyfit.io.lowrank_file import file_kind, read_lowrank, read_potential, write_lowrank
from pyfit.io.mtp_file import read_mtp
from pyfit.lowrank.factors import LowRank, TensorTrain
from pyfit.lowrank.potential import CompressedMTP
from test_evaluator import random_model, random_structure


@pytest.fixture(scope="module")
def model():
    return random_model(8, 3, np.random.default_rng(21))  # C = 3, K = 2, R = 8


def mf_factors(model, rank=3, unfolding="pairs"):
    return LowRank.from_dense(model.radial_coeffs, max_rank=rank, unfolding=unfolding)


def tt_factors(model, ranks=(3, 4, 2)):
    return TensorTrain.from_dense(model.radial_coeffs, max_rank=ranks)


@pytest.mark.parametrize("kind", ["mf-pairs", "mf-pairs_funcs", "tt"])
def test_round_trip_is_exact(tmp_path, model, kind):
    factors = tt_factors(model) if kind == "tt" else mf_factors(model, 3, kind[3:])
    path = tmp_path / "pot.mtplr"
    write_lowrank(path, model, factors, species_names=["Nb", "Mo", "W"])
    data = read_lowrank(path)
    assert data.species_names == ("Nb", "Mo", "W")
    assert type(data.factors) is type(factors)
    if kind == "tt":
        assert data.factors.ranks == (3, 4, 2)
        for a, b in zip(data.factors.cores, factors.cores):
            np.testing.assert_array_equal(a, b)
    else:
        assert data.factors.unfolding == kind[3:]
        np.testing.assert_array_equal(data.factors.u, factors.u)
        np.testing.assert_array_equal(data.factors.v, factors.v)
    np.testing.assert_array_equal(data.model.radial_coeffs, factors.to_dense())
    np.testing.assert_array_equal(data.model.moment_coeffs, model.moment_coeffs)
    np.testing.assert_array_equal(data.model.species_coeffs, model.species_coeffs)
    np.testing.assert_array_equal(data.model.alpha_index_times, model.alpha_index_times)
    assert data.model.scaling == model.scaling
    assert data.model.min_dist == model.min_dist and data.model.max_dist == model.max_dist
    # writing again gives the same bytes
    again = tmp_path / "again.mtplr"
    write_lowrank(again, data.model, data.factors, species_names=data.species_names)
    assert again.read_bytes() == path.read_bytes()


def test_layout_follows_the_spec(tmp_path, model):
    path = tmp_path / "pot.mtplr"
    f = tt_factors(model)
    write_lowrank(path, model, f)
    lines = path.read_text().split("\n")
    assert lines[:4] == ["MTP-LOWRANK", "version = 1", f"scaling = {model.scaling:.16e}",
                         "species_count = 3"]
    i = lines.index("\tradial_form = tt")
    assert lines[i + 1] == "\ttt_ranks = {3, 4, 2}"
    assert lines[i + 2] == "\ttt_core_1 = {1, 3, 3}"
    # line a*n_k + i holds core[a, i, :]
    j = lines.index("\ttt_core_2 = {3, 3, 4}")
    row = lines[j + 1 + 2 * 3 + 1].strip()
    assert row == "{" + ", ".join(f"{x:.16e}" for x in f.cores[1][2, 1, :]) + "}"
    assert lines[i - 4:i] == ["\tmin_dist = 1.5000000000000000e+00",
                              "\tmax_dist = 4.2000000000000002e+00",
                              "\tradial_basis_size = 8", "\tradial_funcs_count = 2"]
    k = [n for n, ln in enumerate(lines) if ln.startswith("alpha_moments_count")][0]
    assert lines[k + 7].startswith("species_coeffs = {")
    path2 = tmp_path / "mf.mtplr"
    g = mf_factors(model, 2)
    write_lowrank(path2, model, g)
    text = path2.read_text()
    assert "\tradial_form = mf\n\tunfolding = pairs\n\tmf_rank = 2\n\tmf_u\n\t\t{" in text
    lines = text.split("\n")
    u0 = lines.index("\tmf_u")
    v0 = lines.index("\tmf_v")
    assert v0 - u0 - 1 == 9  # C*C rows
    assert lines[v0 + 1 + 16].startswith("alpha_moments_count")  # K*R = 16 rows of v


def test_compressed_potential_evaluates_like_dense(tmp_path, model):
    rng = np.random.default_rng(3)
    factors = mf_factors(model, 2)
    pot = CompressedMTP(model, factors, species=["Nb", "Mo", "W"], method="rmf")
    assert pot.n_radial_params == 2 * (9 + 16 - 2)
    assert pot.n_radial_params_dense == 3 * 3 * 2 * 8
    path = tmp_path / "pot.mtplr"
    pot.save(path)
    loaded = read_potential(path)
    assert isinstance(loaded, CompressedMTP) and loaded.species == ("Nb", "Mo", "W")
    dense = model.copy()
    dense.radial_coeffs = factors.to_dense()
    ref = MTP(dense)
    for kind in ("periodic", "cluster"):
        s = random_structure(rng, 3, kind)
        a, b = loaded.evaluate(s), ref.evaluate(s)
        assert a.energy == b.energy
        np.testing.assert_array_equal(a.forces, b.forces)
    dense_path = tmp_path / "dense.mtp"
    loaded.save_dense(dense_path)
    assert file_kind(dense_path) == "mtp"
    np.testing.assert_array_equal(read_mtp(dense_path).radial_coeffs, dense.radial_coeffs)
    assert type(read_potential(dense_path)) is MTP


def test_read_potential_dispatch_errors(tmp_path):
    bad = tmp_path / "x.txt"
    bad.write_text("\nHELLO\n")
    with pytest.raises(FileFormatError, match=r"x.txt:2: expected 'MTP' \(MLIP .mtp\) or "
                                              r"'MTP-LOWRANK'"):
        read_potential(bad)
    empty = tmp_path / "e.txt"
    empty.write_text("")
    with pytest.raises(FileFormatError, match="empty file"):
        read_potential(empty)


def test_write_errors(tmp_path, model):
    f = LowRank.from_dense(np.zeros((2, 2, 2, 8)) + 1.0, max_rank=1)
    with pytest.raises(PyfitError, match=r"factors describe a radial tensor of shape "
                                         r"\(2, 2, 2, 8\); the model expects .* \(3, 3, 2, 8\)"):
        write_lowrank(tmp_path / "a", model, f)
    with pytest.raises(PyfitError, match="species_names: expected 3 distinct element symbols"):
        write_lowrank(tmp_path / "a", model, mf_factors(model), species_names=["Nb", "Mo"])
    with pytest.raises(PyfitError, match="species_names: expected 3 distinct element symbols"):
        write_lowrank(tmp_path / "a", model, mf_factors(model), species_names=["Nb", "Mo", "Nb"])
    with pytest.raises(PyfitError, match="expected an MTPModel"):
        write_lowrank(tmp_path / "a", object(), mf_factors(model))
    untrained = model.untrained()
    with pytest.raises(PyfitError, match="species_coeffs: missing"):
        write_lowrank(tmp_path / "a", untrained, mf_factors(model))
    with pytest.raises(PyfitError, match="method: expected one of tf for TensorTrain"):
        CompressedMTP(model, tt_factors(model), method="mf")


# --------------------------------------------------------------------------- malformed files
@pytest.fixture(scope="module")
def texts(tmp_path_factory, model):
    d = tmp_path_factory.mktemp("lr")
    out = {}
    for name, f in (("mf", mf_factors(model, 2)), ("tt", tt_factors(model, (2, 3, 2)))):
        p = d / f"{name}.mtplr"
        write_lowrank(p, model, f, species_names=["Nb", "Mo", "W"])
        out[name] = p.read_text()
    return out


def edit(text, old, new, count=1):
    assert old in text, old
    return text.replace(old, new, count)


def line_of(text, needle, offset=0):
    """1-based number of the first line whose key (before '=') is ``needle``, plus offset."""
    return [n for n, ln in enumerate(text.split("\n"), 1)
            if ln.strip().partition("=")[0].strip() == needle][0] + offset


CASES = [
    # (form, old, new, line-needle (after edit) or None, message regex)
    ("mf", "MTP-LOWRANK", "MTP", 1, "expected 'MTP-LOWRANK' on the first line"),
    ("mf", "version = 1", "version = 2", 2, "unsupported format: expected 'version = 1'"),
    ("mf", "\tmf_rank = 2", "\tmf_rank = 10", "mf_rank", r"mf_rank = 10 is larger than the "
     r"9 x 16 pairs unfolding allows: expected 1 <= mf_rank <= 9"),
    ("mf", "\tmf_rank = 2", "\tmf_rank = 0", "mf_rank", "expected mf_rank >= 1"),
    ("mf", "\tmf_rank = 2", "\tmf_rank = 3", ("mf_u", 1), r"mf_u line 1: expected 3 numbers"),
    ("mf", "\tunfolding = pairs", "\tunfolding = pairs_funcs", "mf_v",
     r"mf_u: expected 18 lines of \{2 numbers\} .* found only 9 before 'mf_v'"),
    ("mf", "\tunfolding = pairs", "\tunfolding = rows", "unfolding",
     "expected 'unfolding = pairs | pairs_funcs'"),
    ("mf", "\tradial_form = mf", "\tradial_form = cp", "radial_form",
     "expected 'radial_form = mf' or 'radial_form = tt'"),
    ("mf", "\tradial_form = mf", "\tradial_form = tt", "unfolding",
     "'unfolding' belongs to radial_form = mf, but this file has radial_form = tt"),
    ("mf", "species_names = {Nb, Mo, W}", "species_names = {Nb, Mo}", "species_names",
     "species_names has 2 names; expected species_count = 3"),
    ("mf", "species_names = {Nb, Mo, W}", "species_names = {Nb, 2, W}", "species_names",
     "entry 1: expected an element symbol, found '2'"),
    ("mf", "species_names = {Nb, Mo, W}", "species_names = {Nb, Mo, Nb}", "species_names",
     "species_names: 'Nb' appears twice; expected distinct names"),
    ("mf", "\tradial_funcs_count = 2", "\tradial_funcs_count = 3", "alpha_moments_count",
     r"mf_v: expected 24 lines of \{2 numbers\} .* found only 16 before 'alpha_moments_count"),
    ("mf", "\tmf_rank = 2\n", "", "mf_u", "mf_u must come after mf_rank"),
    ("mf", "\tradial_form = mf\n\tunfolding = pairs\n\tmf_rank = 2",
     "\tradial_form = mf\n\tmf_rank = 2\n\tunfolding = pairs", "unfolding",
     "unfolding must come before mf_rank"),
    ("mf", "\tradial_form = mf\n\tunfolding = pairs\n\tmf_rank = 2",
     "\tmf_rank = 2\n\tradial_form = mf\n\tunfolding = pairs", "mf_rank",
     "mf_rank must come after radial_form"),
    ("mf", "radial_basis_type = RBChebyshev", "radial_basis_type = RBShapeev",
     "radial_basis_type", "expected 'radial_basis_type = RBChebyshev'"),
    ("mf", "moment_coeffs = {", "moment_coeffs = {1.0, ", "moment_coeffs",
     "moment_coeffs has 10 coefficients but alpha_scalar_moments = 9"),
    ("mf", "species_coeffs = {", "species_coeffs = {nan, ", "species_coeffs",
     "expected a finite number, found 'nan'"),
    ("mf", "\tmin_dist = ", "\tcutoff = 3\n\tmin_dist = ", "cutoff", "unknown key 'cutoff'"),
    ("mf", "scaling = ", "species_count = 3\nscaling = ", 5, "duplicate key "
     "'species_count' \\(first given on line 3\\)"),
    ("tt", "\ttt_ranks = {2, 3, 2}", "\ttt_ranks = {2, 7, 2}", "tt_ranks",
     r"TT ranks \(2, 7, 2\) are inconsistent with the shape \(3, 3, 2, 8\): r2 = 7 .* = 4"),
    ("tt", "\ttt_ranks = {2, 3, 2}", "\ttt_ranks = {2, 3}", "tt_ranks", "expected 3 ranks"),
    ("tt", "\ttt_core_2 = {2, 3, 3}", "\ttt_core_2 = {2, 3, 4}", "tt_core_2",
     r"tt_core_2: expected shape \{2, 3, 3\} .* found \{2, 3, 4\}"),
    ("tt", "\ttt_ranks = {2, 3, 2}", "\ttt_ranks = {2, 2, 2}", "tt_core_2",
     r"tt_core_2: expected shape \{2, 3, 2\}"),
    ("tt", "\ttt_core_1 = {1, 3, 2}", "\ttt_core_9 = {1, 3, 2}", "tt_core_9",
     "unknown key 'tt_core_9'"),
    ("tt", "\ttt_core_3 = {3, 2, 2}", "\ttt_core_4 = {3, 2, 2}", "tt_core_4",
     "expected tt_core_3 next, found tt_core_4"),
    ("mf", "\tradial_form = mf\n", "\tradial_form = mf\n\tfit_method = tf\n", "fit_method",
     r"expected 'fit_method = mf \| rmf \| mfra' for radial_form = mf \(line \d+\), found "
     r"'fit_method = tf'"),
    ("tt", "\tradial_form = tt\n", "\tradial_form = tt\n\tfit_method = rmf\n", "fit_method",
     r"expected 'fit_method = tf' for radial_form = tt"),
    ("mf", "\tradial_form = mf\n", "\tfit_method = rmf\n\tradial_form = mf\n", "fit_method",
     "fit_method must come after radial_form"),
]


@pytest.mark.parametrize("form, old, new, needle, message", CASES)
def test_malformed(tmp_path, texts, form, old, new, needle, message):
    text = edit(texts[form], old, new)
    path = tmp_path / "bad.mtplr"
    path.write_text(text)
    with pytest.raises(FileFormatError, match=message) as info:
        read_lowrank(path)
    err = info.value
    assert err.path == str(path)
    if needle is not None:
        if isinstance(needle, int):
            line = needle
        elif isinstance(needle, tuple):
            line = line_of(text, *needle)
        else:
            line = line_of(text, needle)
        assert err.line == line, str(err)
    assert str(err).startswith(f"{path}:")


def test_malformed_rows(tmp_path, texts):
    # a factor row with a bad number, an extra row, a truncated file, a missing core
    text = texts["tt"]
    lines = text.split("\n")
    i = lines.index("\ttt_core_3 = {3, 2, 2}")
    bad = lines.copy()
    bad[i + 2] = "\t\t{1.0, abc}"
    p = tmp_path / "b1"
    p.write_text("\n".join(bad))
    with pytest.raises(FileFormatError, match=r"tt_core_3 line 2: number 1: expected a number, "
                                              r"found 'abc'") as info:
        read_lowrank(p)
    assert info.value.line == i + 3
    extra = lines[:i + 7] + ["\t\t{1.0, 2.0}"] + lines[i + 7:]
    p.write_text("\n".join(extra))
    with pytest.raises(FileFormatError, match="tt_core_3: more than 6 lines") as info:
        read_lowrank(p)
    assert info.value.line == i + 8
    p.write_text("\n".join(lines[:i + 3]))
    with pytest.raises(FileFormatError, match="file ends too early"):
        read_lowrank(p)
    cut = [ln for n, ln in enumerate(lines) if not (n >= lines.index("\ttt_core_4 = {2, 8, 1}")
                                                    and ln.startswith("\t"))]
    p.write_text("\n".join(cut))
    with pytest.raises(FileFormatError, match="missing 'tt_core_4'"):
        read_lowrank(p)
    mf = texts["mf"].split("\n")
    j = mf.index("\tmf_v")
    p.write_text("\n".join(mf[:j] + ["\t\t{1.0, 2.0}"] + mf[j:]))
    with pytest.raises(FileFormatError, match="mf_u: more than 9 lines") as info:
        read_lowrank(p)
    assert info.value.line == j + 1
    k = mf.index("alpha_moments_count = 18")
    p.write_text("\n".join(mf[:j] + mf[k:]))
    with pytest.raises(FileFormatError, match=r"missing 'mf_v' \(required by radial_form = mf"):
        read_lowrank(p)
    p.write_text("\n".join(mf[:j + 1] + ["\t\t{1.0, inf}"] + mf[j + 2:]))
    with pytest.raises(FileFormatError, match="expected a finite number, found 'inf'"):
        read_lowrank(p)


@pytest.mark.parametrize("method", ["mf", "rmf", "mfra", "tf", None])
def test_fit_method_is_recorded(tmp_path, model, method):
    """The optional fit_method key: written from CompressedMTP.method, read back (also by
    pyfit info), absent when unknown; R-MF counts the manifold dimension."""
    from pyfit.lowrank.commands import lowrank_info

    c = model.radial_coeffs
    if method == "tf":
        f = TensorTrain.from_dense(c, max_rank=(2, 3, 2))
    else:
        f = LowRank.from_dense(c, max_rank=2)
    pot = CompressedMTP(model, f, species=["Nb", "Mo", "W"], method=method)
    path = tmp_path / "p.mtplr"
    pot.save(path)
    text = path.read_text()
    assert ("fit_method" in text) == (method is not None)
    back = CompressedMTP.load(path)
    assert back.method == method and read_lowrank(path).fit_method == method
    assert back.n_radial_params == pot.n_radial_params
    if method == "rmf":
        assert back.n_radial_params == f.n_params_riemannian < f.n_params
    names = {"mf": "MF", "rmf": "R-MF", "mfra": "MFRA", "tf": "TF", None: "not recorded"}
    assert lowrank_info(path)[1]["fit method"] == names[method]
    with pytest.raises(PyfitError, match=r"fit_method: expected .* found 'svd'"):
        write_lowrank(tmp_path / "q.mtplr", model, f, fit_method="svd")


def test_mtp_load_reads_factored_files(tmp_path, model):
    """pyfit.MTP.load (and so MTPCalculator(path)) takes an MTP-LOWRANK file too and returns a
    CompressedMTP with the factors; CompressedMTP.load still refuses an MLIP .mtp file."""
    from ase import Atoms

    from pyfit import MTPCalculator

    pot = CompressedMTP(model, mf_factors(model), species=["Nb", "Mo", "W"], method="mf")
    path = tmp_path / "p.mtplr"
    pot.save(path)
    back = MTP.load(path)
    assert isinstance(back, CompressedMTP) and back.method == "mf"
    np.testing.assert_array_equal(back.factors.to_dense(), pot.factors.to_dense())
    s = random_structure(np.random.default_rng(5), 3)
    assert back.evaluate(s).energy == pot.evaluate(s).energy
    atoms = Atoms([("Nb", "Mo", "W")[t] for t in s.types], positions=s.positions, cell=s.cell,
                  pbc=True)
    atoms.calc = MTPCalculator(path)
    assert atoms.get_potential_energy() == pytest.approx(pot.evaluate(s).energy, abs=1e-10)
    plain = tmp_path / "p.mtp"
    MTP(model, species=["Nb", "Mo", "W"]).save(plain)
    assert type(MTP.load(plain)) is MTP
    with pytest.raises(FileFormatError, match="MTP-LOWRANK"):
        CompressedMTP.load(plain)
