"""`MTP`: a Moment Tensor Potential that can be loaded, saved and evaluated.

The arithmetic lives in the header-only C++ kernel (``include/mtp``), reached through the private
Cython module :mod:`pyfit._kernel`; this module validates input and converts between
:class:`~pyfit.configuration.Configuration` / :class:`ase.Atoms` and the kernel's arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from pyfit.configuration import Configuration
from pyfit.errors import PyfitError
from pyfit.model import MTPModel

__all__ = ["MTP", "EFS"]


@dataclass
class EFS:
    """Result of one evaluation.

    ``plus_stress`` is MLIP's PlusStress (eV): minus the derivative of the energy with respect to
    a homogeneous strain, i.e. the virial ``-sum_ij g_ij (x) r_ij``; positive under compression.
    ``stress`` is ASE's convention (eV/Å^3, Voigt xx yy zz yz xz xy, positive under tension),
    ``None`` for a non-periodic structure.
    """

    energy: float
    forces: np.ndarray  # (N, 3) eV/Å
    site_energies: np.ndarray  # (N,) eV
    plus_stress: np.ndarray  # (3, 3) eV
    stress: np.ndarray | None  # (6,) eV/Å^3
    site_virials: np.ndarray | None = None  # (N, 3, 3) eV, when requested


class MTP:
    """A Moment Tensor Potential.

    Parameters
    ----------
    model:
        The parameters and basis (:class:`pyfit.model.MTPModel`); must be trained.
    species:
        Optional element symbols of the species indices 0..C-1, needed only to evaluate
        :class:`ase.Atoms` (MLIP ``.mtp`` files do not store element names).
    """

    def __init__(self, model: MTPModel, species: Sequence[str] | None = None):
        model.validate()
        if not model.is_trained:
            raise PyfitError(
                "the potential is untrained (no radial_coeffs / species_coeffs / moment_coeffs); "
                "train it first (pyfit train) before evaluating"
            )
        if model.radial_basis_type != "RBChebyshev":
            raise PyfitError(
                f"radial_basis_type = {model.radial_basis_type} is not supported; "
                "expected RBChebyshev"
            )
        if species is not None:
            species = tuple(species)
            if len(species) != model.species_count:
                raise PyfitError(
                    f"species: expected {model.species_count} element names "
                    f"(species_count), found {len(species)}: {list(species)}"
                )
        self.model = model
        self.species = species
        self._evaluator = None

    # ------------------------------------------------------------------ I/O
    @classmethod
    def load(cls, path: str | Path, species: Sequence[str] | None = None) -> "MTP":
        """Reads an MLIP ``.mtp`` file. ``MTP.load`` also reads a factored ``MTP-LOWRANK``
        file (chosen by the first line) and then returns a
        :class:`pyfit.lowrank.potential.CompressedMTP`, which keeps the factors."""
        from pyfit.io.lowrank_file import file_kind
        from pyfit.io.mtp_file import read_mtp

        if cls is MTP and file_kind(path) == "lowrank":
            from pyfit.lowrank.potential import CompressedMTP

            return CompressedMTP.load(path, species=species)
        return cls(read_mtp(path), species=species)

    def save(self, path: str | Path) -> None:
        """Writes an MLIP ``.mtp`` file (readable by MLIP-2)."""
        from pyfit.io.mtp_file import write_mtp

        write_mtp(self.model, path)

    # ------------------------------------------------------------------ properties
    @property
    def cutoff(self) -> float:
        return float(self.model.max_dist)

    @property
    def species_count(self) -> int:
        return int(self.model.species_count)

    def __repr__(self) -> str:
        m = self.model
        return (
            f"MTP(species_count={m.species_count}, radial_funcs_count={m.radial_funcs_count}, "
            f"alpha_scalar_moments={m.alpha_scalar_moments}, cutoff={m.max_dist})"
        )

    # ------------------------------------------------------------------ evaluation
    @property
    def evaluator(self):
        """The compiled evaluator (built on first use, rebuilt by :meth:`refresh`)."""
        if self._evaluator is None:
            from pyfit._kernel import Evaluator

            m = self.model
            self._evaluator = Evaluator(
                int(m.species_count),
                int(m.radial_funcs_count),
                int(m.radial_basis_size),
                float(m.min_dist),
                float(m.max_dist),
                float(m.scaling),
                int(m.alpha_moments_count),
                np.ascontiguousarray(m.alpha_index_basic, dtype=np.intc).ravel(),
                np.ascontiguousarray(m.alpha_index_times, dtype=np.intc).ravel(),
                np.ascontiguousarray(m.alpha_moment_mapping, dtype=np.intc),
                np.ascontiguousarray(m.radial_coeffs, dtype=float).ravel(),
                np.ascontiguousarray(m.species_coeffs, dtype=float),
                np.ascontiguousarray(m.moment_coeffs, dtype=float),
            )
        return self._evaluator

    def refresh(self) -> None:
        """Pushes changed coefficients of :attr:`model` to the compiled evaluator."""
        if self._evaluator is not None:
            m = self.model
            self._evaluator.set_coefficients(
                np.ascontiguousarray(m.radial_coeffs, dtype=float).ravel(),
                np.ascontiguousarray(m.species_coeffs, dtype=float),
                np.ascontiguousarray(m.moment_coeffs, dtype=float),
            )

    def evaluate(self, structure, n_threads: int = 1, site_virials: bool = False) -> EFS:
        """Energy, forces, stress and per-atom energies of a Configuration or ase.Atoms."""
        config = self._as_configuration(structure)
        where = config.source or "configuration"
        positions = np.ascontiguousarray(config.positions, dtype=float)
        types = np.ascontiguousarray(config.types, dtype=np.intc)
        if positions.ndim != 2 or positions.shape[1] != 3:
            raise PyfitError(f"{where}: positions must have shape (N, 3), found {positions.shape}")
        if types.shape != (positions.shape[0],):
            raise PyfitError(
                f"{where}: expected {positions.shape[0]} atom types, found {types.shape[0]}"
            )
        if not np.all(np.isfinite(positions)):
            raise PyfitError(f"{where}: positions contain NaN or inf")
        if types.size and (types.min() < 0 or types.max() >= self.species_count):
            bad = int(types[(types < 0) | (types >= self.species_count)][0])
            raise PyfitError(
                f"{where}: atom type {bad} out of range: the potential has "
                f"species_count = {self.species_count} (types 0..{self.species_count - 1})"
            )
        pbc = tuple(bool(p) for p in config.pbc) if config.cell is not None else (False,) * 3
        cell = (
            np.ascontiguousarray(config.cell, dtype=float)
            if config.cell is not None
            else np.zeros((3, 3))
        )
        if any(pbc):
            if not np.all(np.isfinite(cell)):
                raise PyfitError(f"{where}: the cell contains NaN or inf")
            if abs(np.linalg.det(cell)) < 1e-9:
                raise PyfitError(f"{where}: the periodic cell is singular (zero volume)")
        try:
            energy, site_e, forces, virial, site_vir = self.evaluator.efs(
                positions, types, cell, pbc, n_threads, site_virials
            )
        except ValueError as exc:  # geometry errors raised by the kernel
            raise PyfitError(f"{where}: {exc}") from None
        stress = None
        if all(pbc):
            volume = abs(np.linalg.det(cell))
            s = -virial / volume
            stress = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        return EFS(float(energy), forces, site_e, virial, stress, site_vir)

    def calc_efs(self, configs: Iterable[Configuration], n_threads: int = 1) -> list[Configuration]:
        """Returns copies of ``configs`` labelled with this potential's energy/forces/stress."""
        out = []
        for config in configs:
            r = self.evaluate(config, n_threads=n_threads)
            new = config.copy() if hasattr(config, "copy") else config
            new.energy = r.energy
            new.forces = r.forces
            new.plus_stress = r.plus_stress if config.cell is not None else None
            out.append(new)
        return out

    def _as_configuration(self, structure) -> Configuration:
        if isinstance(structure, Configuration):
            return structure
        try:
            from ase import Atoms
        except ImportError:  # pragma: no cover - ase is a dependency
            Atoms = ()
        if isinstance(structure, Atoms):
            if self.species is None:
                raise PyfitError(
                    "cannot map the elements of an ase.Atoms to species indices: give "
                    "MTP(..., species=['Cu', ...]) or MTP.load(path, species=[...])"
                )
            return Configuration.from_atoms(structure, self.species)
        raise PyfitError(
            f"expected a pyfit Configuration or an ase.Atoms, found {type(structure).__name__}"
        )
