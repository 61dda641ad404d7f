"""MLIP .cfg files, Configuration <-> ASE, geometry checks and format dispatch."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from pyfit.configuration import Configuration, check_geometry, check_species, complete_cell
from pyfit.errors import FileFormatError, PyfitError
from pyfit.io.cfg import read_cfg, write_cfg

FIXTURES = ["multi_training_20.cfg", "multi_10_out_20.cfg", "cubic_10_out_20.cfg"]


# --------------------------------------------------------------------------- good files
def test_read_multi_out(data_dir):
    configs = read_cfg(data_dir / "multi_10_out_20.cfg")
    assert len(configs) == 20
    c = configs[0]
    assert c.n_atoms == 27 and c.pbc == (True, True, True)
    assert c.source == f"{data_dir / 'multi_10_out_20.cfg'}:1"
    assert configs[1].source.endswith(":44")
    np.testing.assert_array_equal(c.cell, [[0, 5.415, 5.415], [5.415, 0, 5.415],
                                           [5.415, 5.415, 0]])
    assert c.types.dtype == np.int64 and list(c.types[:4]) == [0, 1, 2, 2]
    np.testing.assert_array_equal(c.positions[1], [1.805, 1.805, 0.0])
    np.testing.assert_array_equal(c.forces[0], [-1.215224, -0.005951, -1.215224])
    assert c.energy == 7.361913230306
    # PlusStress: xx yy zz yz xz xy = 80.64915 76.44863 80.64915 -0.37300 -4.87818 -0.37300
    np.testing.assert_array_equal(c.plus_stress, [[80.64915, -0.373, -4.87818],
                                                  [-0.373, 76.44863, -0.373],
                                                  [-4.87818, -0.373, 80.64915]])
    assert c.features == {"ID": "0", "MV_grade": "1.000000"}
    assert list(c.extra) == ["nbh_grades"] and c.extra["nbh_grades"][0] == 0.65934
    assert c.volume == pytest.approx(2 * 5.415**3)
    expected = -np.array([80.64915, -0.373, -4.87818]) / c.volume
    np.testing.assert_allclose(c.stress_ase[[0, 3, 4]], expected)


@pytest.mark.parametrize("name", FIXTURES)
def test_write_reproduces_mlip_layout_byte_for_byte(data_dir, tmp_path, name):
    write_cfg(tmp_path / name, read_cfg(data_dir / name), include_extra=True)
    assert (tmp_path / name).read_bytes() == (data_dir / name).read_bytes()


def test_round_trip_without_extra(data_dir, tmp_path):
    configs = read_cfg(data_dir / "multi_10_out_20.cfg")
    write_cfg(tmp_path / "a.cfg", configs)
    assert "nbh_grades" not in (tmp_path / "a.cfg").read_text()
    back = read_cfg(tmp_path / "a.cfg")
    for a, b in zip(configs, back):
        for key in ("positions", "types", "cell", "forces", "plus_stress"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
        assert a.energy == b.energy and a.features == b.features and b.extra == {}


def test_reading_1000_configurations(data_dir, tmp_path):
    text = (data_dir / "multi_10_out_20.cfg").read_text()
    (tmp_path / "big.cfg").write_text(text * 50)
    configs = read_cfg(tmp_path / "big.cfg")
    small = read_cfg(data_dir / "multi_10_out_20.cfg")
    assert len(configs) == 50 * len(small) == 1000
    for a, b in zip(configs[-len(small):], small):
        np.testing.assert_array_equal(a.positions, b.positions)
        assert a.energy == b.energy


def _one(data_dir):
    return read_cfg(data_dir / "multi_training_20.cfg")[0]


def test_partial_supercell_two_rows(data_dir, tmp_path):
    c = _one(data_dir)
    c.cell = c.cell.copy()
    c.pbc = (True, True, False)
    write_cfg(tmp_path / "slab.cfg", [c])
    lines = (tmp_path / "slab.cfg").read_text().split("\n")
    assert lines[3] == " Supercell" and lines[6].startswith(" AtomData")  # 2 periodic rows
    (back,) = read_cfg(tmp_path / "slab.cfg")
    assert back.pbc == (True, True, False) and back.volume is None and back.stress_ase is None
    np.testing.assert_array_equal(back.cell[:2], c.cell[:2])
    assert abs(back.cell[2] @ back.cell[0]) < 1e-12 and abs(back.cell[2] @ back.cell[1]) < 1e-12
    assert np.linalg.norm(back.cell[2]) > 10.0  # invertible, longer than the atoms' extent
    atoms = back.to_atoms(["Cu", "Ag", "Au"])
    assert list(atoms.pbc) == [True, True, False]


def test_partial_supercell_one_row(tmp_path):
    text = ("BEGIN_CFG\n Size\n 2\n Supercell\n 2.5 0 0\n AtomData: id type cartes_x cartes_y "
            "cartes_z\n 1 0 0 0 0\n 2 0 1.25 0.1 0.2\nEND_CFG\n")
    (tmp_path / "chain.cfg").write_text(text)
    (c,) = read_cfg(tmp_path / "chain.cfg")
    assert c.pbc == (True, False, False)
    assert np.linalg.matrix_rank(c.cell) == 3 and abs(np.linalg.det(c.cell)) > 1.0
    np.testing.assert_array_equal(c.cell[0], [2.5, 0, 0])


def test_no_supercell_is_non_periodic(tmp_path):
    text = ("BEGIN_CFG\n Size\n 2\n AtomData: id type cartes_x cartes_y cartes_z\n"
            " 1 0 0 0 0\n 2 0 1.25 0.1 0.2\n Energy\n -1.5\nEND_CFG\n")
    (tmp_path / "m.cfg").write_text(text)
    (c,) = read_cfg(tmp_path / "m.cfg")
    assert c.cell is None and c.pbc == (False,) * 3 and c.volume is None and c.energy == -1.5
    write_cfg(tmp_path / "m2.cfg", [c])
    assert "Supercell" not in (tmp_path / "m2.cfg").read_text()


def test_direct_coordinates(data_dir, tmp_path):
    c = _one(data_dir)
    frac = np.linalg.solve(c.cell.T, c.positions.T).T
    lines = ["BEGIN_CFG", " Size", "    27", " Supercell"]
    lines += [" ".join(f"{x:.6f}" for x in row) for row in c.cell]
    lines.append(" AtomData: id type direct_x direct_y direct_z fx fy fz")
    lines += [f"{i + 1} {t} {f[0]:.17g} {f[1]:.17g} {f[2]:.17g} 0 0 0" for i, (t, f) in
              enumerate(zip(c.types, frac))]
    (tmp_path / "d.cfg").write_text("\n".join(lines + ["END_CFG", ""]))
    (d,) = read_cfg(tmp_path / "d.cfg")
    np.testing.assert_allclose(d.positions, c.positions, atol=1e-12)


def test_features_other_blocks_and_stress_header_order(data_dir, tmp_path):
    text = (data_dir / "multi_training_20.cfg").read_text()
    first = text[: text.index("END_CFG")]
    first = first.replace("PlusStress:  xx          yy          zz          yz          xz"
                          "          xy", "PlusStress:  xy yy zz yz xz xx")
    first += (" EnergyWeight\n    2.5\n Feature   EFS_by  VASP 5.4\n Feature   note\ta\n"
              " Feature   note\tb\nEND_CFG\n")
    (tmp_path / "f.cfg").write_text(first)
    (c,) = read_cfg(tmp_path / "f.cfg")
    assert c.plus_stress[0, 1] == 79.20208 and c.plus_stress[0, 0] == -0.40723
    assert c.features == {"@EnergyWeight": "2.5", "EFS_by": "VASP 5.4", "note": "a\nb"}
    write_cfg(tmp_path / "g.cfg", [c])
    out = (tmp_path / "g.cfg").read_text()
    assert " EnergyWeight\n    2.5\n" in out and " Feature   note\ta\n Feature   note\tb\n" in out
    assert read_cfg(tmp_path / "g.cfg")[0].features == c.features


def test_extra_columns_option(data_dir, tmp_path):
    text = (data_dir / "multi_10_out_20.cfg").read_text().replace("nbh_grades", "my_grade")
    (tmp_path / "e.cfg").write_text(text)
    with pytest.raises(FileFormatError, match="unknown column 'my_grade'"):
        read_cfg(tmp_path / "e.cfg")
    configs = read_cfg(tmp_path / "e.cfg", extra_columns=["my_grade"])
    assert configs[0].extra["my_grade"][0] == 0.65934


# --------------------------------------------------------------------------- ASE
def _strained_cu():
    atoms = bulk("Cu", "fcc", a=3.58, cubic=True).repeat((2, 2, 2))
    atoms.set_cell(atoms.cell.array @ np.array([[1.0, 0.03, 0.0], [0.0, 0.98, 0.01],
                                                [0.02, 0.0, 1.01]]), scale_atoms=True)
    atoms.positions[3] += [0.05, -0.03, 0.02]
    atoms.calc = EMT()
    atoms.get_stress()
    atoms.get_forces()
    return atoms


def test_ase_stress_round_trip_and_sign():
    atoms = _strained_cu()
    stress = atoms.get_stress()
    c = Configuration.from_atoms(atoms, ["Ag", "Cu"])
    assert set(c.types) == {1} and c.species == ("Ag", "Cu")
    volume = atoms.get_volume()
    full = np.array([[stress[0], stress[5], stress[4]], [stress[5], stress[1], stress[3]],
                     [stress[4], stress[3], stress[2]]])
    np.testing.assert_allclose(c.plus_stress, -full * volume, rtol=1e-14)
    np.testing.assert_allclose(c.stress_ase, stress, rtol=1e-14)
    assert c.energy == atoms.get_potential_energy()
    np.testing.assert_array_equal(c.forces, atoms.get_forces())
    back = c.to_atoms()
    np.testing.assert_allclose(back.get_stress(), stress, rtol=1e-14)
    assert back.get_potential_energy() == c.energy
    np.testing.assert_array_equal(back.cell.array, atoms.cell.array)
    # PlusStress is -dE/d(strain): check one diagonal and one shear entry by finite differences
    h = 1e-6
    for a, b in ((0, 0), (0, 1)):
        e = []
        for s in (h, -h):
            eps = np.eye(3)
            eps[a, b] += s / (2 if a != b else 1)
            eps[b, a] += s / 2 if a != b else 0
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ eps, scale_atoms=True)
            strained.calc = EMT()
            e.append(strained.get_potential_energy())
        assert -(e[0] - e[1]) / (2 * h) == pytest.approx(c.plus_stress[a, b], abs=1e-5)


def test_compressed_cell_has_positive_plus_stress():
    atoms = bulk("Cu", "fcc", a=3.4, cubic=True)
    atoms.calc = EMT()
    atoms.get_stress()
    c = Configuration.from_atoms(atoms, ["Cu"])
    assert np.all(np.diag(c.plus_stress) > 0) and np.all(c.stress_ase[:3] < 0)


def test_from_atoms_unknown_element():
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
    atoms[1].symbol = "Fe"
    with pytest.raises(PyfitError, match=r"element 'Fe' \(atom 1\) is not in species "
                                         r"\['Cu', 'Ag'\]"):
        Configuration.from_atoms(atoms, ["Cu", "Ag"])


def test_to_atoms_needs_species(data_dir):
    c = _one(data_dir)
    with pytest.raises(PyfitError, match=r"multi_training_20.cfg:1: cannot build ase.Atoms"
                                         r".*species="):
        c.to_atoms()
    with pytest.raises(PyfitError, match="atom type 1 has no element"):
        c.to_atoms(["Cu"])
    atoms = c.to_atoms(["Cu", "Ag", "Au"])
    assert atoms.get_chemical_symbols()[:3] == ["Cu", "Ag", "Au"]
    np.testing.assert_allclose(atoms.get_stress(), c.stress_ase)


# --------------------------------------------------------------------------- geometry checks
def test_check_geometry_periodic_image_overlap():
    cell = np.diag([3.0, 3.0, 3.0])
    c = Configuration(positions=[[0, 0, 0], [1.5, 1.5, 1.5], [3.0, 3.0, 3.0 - 1e-9]],
                      types=[0, 0, 0], cell=cell, source="x.cfg:7")
    with pytest.raises(PyfitError, match=r"x.cfg:7: atoms 0 and 2 \(ids 1 and 3\) are on top of "
                                         r"each other \(through a periodic image\)"):
        check_geometry(c)
    c.pbc = (True, True, False)  # no longer an image along z
    check_geometry(c)
    c.positions[2] = [3.0, 3.0, 1e-9]  # image along x and y only
    with pytest.raises(PyfitError, match="atoms 0 and 2"):
        check_geometry(c)


def test_check_geometry_non_periodic_and_values():
    c = Configuration(positions=[[0, 0, 0], [1, 1, 1], [0, 0, 5e-7]], types=[0, 0, 0])
    with pytest.raises(PyfitError, match="atoms 0 and 2"):
        check_geometry(c)
    check_geometry(c, min_distance=1e-7)
    c = Configuration(positions=[[0, 0, 0], [1, 1, np.inf]], types=[0, 0])
    with pytest.raises(PyfitError, match=r"atom 1 \(id 2\): position is not finite"):
        check_geometry(c)


def test_complete_cell_keeps_periodic_rows():
    cell = complete_cell(np.array([[2.0, 1.0, 0], [0, 0, 0], [0, 0, 0]]), (True, False, False))
    assert abs(np.linalg.det(cell)) > 1 and np.allclose(cell[1:] @ cell[0], 0)


def test_check_species(data_dir):
    configs = read_cfg(data_dir / "multi_training_20.cfg")
    check_species(configs, 3)
    with pytest.raises(PyfitError, match=r"multi_training_20.cfg:1: atom id 2 has type 1, "
                                         r"expected a type in 0..0 \(species_count = 1\)"):
        check_species(configs, 1)


# --------------------------------------------------------------------------- bad files
def make(tmp_path, data_dir, old, new, count=1, name="multi_training_20.cfg"):
    text = (data_dir / name).read_text()
    assert old in text, old
    path = tmp_path / "bad.cfg"
    path.write_text(text.replace(old, new, count))
    return path


def assert_error(path, line, *fragments, **kwargs):
    with pytest.raises(FileFormatError) as info:
        read_cfg(path, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    for fragment in fragments:
        assert fragment in message, message


ATOM2 = "1.805000      1.805000      0.000000"  # position of atom 2 (line 10)
STRESS = "    -0.40723    -4.78086    -0.40723\n"
ROW1 = "         0.000000      5.415000      5.415000\n"
# Edits of multi_training_20.cfg: (old text, new text, line of the error, expected fragments).
# Lines of the first configuration: 1 BEGIN_CFG, 2-3 Size, 4-7 Supercell, 8 AtomData header,
# 9-35 atoms, 36-37 Energy, 38-39 PlusStress, 40 END_CFG, 42 next BEGIN_CFG.
BAD_EDITS = {
    "missing_end_cfg_before_next": ("END_CFG\n", "", 41, "expected END_CFG for the configuration "
                                    "that starts at line 1, found BEGIN_CFG"),
    "size_not_int": (" Size\n    27", " Size\n    27.5", 3,
                     "Size: expected the number of atoms (an integer >= 1), found '27.5'"),
    "fewer_atom_lines_than_size": (" Size\n    27", " Size\n    28", 36,
                                   "AtomData: expected 28 atom lines (Size = 28), found 27"),
    "more_atom_lines_than_size": (" Size\n    27", " Size\n    26", 35,
                                  "AtomData: more atom lines than Size = 26"),
    "ids_not_1_to_n": ("             5    0 ", "             6    0 ", 13,
                       "atom ids must run 1..27 in order: expected 5, found '6'"),
    "non_numeric_value": ("1.805000      0.000000      1.805000", "1.805000      abc      1.805000",
                          12, "AtomData column 'cartes_y': expected a number, found 'abc'"),
    "nan_force": ("-0.002906", "nan", 9, "AtomData column 'fy': expected a finite number, "
                                         "found 'nan'"),
    "nan_energy": ("7.362007908414", "NaN", 37, "Energy: expected a finite number, found 'NaN'"),
    "negative_type": ("             2    1 ", "             2   -1 ", 10, "type must be a "
                      "non-negative integer (0-based species index), found '-1'"),
    "fractional_type": ("             2    1 ", "             2  1.5 ", 10,
                        "type must be a non-negative integer", "found '1.5'"),
    "duplicate_positions": (ATOM2, "0.000000      0.000000      0.000000", 10, "configuration "
                            "starting at line 1: atoms 0 and 1 (ids 1 and 2) are on top of each "
                            "other"),
    "duplicate_through_image": (ATOM2, "5.415000      5.415000      0.000000", 10,
                                "atoms 0 and 1 (ids 1 and 2) are on top of each other "
                                "(through a periodic image)"),
    "unknown_column": ("     fz\n", "     fw\n", 8, "AtomData: unknown column 'fw'",
                       "expected id, type, cartes_x/y/z"),
    "misspelt_coordinate": ("      cartes_z", "      cartes_q", 8, "unknown column 'cartes_q'"),
    "missing_column": ("      cartes_z", "", 8, "AtomData: missing column(s) cartes_z"),
    "short_atom_line": ("-1.194437   -0.002906   -1.194437", "-1.194437   -0.002906", 9,
                        "AtomData: expected 8 values (id type cartes_x cartes_y cartes_z fx fy fz)"
                        ", found 7"),
    "plus_stress_five_numbers": (STRESS, "    -0.40723    -4.78086\n", 39,
                                 "PlusStress: expected 6 numbers (xx yy zz yz xz xy, eV)"),
    "plus_stress_unknown_component": ("PlusStress:  xx ", "PlusStress:  xq ", 38, "PlusStress: "
                                      "expected the components xx yy zz yz xz xy, found 'xq yy"),
    "junk_between_configurations": ("END_CFG\n\n", "END_CFG\nhello\n", 41,
                                    "expected BEGIN_CFG, found 'hello'"),
    "junk_inside_configuration": (" Energy\n", " energy?\n", 36, "unexpected line 'energy?'",
                                  "expected a block name"),
    "supercell_row_of_two": (ROW1, "         0.000000      5.415000\n", 5, "Supercell: expected 3 "
                             "numbers (a lattice vector), found '0.000000      5.415000'"),
    "supercell_with_four_rows": (" Supercell\n", " Supercell\n 1 0 0\n", 8, "Supercell: expected "
                                 "1 to 3 rows of 3 numbers (lattice vectors), found 4"),
    "missing_size": (" Size\n    27\n", "", 1, "configuration has no Size block"),
    "duplicate_energy": (" Energy\n", " Energy\n 1.0\n Energy\n", 38,
                         "duplicate Energy block (first on line 36)"),
    "unknown_block": (" Energy\n", " Energie\n", 36, "unexpected line 'Energie'",
                      "expected a block name", "EnergyWeight"),
}


@pytest.mark.parametrize("case", list(BAD_EDITS))
def test_bad_file(tmp_path, data_dir, case):
    old, new, line, *fragments = BAD_EDITS[case]
    assert_error(make(tmp_path, data_dir, old, new), line, *fragments)


def test_missing_end_cfg_at_end_of_file(tmp_path, data_dir):
    lines = (data_dir / "multi_training_20.cfg").read_text().split("\n")
    path = tmp_path / "bad.cfg"
    path.write_text("\n".join(lines[:50]) + "\n")
    assert_error(path, 50, "file ends inside the configuration that starts at line 42: expected "
                           "END_CFG (truncated file?)")


def test_direct_coordinates_need_full_supercell(tmp_path, data_dir):
    path = make(tmp_path, data_dir, "cartes_", "direct_", count=3)
    path.write_text(path.read_text().replace(" Supercell\n", "", 1).replace(
        ROW1 + "         5.415000      0.000000      5.415000\n"
        "         5.415000      5.415000      0.000000\n", "", 1))
    assert_error(path, 4, "direct_* (fractional) coordinates need a Supercell with 3 lattice "
                          "vectors")


def test_empty_file(tmp_path):
    (tmp_path / "bad.cfg").write_text("\n\n")
    assert_error(tmp_path / "bad.cfg", 1, "no configuration found: expected BEGIN_CFG")


def test_unknown_block_kept_on_request(tmp_path, data_dir):
    path = make(tmp_path, data_dir, " Energy\n", " Energie\n")
    configs = read_cfg(path, other_blocks=["Energie"])
    assert configs[0].energy is None and configs[0].features == {"@Energie": "7.362007908414"}


def test_check_geometry_atom_on_its_own_image():
    c = Configuration(positions=[[0.5, 0.5, 0.5]], types=[0], cell=np.diag([1e-7, 1e5, 1e5]))
    with pytest.raises(PyfitError, match="a lattice translation is shorter than min_distance"):
        check_geometry(c)
