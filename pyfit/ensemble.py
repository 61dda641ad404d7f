"""Committees of potentials (ensembles from ``n_models`` fits): the mean prediction and the
spread between members as an uncertainty estimate.

The spread is the population standard deviation (``ddof=0``) over the members: for the energy
(eV, also reported per atom), for every force component (eV/Å), and for PlusStress (eV).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pyfit.errors import PyfitError

__all__ = ["Ensemble", "CommitteeEFS", "committee_spread"]


@dataclass
class CommitteeEFS:
    energy: float  # mean over members (eV)
    forces: np.ndarray  # (N, 3) mean
    plus_stress: np.ndarray  # (3, 3) mean PlusStress (eV)
    stress: np.ndarray | None  # (6,) mean ASE stress (eV/Å^3), periodic structures
    energy_std: float  # eV
    forces_std: np.ndarray  # (N, 3) eV/Å
    plus_stress_std: np.ndarray  # (3, 3) eV
    energies: np.ndarray  # (M,) each member's energy

    @property
    def max_force_std(self) -> float:
        """Largest spread of a force vector's norm-wise components: max_i |std(F_i)| (eV/Å)."""
        return float(np.max(np.linalg.norm(self.forces_std, axis=1))) if len(self.forces_std) \
            else 0.0


class Ensemble:
    """A committee of potentials with the same species (anything with ``evaluate``)."""

    def __init__(self, potentials: Sequence):
        potentials = list(potentials)
        if len(potentials) < 2:
            raise PyfitError(f"an ensemble needs at least 2 potentials, found {len(potentials)}")
        counts = {getattr(p, "species_count", None) for p in potentials}
        if len(counts) > 1:
            raise PyfitError(f"the ensemble's potentials have different species counts "
                             f"{sorted(counts)}")
        self.potentials = potentials

    @classmethod
    def load(cls, paths, species: Sequence[str] | None = None) -> "Ensemble":
        """From a list of files, a comma-separated list, or a glob pattern (``pot.*.mtp``)."""
        from pyfit.potential import MTP

        if isinstance(paths, (str, os.PathLike)):
            text = os.fspath(paths)
            parts = [p for p in text.split(",") if p]
            paths = []
            for p in parts:
                matches = sorted(glob.glob(p))
                if not matches and not os.path.exists(p):
                    raise PyfitError(f"ensemble: no potential file matches {p!r}")
                paths += matches or [p]
        return cls([MTP.load(p, species=species) for p in paths])

    def __len__(self) -> int:
        return len(self.potentials)

    @property
    def species(self):
        return getattr(self.potentials[0], "species", None)

    @property
    def species_count(self) -> int:
        return self.potentials[0].species_count

    def evaluate(self, structure, n_threads: int = 1) -> CommitteeEFS:
        rs = [p.evaluate(structure, n_threads=n_threads) for p in self.potentials]
        e = np.array([r.energy for r in rs])
        f = np.stack([r.forces for r in rs])
        s = np.stack([r.plus_stress for r in rs])
        stresses = [r.stress for r in rs]
        stress = None if stresses[0] is None else np.mean(stresses, axis=0)
        return CommitteeEFS(float(e.mean()), f.mean(axis=0), s.mean(axis=0), stress,
                            float(e.std()), f.std(axis=0), s.std(axis=0), e)


def committee_spread(ensemble: Ensemble, configs, n_threads: int = 1) -> dict:
    """Mean committee spreads over ``configs``: energy std per atom (eV/atom, mean and max
    over configurations), force std (root mean square over components, and the max per
    atom, eV/Å)."""
    e_std, f_sq, f_n, f_max = [], 0.0, 0, 0.0
    for c in configs:
        r = ensemble.evaluate(c, n_threads=n_threads)
        e_std.append(r.energy_std / max(1, len(r.forces)))
        f_sq += float(np.sum(r.forces_std ** 2))
        f_n += r.forces_std.size
        f_max = max(f_max, r.max_force_std)
    return {"energy_std_mean": float(np.mean(e_std)) if e_std else float("nan"),
            "energy_std_max": float(np.max(e_std)) if e_std else float("nan"),
            "forces_std_rms": float(np.sqrt(f_sq / f_n)) if f_n else float("nan"),
            "forces_std_max": f_max}
