"""The NbMoTaW JSON reader (units, stress sign and shear order, species, clear errors) and the
format dispatch of pyfit.io.dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pyfit.errors import FileFormatError, PyfitError
from pyfit.io.cfg import read_cfg
from pyfit.io.dataset import read_configurations, write_configurations
from pyfit.io.nbmotaw import KBAR_PER_EV_A3, _forbidden_shears, read_nbmotaw_json

SUBSET = "nbmotaw_subset.json"  # Mo_Elastic 0, 4, 1 and NbMo_SS 5, 9: VASP shear order
MO_SURFACE = "io_nbmotaw_mo_surface.json"  # Mo_Surface 0, 6: Voigt shear order


def raw(data_dir, name):
    return json.loads((data_dir / name).read_text())


def test_read_subset(data_dir):
    configs = read_nbmotaw_json(data_dir / SUBSET)
    records = raw(data_dir, SUBSET)
    assert [c.n_atoms for c in configs] == [2, 2, 2, 16, 16]
    assert all(c.species == ("Mo", "Nb") for c in configs)
    for c, r in zip(configs, records):
        sites = r["structure"]["sites"]
        assert [c.species[t] for t in c.types] == [s["species"][0]["element"] for s in sites]
        np.testing.assert_array_equal(c.cell, r["structure"]["lattice"]["matrix"])
        np.testing.assert_array_equal(c.positions, [s["xyz"] for s in sites])
        np.testing.assert_array_equal(c.forces, r["outputs"]["forces"])
        assert c.energy == r["outputs"]["energy"] and c.pbc == (True, True, True)
        s = np.array(r["outputs"]["stress"])
        np.testing.assert_allclose(np.diag(c.plus_stress), s[:3] / KBAR_PER_EV_A3 * c.volume,
                                   rtol=1e-14)
        np.testing.assert_array_equal(c.plus_stress, c.plus_stress.T)
    assert configs[3].source == f"{data_dir / SUBSET}[3]"
    assert configs[0].features == {"id": records[0]["_id"], "group": "Mo"}


def test_vasp_shear_order_in_elastic_records(data_dir):
    """Mo_Elastic record 0 is sheared in the xy plane (lattice b has an x component): its
    shear sits in entry 3 of the VASP order xx yy zz xy yz zx."""
    c = read_nbmotaw_json(data_dir / SUBSET)[0]
    s = raw(data_dir, SUBSET)[0]["outputs"]["stress"]
    assert c.cell[1, 0] > 0.2 and s[3] != 0 and s[4] == s[5] == 0
    assert c.plus_stress[0, 1] == pytest.approx(s[3] / KBAR_PER_EV_A3 * c.volume, rel=1e-14)
    assert c.plus_stress[0, 1] < 0  # positive xy shear strain -> tensile (ASE-positive) xy stress
    assert c.stress_ase[5] > 0
    c = read_nbmotaw_json(data_dir / SUBSET)[1]  # '5--' strain: yz
    assert c.cell[1, 2] != 0 and c.plus_stress[1, 2] != 0 and c.plus_stress[0, 1] == 0


def test_compressed_record_has_positive_plus_stress(data_dir):
    c = read_nbmotaw_json(data_dir / SUBSET)[2]  # Mo_Elastic strain 1 (xx) by -10 %
    assert c.plus_stress[0, 0] > 5.0 and c.stress_ase[0] < 0


@pytest.mark.parametrize("name", [SUBSET, MO_SURFACE])
def test_symmetry_forbidden_shears_are_zero(data_dir, name):
    configs = read_nbmotaw_json(data_dir / name)
    checked = 0
    for c in configs:
        symbols = [c.species[t] for t in c.types]
        forbidden = _forbidden_shears(c.cell, c.positions, symbols)
        allowed = {(0, 1), (1, 2), (0, 2)} - forbidden
        if forbidden and allowed:
            checked += 1
            for a, b in forbidden:
                assert c.plus_stress[a, b] == 0
            assert any(c.plus_stress[a, b] != 0 for a, b in allowed)
    assert checked >= 2


def test_mo_surface_is_voigt_order(data_dir):
    configs = read_nbmotaw_json(data_dir / MO_SURFACE)
    s = raw(data_dir, MO_SURFACE)
    volume = configs[0].volume
    yz = s[0]["outputs"]["stress"][3] / KBAR_PER_EV_A3 * volume  # Voigt entry 3 = yz
    assert configs[0].plus_stress[1, 2] == pytest.approx(yz)
    xy = s[1]["outputs"]["stress"][5] / KBAR_PER_EV_A3 * configs[1].volume  # entry 5 = xy
    assert configs[1].plus_stress[0, 1] == pytest.approx(xy)
    forced = read_nbmotaw_json(data_dir / MO_SURFACE, shear_order="vasp")
    assert forced[0].plus_stress[0, 1] == configs[0].plus_stress[1, 2]


def test_species_argument(data_dir):
    configs = read_nbmotaw_json(data_dir / SUBSET, species=["Nb", "Mo", "Ta", "W"])
    assert configs[0].species == ("Nb", "Mo", "Ta", "W") and set(configs[0].types) == {1}
    with pytest.raises(FileFormatError, match=r"nbmotaw_subset.json: record 3: element 'Nb' is "
                                              r"not in species \['Mo'\]"):
        read_nbmotaw_json(data_dir / SUBSET, species=["Mo"])


def test_dataset_dispatches_json(data_dir):
    configs = read_configurations(data_dir / SUBSET)
    assert len(configs) == 5 and configs[0].species == ("Mo", "Nb")
    atoms = configs[0].to_atoms()
    np.testing.assert_allclose(atoms.get_stress(), configs[0].stress_ase)


def test_bad_shear_order_argument(data_dir):
    with pytest.raises(PyfitError, match="shear_order: expected 'auto', 'vasp' or 'voigt'"):
        read_nbmotaw_json(data_dir / SUBSET, shear_order="xyz")


# ------------------------------------------------------------- dataset dispatch (all formats)
def test_dataset_cfg_species(data_dir):
    configs = read_configurations(data_dir / "multi_training_20.cfg", species=["Cu", "Ag", "Au"])
    assert configs[0].species == ("Cu", "Ag", "Au")
    with pytest.raises(PyfitError, match=r"multi_training_20.cfg:1: atom id 3 has type 2"):
        read_configurations(data_dir / "multi_training_20.cfg", species=["Cu", "Ag"])


def test_dataset_ase_round_trip(data_dir, tmp_path):
    configs = read_cfg(data_dir / "multi_10_out_20.cfg")[:3]
    write_configurations(tmp_path / "x.extxyz", configs, species=["Cu", "Ag", "Au"])
    back = read_configurations(tmp_path / "x.extxyz")  # species sorted by Z: Cu, Ag, Au
    assert back[0].species == ("Cu", "Ag", "Au") and back[2].source.endswith("x.extxyz[2]")
    for a, b in zip(configs, back):
        np.testing.assert_array_equal(a.types, b.types)
        np.testing.assert_allclose(b.positions, a.positions, atol=1e-12)
        np.testing.assert_allclose(b.forces, a.forces, atol=1e-12)
        np.testing.assert_allclose(b.plus_stress, a.plus_stress, atol=1e-9)
        assert b.energy == pytest.approx(a.energy, abs=1e-12)
    write_configurations(tmp_path / "y.cfg", back)
    assert read_cfg(tmp_path / "y.cfg")[1].energy == configs[1].energy


def test_dataset_missing_file(tmp_path):
    for name in ("none.cfg", "none.json", "none.xyz"):
        with pytest.raises(PyfitError, match=f"{tmp_path / name}: no such file"):
            read_configurations(tmp_path / name)


def test_dataset_unreadable_ase_file(tmp_path):
    (tmp_path / "bad.xyz").write_text("not an xyz file\n")
    with pytest.raises(PyfitError, match="bad.xyz: cannot read with ase.io.read"):
        read_configurations(tmp_path / "bad.xyz")


# --------------------------------------------------------------------------- bad files
def write_edited(tmp_path, data_dir, edit):
    records = raw(data_dir, SUBSET)
    edit(records)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(records))
    return path


def assert_error(path, *fragments):
    with pytest.raises(FileFormatError) as info:
        read_nbmotaw_json(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") or message.startswith(f"{path}:"), message
    for fragment in fragments:
        assert fragment in message, message


def test_missing_stress(tmp_path, data_dir):
    path = write_edited(tmp_path, data_dir, lambda r: r[2]["outputs"].pop("stress"))
    assert_error(path, "record 2: missing key 'outputs.stress'")


def test_missing_lattice_matrix(tmp_path, data_dir):
    path = write_edited(tmp_path, data_dir, lambda r: r[1]["structure"]["lattice"].pop("matrix"))
    assert_error(path, "record 1: missing key 'structure.lattice.matrix'")


def test_missing_outputs(tmp_path, data_dir):
    path = write_edited(tmp_path, data_dir, lambda r: r[4].pop("outputs"))
    assert_error(path, "record 4: missing key 'outputs'")


def test_missing_element(tmp_path, data_dir):
    path = write_edited(tmp_path, data_dir,
                        lambda r: r[3]["structure"]["sites"][5]["species"][0].pop("element"))
    assert_error(path, "record 3: missing key 'structure.sites.5.species.0.element'")


def test_forces_wrong_shape(tmp_path, data_dir):
    path = write_edited(tmp_path, data_dir, lambda r: r[0]["outputs"]["forces"].pop())
    assert_error(path, "record 0: 'outputs.forces': expected numbers of shape (2, 3), found "
                       "shape (1, 3)")


def test_stress_not_numeric(tmp_path, data_dir):
    def edit(r):
        r[0]["outputs"]["stress"][2] = "abc"
    assert_error(write_edited(tmp_path, data_dir, edit), "record 0: 'outputs.stress': expected "
                                                         "numbers of shape (6,), found non-numeric")


def test_nan_energy(tmp_path, data_dir):
    def edit(r):
        r[1]["outputs"]["energy"] = float("nan")
    assert_error(write_edited(tmp_path, data_dir, edit), "record 1: 'outputs.energy': expected "
                                                         "finite numbers")


def test_num_atoms_mismatch(tmp_path, data_dir):
    def edit(r):
        r[3]["num_atoms"] = 15
    assert_error(write_edited(tmp_path, data_dir, edit), "record 3: num_atoms = 15 but "
                                                         "structure.sites has 16 sites")


def test_overlapping_atoms(tmp_path, data_dir):
    def edit(r):
        sites = r[3]["structure"]["sites"]
        sites[1]["xyz"] = sites[0]["xyz"]
    assert_error(write_edited(tmp_path, data_dir, edit), "record 3: atoms 0 and 1")


def test_invalid_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n {"structure": \n  {"lattice": ]\n')
    with pytest.raises(FileFormatError, match=r"bad.json:3: invalid JSON"):
        read_nbmotaw_json(path)


def test_not_a_list(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"structure": {}}')
    assert_error(path, "expected a JSON list of records, found dict")


def test_boolean_is_not_a_number(tmp_path, data_dir):
    def edit(r):
        r[2]["outputs"]["energy"] = True
    assert_error(write_edited(tmp_path, data_dir, edit), "record 2: 'outputs.energy': expected "
                                                         "numbers of shape (), found non-numeric")


def test_element_not_a_symbol(tmp_path, data_dir):
    def edit(r):
        r[3]["structure"]["sites"][2]["species"][0]["element"] = "Xx"
    assert_error(write_edited(tmp_path, data_dir, edit), "record 3: site 2: expected an element "
                                                         "symbol, found 'Xx'")
