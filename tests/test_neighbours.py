"""The C++ neighbour list against ASE's, for periodic, small, triclinic and open cells."""

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.neighborlist import neighbor_list

from pyfit._kernel import Evaluator


def _evaluator(cutoff):
    # A level-2 single-species model: only the neighbour list is used here.
    basic = np.array([0, 0, 0, 0], dtype=np.intc)
    return Evaluator(1, 1, 2, 0.5, cutoff, 1.0, 1, basic, np.zeros(0, dtype=np.intc),
                     np.array([0], dtype=np.intc), np.zeros(2), np.zeros(1), np.zeros(1))


def _pairs_kernel(atoms, cutoff):
    ev = _evaluator(cutoff)
    cell = np.ascontiguousarray(atoms.cell.array, dtype=float)
    offsets, index, dr = ev.neighbours(np.ascontiguousarray(atoms.positions), cell, atoms.pbc)
    i = np.repeat(np.arange(len(atoms)), np.diff(offsets))
    return _canonical(i, index, dr)


def _canonical(i, j, d):
    keys = np.round(np.column_stack([i, j, d]), 8)
    return keys[np.lexsort(keys.T[::-1])]


@pytest.mark.parametrize(
    "atoms",
    [
        bulk("Cu", "fcc", a=3.62, cubic=True).repeat((2, 2, 2)),
        bulk("Cu", "fcc", a=3.62),  # one atom, cell much shorter than the cutoff
        bulk("Ti", "hcp", a=2.95, c=4.68),  # triclinic (hexagonal) small cell
        molecule("C6H6"),  # non-periodic
    ],
    ids=["fcc32", "fcc1", "hcp", "benzene"],
)
def test_neighbour_list_matches_ase(atoms):
    rng = np.random.default_rng(0)
    atoms = atoms.copy()
    atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
    if not atoms.pbc.any():
        atoms.cell = np.zeros((3, 3))
    cutoff = 5.0
    i, j, d = neighbor_list("ijD", atoms, cutoff)
    ref = _canonical(i, j, d)
    got = _pairs_kernel(atoms, cutoff)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-7)


def test_partial_pbc_and_wrapping():
    atoms = bulk("Cu", "fcc", a=3.62, cubic=True).repeat((2, 2, 1))
    atoms.center(vacuum=6.0, axis=2)
    atoms.pbc = (True, True, False)
    atoms.positions[0] += atoms.cell[0] * 3  # far outside the cell: must be wrapped
    i, j, d = neighbor_list("ijD", atoms, 5.0)
    np.testing.assert_allclose(_pairs_kernel(atoms, 5.0), _canonical(i, j, d), atol=1e-7)


def test_overlapping_atoms_rejected():
    atoms = bulk("Cu", "fcc", a=3.62, cubic=True)
    atoms.positions[1] = atoms.positions[0] + atoms.cell[0]  # periodic image on top of atom 0
    with pytest.raises(ValueError, match="on top of each other"):
        _pairs_kernel(atoms, 5.0)
