"""Cross-implementation parity with motep (an independent MTP code, `pip install motep`) on
potentials of generated levels and several species, which MLIP-2's reference files do not cover."""

import numpy as np
import pytest
from ase import Atoms

from pyfit import MTP
from pyfit.io.mtp_file import write_mtp
from test_evaluator import random_model, random_structure

motep_calc = pytest.importorskip("motep.calculator")
motep_mtp = pytest.importorskip("motep.io.mlip.mtp")

ELEMENTS = ["Cu", "Ag", "Au", "Ni"]
NUMBERS = [29, 47, 79, 28]


@pytest.mark.parametrize("level, species", [(6, 1), (8, 2), (14, 3), (16, 4), (20, 2)])
def test_parity_with_motep(tmp_path, level, species):
    rng = np.random.default_rng(level * 10 + species)
    model = random_model(level, species, rng, min_dist=1.5, max_dist=4.5)
    path = tmp_path / "pot.mtp"
    write_mtp(model, path, precision=16)
    data = motep_mtp.read_mtp(path)
    data.species = NUMBERS[:species]
    mtp = MTP(model)
    for kind in ("periodic", "cluster"):
        config = random_structure(rng, species, kind)
        atoms = Atoms([ELEMENTS[t] for t in config.types], positions=config.positions,
                      cell=config.cell if config.cell is not None else np.zeros((3, 3)),
                      pbc=config.cell is not None)
        atoms.calc = motep_calc.make_calculator(data, engine="cext")
        r = mtp.evaluate(config)
        e = atoms.get_potential_energy()
        f = atoms.get_forces()
        scale = max(1.0, abs(e))
        assert abs(r.energy - e) <= 1e-10 * scale
        np.testing.assert_allclose(r.forces, f, atol=1e-10 * max(1.0, np.abs(f).max()))
        if kind == "periodic":
            np.testing.assert_allclose(r.stress, atoms.get_stress(),
                                       atol=1e-10 * max(1.0, np.abs(r.stress).max()))
