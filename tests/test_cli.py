"""The command line interface, run in-process through pyfit.cli.main."""

import json

import numpy as np
import pytest

from pyfit.cli import main
from pyfit.io.cfg import read_cfg
from pyfit.io.mtp_file import read_mtp


def test_calc_efs_reproduces_mlip2(data_dir, tmp_path):
    out = tmp_path / "out.cfg"
    assert main(["calc-efs", str(data_dir / "multi_10_pot.mtp"),
                 str(data_dir / "multi_training_20.cfg"), str(out)]) == 0
    got, ref = read_cfg(out), read_cfg(data_dir / "multi_10_out_20.cfg")
    assert len(got) == len(ref) == 20
    for g, r in zip(got, ref):
        assert abs(g.energy - r.energy) / g.n_atoms < 1e-6
        assert np.abs(g.forces - r.forces).max() <= 2e-6
        assert np.abs(g.plus_stress - r.plus_stress).max() <= 2e-5


def test_calc_efs_to_extxyz_with_species(data_dir, tmp_path):
    from ase.io import read

    out = tmp_path / "out.extxyz"
    assert main(["calc-efs", str(data_dir / "multi_10_pot.mtp"),
                 str(data_dir / "multi_training_20.cfg"), str(out), "--species", "Cu,Ag,Au"]) == 0
    frames = read(out, index=":")
    ref = read_cfg(data_dir / "multi_10_out_20.cfg")
    assert len(frames) == 20
    assert set(frames[0].get_chemical_symbols()) <= {"Cu", "Ag", "Au"}
    np.testing.assert_allclose(frames[3].get_forces(), ref[3].forces, atol=2e-6)
    # ASE stress = -PlusStress / volume
    s = ref[3].plus_stress / frames[3].get_volume()
    np.testing.assert_allclose(frames[3].get_stress(), -s[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]],
                               atol=2e-5 / frames[3].get_volume())


def test_errors_json(data_dir, capsys):
    assert main(["errors", str(data_dir / "multi_10_pot.mtp"),
                 str(data_dir / "multi_10_out_20.cfg"), str(data_dir / "multi_training_20.cfg"),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"multi_10_out_20.cfg", "multi_training_20.cfg", "total"}
    own = report["multi_10_out_20.cfg"]
    assert own["n_configs"] == 20 and own["n_atoms"] == 540
    assert own["energy_rmse"] < 1e-6 and own["forces_rmse"] < 2e-6  # MLIP-2's own outputs
    other = report["multi_training_20.cfg"]
    assert 1e-5 < other["energy_rmse"] < 1e-2 and 1e-3 < other["forces_rmse"] < 0.1
    assert report["total"]["n_configs"] == 40


def test_errors_table(data_dir, capsys):
    assert main(["errors", str(data_dir / "cubic_10_pot.mtp"),
                 str(data_dir / "cubic_10_out_20.cfg")]) == 0
    out = capsys.readouterr().out
    assert "cubic_10_out_20.cfg" in out and "meV/atom" in out


def test_info(data_dir, capsys):
    assert main(["info", str(data_dir / "multi_10_pot.mtp"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["species_count"] == 3
    assert info["scalar moments (linear parameters)"] == 16
    assert info["radial parameters"] == 3 * 3 * 3 * 8


@pytest.mark.parametrize("level, scalars, K", [(8, 9, 2), (16, 92, 4)])
def test_basis_writes_untrained_template(tmp_path, level, scalars, K):
    out = tmp_path / "u.mtp"
    assert main(["basis", str(level), "--species", "2", "-o", str(out)]) == 0
    model = read_mtp(out)
    assert not model.is_trained
    assert model.alpha_scalar_moments == scalars and model.radial_funcs_count == K
    assert model.species_count == 2


def test_missing_potential_is_a_clear_error(data_dir, tmp_path, capsys):
    rc = main(["errors", str(tmp_path / "nope.mtp"), str(data_dir / "cubic_10_out_20.cfg")])
    assert rc == 2
    assert "nope.mtp" in capsys.readouterr().err


def test_malformed_potential_names_line(data_dir, tmp_path, capsys):
    bad = tmp_path / "bad.mtp"
    text = (data_dir / "cubic_10_pot.mtp").read_text().replace("radial_funcs_count = 3",
                                                               "radial_funcs_count = three")
    bad.write_text(text)
    rc = main(["calc-efs", str(bad), str(data_dir / "cubic_10_out_20.cfg"), str(tmp_path / "o.cfg")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "bad.mtp:" in err and "radial_funcs_count" in err


def test_species_out_of_range_names_configuration(data_dir, tmp_path, capsys):
    # a 3-species data set evaluated with a 1-species potential
    rc = main(["errors", str(data_dir / "cubic_10_pot.mtp"), str(data_dir / "multi_training_20.cfg")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "multi_training_20.cfg:" in err and "species_count = 1" in err


def test_bad_level(tmp_path, capsys):
    assert main(["basis", "7", "-o", str(tmp_path / "u.mtp")]) == 2
    assert "7" in capsys.readouterr().err


def test_python_dash_m_pyfit_runs_the_cli(data_dir):
    """``python -m pyfit`` is the same command line as the ``pyfit`` script."""
    import subprocess
    import sys
    from pathlib import Path

    import pyfit

    root = str(Path(pyfit.__file__).resolve().parents[1])
    run = subprocess.run([sys.executable, "-m", "pyfit", "info", str(data_dir / "multi_10_pot.mtp")],
                         capture_output=True, text=True, cwd=root, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "radial parameters                   216" in run.stdout
    bad = subprocess.run([sys.executable, "-m", "pyfit", "info", str(data_dir / "no_such.mtp")],
                         capture_output=True, text=True, cwd=root, timeout=120)
    assert bad.returncode != 0 and "no_such.mtp" in bad.stderr
