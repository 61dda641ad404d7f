"""MLIP .mtp files: reading MLIP-2's own potentials, exact writing, and clear errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from pyfit.errors import FileFormatError, MissingFileError, PyfitError
from pyfit.io.mtp_file import read_mtp, write_mtp
from pyfit.model import MTPModel

FIXTURES = ["cubic_10_pot.mtp", "multi_10_pot.mtp", "multi_02_pot.mtp"]
ARRAYS = ["alpha_index_basic", "alpha_index_times", "alpha_moment_mapping", "radial_coeffs",
          "species_coeffs", "moment_coeffs"]
SCALARS = ["species_count", "min_dist", "max_dist", "radial_basis_size", "radial_funcs_count",
           "alpha_moments_count", "scaling", "radial_basis_type", "potential_name",
           "potential_tag", "version"]


def assert_same_model(a: MTPModel, b: MTPModel):
    for key in SCALARS:
        assert getattr(a, key) == getattr(b, key), key
    for key in ARRAYS:
        x, y = getattr(a, key), getattr(b, key)
        assert (x is None) == (y is None), key
        if x is not None:
            assert x.dtype == y.dtype and x.shape == y.shape, key
            assert x.tobytes() == y.tobytes(), key  # bitwise


# --------------------------------------------------------------------------- good files
def test_read_multi_10(data_dir):
    m = read_mtp(data_dir / "multi_10_pot.mtp")
    assert (m.species_count, m.radial_funcs_count, m.radial_basis_size) == (3, 3, 8)
    assert (m.min_dist, m.max_dist) == (0.5, 5.0)
    assert m.scaling == 1.938066994678150e-01
    assert m.potential_name == "MTP1m" and m.potential_tag == "" and m.version == "1.1.0"
    assert m.alpha_moments_count == 41 and m.alpha_index_basic_count == 25
    assert m.alpha_index_times_count == 42 and m.alpha_scalar_moments == 16
    assert m.radial_coeffs.shape == (3, 3, 3, 8)
    assert m.radial_coeffs[0, 0, 0, 0] == 2.748681003193165e-01
    assert m.radial_coeffs[0, 1, 2, 7] == -1.731612649309214e-02  # block "0-1", line 3
    assert m.alpha_index_times.dtype == np.int64 and list(m.alpha_index_times[14]) == [5, 5, 2, 30]
    assert m.is_trained
    assert m.n_radial_params == 3 * 3 * 3 * 8
    assert m.n_params == 216 + 3 + 16
    m.validate(for_evaluation=True)


@pytest.mark.parametrize("name", FIXTURES)
def test_write_reproduces_mlip_file_byte_for_byte(data_dir, tmp_path, name):
    write_mtp(read_mtp(data_dir / name), tmp_path / name)
    assert (tmp_path / name).read_bytes() == (data_dir / name).read_bytes()


@pytest.mark.parametrize("name", FIXTURES)
def test_round_trip_is_bitwise_exact(data_dir, tmp_path, name):
    m = read_mtp(data_dir / name)
    write_mtp(m, tmp_path / "a.mtp")
    assert_same_model(m, read_mtp(tmp_path / "a.mtp"))


def test_precision_16_is_exact_for_any_double(data_dir, tmp_path):
    rng = np.random.default_rng(0)
    m = read_mtp(data_dir / "multi_02_pot.mtp")
    m.radial_coeffs = rng.normal(size=m.radial_coeffs.shape) * 10.0 ** rng.integers(-8, 8)
    m.moment_coeffs = rng.normal(size=m.moment_coeffs.shape)
    m.scaling = float(rng.random())
    write_mtp(m, tmp_path / "p.mtp", precision=16)
    assert_same_model(m, read_mtp(tmp_path / "p.mtp"))


def test_untrained_template_round_trip(data_dir, tmp_path):
    m = read_mtp(data_dir / "cubic_10_pot.mtp").untrained()
    m.scaling, m.potential_tag = 1.0, None
    assert not m.is_trained and m.radial_coeffs is None
    write_mtp(m, tmp_path / "t.mtp")
    text = (tmp_path / "t.mtp").read_text()
    assert "radial_coeffs" not in text and "moment_coeffs" not in text and "scaling" not in text
    back = read_mtp(tmp_path / "t.mtp")
    assert_same_model(m, back)
    assert back.scaling == 1.0 and back.potential_tag is None
    with pytest.raises(PyfitError, match="untrained"):
        back.validate(for_evaluation=True)


def test_tolerant_spacing_and_multiline_lists(data_dir, tmp_path):
    text = (data_dir / "multi_10_pot.mtp").read_text()
    ref = read_mtp(data_dir / "multi_10_pot.mtp")
    edited = (text.replace("\t", "   ").replace(", ", " ,")
              .replace("alpha_index_basic = {{0, 0, 0, 0}", "alpha_index_basic={ {0,0,0,0}\n")
              .replace("potential_tag = ", "potential_tag = my tag\t")
              .replace("\n", "\r\n") + "\n\n")
    assert edited.count("\r\n") > 50
    (tmp_path / "t.mtp").write_bytes(edited.encode())
    m = read_mtp(tmp_path / "t.mtp")
    assert m.potential_tag == "my tag"
    for key in ARRAYS:
        np.testing.assert_array_equal(getattr(m, key), getattr(ref, key))


def test_optional_keys_absent(data_dir, tmp_path):
    text = (data_dir / "cubic_10_pot.mtp").read_text()
    for line in ("potential_name = MTP1m\n", "scaling = 2.544267124323098e-02\n",
                 "potential_tag = \n"):
        text = text.replace(line, "")
    (tmp_path / "o.mtp").write_text(text)
    m = read_mtp(tmp_path / "o.mtp")
    assert m.scaling == 1.0 and m.potential_name is None and m.potential_tag is None


def test_other_radial_basis_is_read_but_not_evaluated(data_dir, tmp_path):
    text = (data_dir / "cubic_10_pot.mtp").read_text().replace("= RBChebyshev", "= RBShapeev")
    (tmp_path / "s.mtp").write_text(text)
    m = read_mtp(tmp_path / "s.mtp")
    assert m.radial_basis_type == "RBShapeev"
    m.validate()
    with pytest.raises(PyfitError, match="s.mtp: radial_basis_type: RBShapeev is not supported "
                                         "for evaluation; expected RBChebyshev"):
        m.validate(source="s.mtp", for_evaluation=True)


def test_model_validate_names_key(data_dir):
    m = read_mtp(data_dir / "cubic_10_pot.mtp")
    bad = m.copy()
    bad.alpha_moment_mapping[3] = 41
    with pytest.raises(PyfitError, match=r"x: alpha_moment_mapping: entry 3 = 41: expected a "
                                         r"moment index in 0..40"):
        bad.validate(source="x")
    bad = m.copy()
    bad.radial_coeffs = bad.radial_coeffs[:, :, :2]
    with pytest.raises(PyfitError, match=r"radial_coeffs: expected shape \(1, 1, 3, 8\), found "
                                         r"\(1, 1, 2, 8\)"):
        bad.validate()
    bad = m.copy()
    bad.alpha_index_times[0] = [0, 40, 1, 25]  # reads moment 40 before it is complete
    with pytest.raises(PyfitError, match="reads moment 40 before its last contribution"):
        bad.validate()
    assert m.alpha_moment_mapping[3] != 41  # copy() is deep


def test_error_pickles_and_formats():
    e = FileFormatError("pot.mtp", 12, "expected 'radial_funcs_count = <int>', found "
                                       "'radial_funcs_count = x'")
    assert str(e) == ("pot.mtp:12: expected 'radial_funcs_count = <int>', found "
                      "'radial_funcs_count = x'")
    assert isinstance(e, ValueError) and isinstance(e, PyfitError)
    assert str(pickle.loads(pickle.dumps(e))) == str(e)
    assert str(FileFormatError("a.cfg", None, "bad")) == "a.cfg: bad"


# --------------------------------------------------------------------------- bad files
def make(tmp_path, data_dir, old, new, name="multi_10_pot.mtp", count=1):
    text = (data_dir / name).read_text()
    assert old in text, old
    path = tmp_path / "pot.mtp"
    path.write_text(text.replace(old, new, count))
    return path


def line_of(path, fragment):
    for n, line in enumerate(path.read_text().split("\n"), 1):
        if fragment in line:
            return n
    raise AssertionError(fragment)


def assert_error(path, line, *fragments):
    with pytest.raises(FileFormatError) as info:
        read_mtp(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


# Edits of multi_10_pot.mtp: (old text, new text, line of the error, expected fragments).
BAD_EDITS = {
    "missing_mtp_header": ("MTP\nversion", "version", 1, "expected 'MTP' on the first line",
                           "found 'version = 1.1.0'"),
    "unknown_version": ("version = 1.1.0", "version = 2.0.0", 2, "expected 'version = 1.1.0'",
                        "found 'version = 2.0.0'"),
    "unknown_key": ("species_count = 3", "species_count = 3\nspecies_names = Cu", 6,
                    "unknown key 'species_names'"),
    "duplicate_key": ("species_count = 3", "species_count = 3\nspecies_count = 3", 6,
                      "duplicate key 'species_count' (first given on line 5)"),
    "non_numeric_float": ("max_dist = 5.000000000000000e+00", "max_dist = five", 9,
                          "expected 'max_dist = <number>'", "found 'max_dist = five'"),
    "negative_count": ("radial_funcs_count = 3", "radial_funcs_count = -3", 11,
                       "expected radial_funcs_count >= 1, found radial_funcs_count = -3"),
    "min_dist_above_max_dist": ("min_dist = 5.000000000000000e-01", "min_dist = 6.0", 9,
                                "max_dist: expected min_dist < max_dist"),
    "radial_line_short": (", 3.979935624944696e-02}", "}", 14, "radial_coeffs block '0-0' line 1: "
                          "expected 8 coefficients (radial_basis_size), found 7"),
    "radial_blocks_out_of_order": ("\t\t0-1\n", "\t\t1-0\n", 17, "radial_coeffs blocks out of "
                                   "order: expected '0-1', found '1-0'"),
    "radial_block_species_out_of_range": ("\t\t0-2\n", "\t\t0-3\n", 21, "block '0-3': species "
                                          "index >= species_count = 3"),
    "radial_block_without_label": ("\t\t0-0\n", "\t\tzero-zero\n", 13, "expected radial_coeffs "
                                   "block label '0-0', found 'zero-zero'"),
    "nan_radial_coefficient": ("-2.025949966248813e-01", "nan", 14, "coefficient 1: expected a "
                               "finite number, found 'nan'"),
}


@pytest.mark.parametrize("case", list(BAD_EDITS))
def test_bad_file(tmp_path, data_dir, case):
    old, new, line, *fragments = BAD_EDITS[case]
    assert_error(make(tmp_path, data_dir, old, new), line, *fragments)


def test_missing_required_key(tmp_path, data_dir):
    path = make(tmp_path, data_dir, "alpha_scalar_moments = 16\n", "")
    assert_error(path, line_of(path, "moment_coeffs"),
                 "missing required key 'alpha_scalar_moments'")


def test_non_numeric_value(tmp_path, data_dir):
    path = make(tmp_path, data_dir, "radial_funcs_count = 3", "radial_funcs_count = x")
    expected = "expected 'radial_funcs_count = <int>', found 'radial_funcs_count = x'"
    assert assert_error(path, 11, expected) == f"{path}:11: {expected}"


def test_basic_count_mismatch(tmp_path, data_dir):
    path = make(tmp_path, data_dir, "alpha_index_basic_count = 25", "alpha_index_basic_count = 26")
    assert_error(path, line_of(path, "alpha_index_basic = "), "alpha_index_basic has 25 entries",
                 "alpha_index_basic_count = 26")


def test_times_count_mismatch(tmp_path, data_dir):
    path = make(tmp_path, data_dir, "{0, 35, 1, 40}}", "{0, 35, 1, 40}, {0, 35, 1, 40}}")
    assert_error(path, line_of(path, "alpha_index_times = "), "alpha_index_times has 43 entries",
                 "alpha_index_times_count = 42")


def test_times_entry_with_three_numbers(tmp_path, data_dir):
    path = make(tmp_path, data_dir, "{1, 1, 1, 26}", "{1, 1, 26}")
    assert_error(path, line_of(path, "alpha_index_times = "), "alpha_index_times: entry 1",
                 "expected {i, j, k, out} (4 integers)", "'{1, 1, 26}'")


def test_radial_block_with_missing_line(tmp_path, data_dir):
    text = (data_dir / "multi_10_pot.mtp").read_text().split("\n")
    del text[15]  # third line of block 0-0
    path = tmp_path / "pot.mtp"
    path.write_text("\n".join(text))
    assert_error(path, 16, "radial_coeffs block '0-0': expected 3 lines",
                 "found only 2 before '0-1'")


def test_radial_block_with_extra_line(tmp_path, data_dir):
    text = (data_dir / "multi_10_pot.mtp").read_text().split("\n")
    text.insert(16, text[15])
    path = tmp_path / "pot.mtp"
    path.write_text("\n".join(text))
    assert_error(path, 17, "radial_coeffs block '0-0' has more than 3 coefficient lines")


def test_missing_radial_block(tmp_path, data_dir):
    text = (data_dir / "multi_10_pot.mtp").read_text().split("\n")
    start = text.index("\t\t0-2")
    del text[start:start + 4]
    path = tmp_path / "pot.mtp"
    path.write_text("\n".join(text))
    assert_error(path, start + 1, "expected '0-2', found '1-0'")


def test_inf_moment_coefficient(tmp_path, data_dir):
    path = make(tmp_path, data_dir, "moment_coeffs = {", "moment_coeffs = {-inf, ")
    assert_error(path, line_of(path, "moment_coeffs"), "moment_coeffs: coefficient 0",
                 "expected a finite number, found '-inf'")


def test_non_numeric_species_coefficient(tmp_path, data_dir):
    path = make(tmp_path, data_dir, "species_coeffs = {", "species_coeffs = {abc, ")
    assert_error(path, line_of(path, "species_coeffs"), "species_coeffs: coefficient 0: "
                                                        "expected a number, found 'abc'")


def test_truncated_inside_radial_coeffs(tmp_path, data_dir):
    text = (data_dir / "multi_10_pot.mtp").read_text().split("\n")
    path = tmp_path / "pot.mtp"
    path.write_text("\n".join(text[:30]) + "\n")
    assert_error(path, 30, "file ends too early (truncated?)", "radial_coeffs block")


def test_truncated_after_times(tmp_path, data_dir):
    text = (data_dir / "multi_10_pot.mtp").read_text().split("\n")
    n = next(i for i, t in enumerate(text) if t.startswith("alpha_index_times ="))
    path = tmp_path / "pot.mtp"
    path.write_text("\n".join(text[: n + 1]))
    assert_error(path, n + 1, "missing required key 'alpha_scalar_moments'", "truncated?")


def test_truncated_inside_list(tmp_path, data_dir):
    text = (data_dir / "multi_10_pot.mtp").read_text()
    cut = text.index("{2, 2, 1, 26}")
    path = tmp_path / "pot.mtp"
    path.write_text(text[:cut])
    assert_error(path, line_of(path, "alpha_index_times ="), "file ends too early",
                 "the rest of the list 'alpha_index_times'")


def test_unbalanced_braces(tmp_path, data_dir):
    path = make(tmp_path, data_dir, "{2, 0, 0, 0}}", "{2, 0, 0, 0}")
    assert_error(path, line_of(path, "alpha_index_basic ="), "alpha_index_basic: unbalanced "
                 "braces: expected '}' to close the list before the next key "
                 "'alpha_index_times_count = 42'")


def test_mapping_length_mismatch(tmp_path, data_dir):
    path = make(tmp_path, data_dir, "alpha_moment_mapping = {0, ", "alpha_moment_mapping = {")
    assert_error(path, line_of(path, "alpha_moment_mapping"), "alpha_moment_mapping has 15 "
                 "entries but alpha_scalar_moments = 16")


def test_moment_coeffs_length_mismatch(tmp_path, data_dir):
    path = make(tmp_path, data_dir, "moment_coeffs = {", "moment_coeffs = {1.0, ")
    assert_error(path, line_of(path, "moment_coeffs"), "moment_coeffs has 17 coefficients but "
                 "alpha_scalar_moments = 16")


def test_species_coeffs_length_mismatch(tmp_path, data_dir):
    path = make(tmp_path, data_dir, "species_coeffs = {", "species_coeffs = {1.0, ")
    assert_error(path, line_of(path, "species_coeffs"), "species_coeffs has 4 coefficients but "
                 "species_count = 3")


def test_basic_moment_with_mu_out_of_range(tmp_path, data_dir):
    path = make(tmp_path, data_dir, "{2, 0, 0, 0}}", "{3, 0, 0, 0}}")
    assert_error(path, line_of(path, "alpha_index_basic ="), "alpha_index_basic: entry 24",
                 "expected mu in 0..2 (radial_funcs_count = 3), found mu = 3")


def test_times_output_out_of_range(tmp_path, data_dir):
    path = make(tmp_path, data_dir, "{0, 35, 1, 40}", "{0, 35, 1, 41}")
    assert_error(path, line_of(path, "alpha_index_times ="), "alpha_index_times: entry 41",
                 "expected out in 25..40")


def test_mapping_index_out_of_range(tmp_path, data_dir):
    path = make(tmp_path, data_dir, "38, 39, 40}", "38, 39, 41}")
    assert_error(path, line_of(path, "alpha_moment_mapping"), "alpha_moment_mapping: entry 15 = 41")


def test_moments_count_larger_than_defined(tmp_path, data_dir):
    path = make(tmp_path, data_dir, "alpha_moments_count = 41",
                "alpha_moments_count = 999999999999")
    assert_error(path, line_of(path, "alpha_moments_count"), "alpha_moments_count: expected at "
                 "most 67 moments (basic + contractions), found alpha_moments_count = 999999999999")


def test_empty_file(tmp_path):
    path = tmp_path / "pot.mtp"
    path.write_text("")
    assert_error(path, 1, "expected 'MTP' on the first line", "empty file")


def test_missing_file(tmp_path):
    with pytest.raises(MissingFileError, match="nope.mtp: no such file") as info:
        read_mtp(tmp_path / "nope.mtp")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, PyfitError)


def test_writer_refuses_invalid_model(data_dir, tmp_path):
    m = read_mtp(data_dir / "cubic_10_pot.mtp")
    m.species_coeffs = np.array([np.nan])
    with pytest.raises(PyfitError, match=r"out.mtp: species_coeffs: expected finite numbers"):
        write_mtp(m, tmp_path / "out.mtp")
    assert not (tmp_path / "out.mtp").exists()
