"""ASE calculator for MTPs: ``atoms.calc = MTPCalculator("pot.mtp", species=["Cu"])``."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ase.calculators.calculator import Calculator, all_changes

from pyfit.potential import MTP

__all__ = ["MTPCalculator"]


class MTPCalculator(Calculator):
    """Energy, forces, stress, per-atom energies and per-atom virials (eV) from an MTP.

    Parameters
    ----------
    potential:
        An :class:`pyfit.MTP` or the path of a potential file.
    species:
        Element symbol of each species index of the potential (in order). Required when the
        potential does not carry element names (MLIP ``.mtp`` files do not).
    n_threads:
        Threads used by the evaluator (OpenMP), 1 by default.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies", "stresses"]

    def __init__(self, potential: MTP | str | Path, species: Sequence[str] | None = None,
                 n_threads: int = 1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(potential, (str, Path)):
            potential = MTP.load(potential, species=species)
        elif species is not None:
            potential = MTP(potential.model, species=species)
        self.potential = potential
        self.n_threads = n_threads

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        want_site_virials = "stresses" in properties
        r = self.potential.evaluate(self.atoms, n_threads=self.n_threads,
                                    site_virials=want_site_virials)
        self.results["energy"] = r.energy
        self.results["free_energy"] = r.energy
        self.results["forces"] = r.forces
        self.results["energies"] = r.site_energies
        if r.stress is not None:
            self.results["stress"] = r.stress
        if want_site_virials and self.atoms.cell.rank == 3:
            volume = self.atoms.get_volume()
            sv = -r.site_virials / volume
            self.results["stresses"] = sv[:, [0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
