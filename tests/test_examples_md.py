"""The main job's short LAMMPS run (examples/md_short.py + examples/in.cuagau_nvt)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _md_short():
    spec = importlib.util.spec_from_file_location("md_short", EXAMPLES / "md_short.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_short_nvt_run_with_the_bundled_potential(tmp_path, capsys):
    rc = _md_short().main([str(EXAMPLES / "data" / "CuAgAu_level10.mtp"), str(tmp_path),
                           "--steps", "100"])
    out = capsys.readouterr().out
    assert rc == 0, out
    m = re.search(r"(\d+) atoms, 100 steps.*final T = (\d+) K, pe = ([-\d.]+) eV/atom", out)
    assert m, out
    assert int(m.group(1)) == 216
    # the 27-atom training cell has 0.2727 eV/atom at rest; 100 steps at 600 K stay near it
    assert 0.25 < float(m.group(3)) < 0.40
    log = (tmp_path / "log.cuagau_nvt").read_text()
    assert "Loop time" in log


def test_missing_potential_is_reported(tmp_path, capsys):
    rc = _md_short().main([str(tmp_path / "nope.mtp"), str(tmp_path)])
    assert rc == 2
    assert "nope.mtp not found" in capsys.readouterr().err


def test_wrong_species_is_a_lammps_error(tmp_path, capsys):
    # a 1-species potential cannot take the input's 3 species names (Cu Ag Au)
    pot = Path(__file__).resolve().parent / "data" / "cubic_10_pot.mtp"
    rc = _md_short().main([str(pot), str(tmp_path), "--steps", "10"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "LAMMPS stopped" in err and "species" in err, err
