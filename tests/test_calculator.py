"""The ASE calculator against the evaluator and ASE's own numerical derivatives."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

from pyfit import MTP, MTPCalculator


@pytest.fixture
def atoms():
    rng = np.random.default_rng(1)
    a = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 2, 2))
    a.symbols[rng.choice(len(a), 10, replace=False)] = "Au"
    a.symbols[rng.choice(len(a), 5, replace=False)] = "Ag"
    a.positions += rng.normal(scale=0.08, size=a.positions.shape)
    a.set_cell(a.cell.array @ (np.eye(3) + rng.normal(scale=0.01, size=(3, 3))), scale_atoms=True)
    return a


def test_calculator_matches_potential_and_derivatives(data_dir, atoms):
    calc = MTPCalculator(data_dir / "multi_10_pot.mtp", species=["Cu", "Ag", "Au"])
    atoms.calc = calc
    e = atoms.get_potential_energy()
    f = atoms.get_forces()
    s = atoms.get_stress()
    r = MTP.load(data_dir / "multi_10_pot.mtp", species=["Cu", "Ag", "Au"]).evaluate(atoms)
    assert e == pytest.approx(r.energy, rel=1e-14)
    np.testing.assert_allclose(f, r.forces, atol=1e-12)
    np.testing.assert_allclose(calculate_numerical_forces(atoms, eps=1e-5), f, atol=1e-6)
    np.testing.assert_allclose(calculate_numerical_stress(atoms, eps=1e-6), s, atol=1e-6)
    energies = atoms.get_potential_energies()
    assert energies.sum() == pytest.approx(e, rel=1e-12)
    stresses = atoms.get_stresses()
    np.testing.assert_allclose(stresses.sum(axis=0), s, atol=1e-12)


def test_calculator_element_not_in_species(data_dir, atoms):
    atoms.symbols[0] = "Ni"
    atoms.calc = MTPCalculator(data_dir / "multi_10_pot.mtp", species=["Cu", "Ag", "Au"])
    with pytest.raises(Exception, match="Ni"):
        atoms.get_potential_energy()


def test_calculator_wrong_species_count(data_dir):
    with pytest.raises(Exception, match="expected 3 element names"):
        MTPCalculator(data_dir / "multi_10_pot.mtp", species=["Cu", "Ag"])
