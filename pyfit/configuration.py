"""`Configuration`: one atomic structure with optional energy / forces / stress labels.

Conventions (MLIP's):

* ``cell`` rows are the lattice vectors (Å); ``None`` means non-periodic (``pbc`` all False).
  A partially periodic structure (e.g. a slab) has a full invertible 3x3 ``cell`` whose rows with
  ``pbc[d] == False`` only complete the basis (see :func:`complete_cell`).
* ``plus_stress`` is MLIP's PlusStress (eV): the virial ``-dE/d(strain)``, positive under
  compression. ASE's stress (eV/Å^3, positive under tension) is ``-plus_stress / volume``.
"""

from __future__ import annotations

import copy as _copy
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from pyfit.errors import PyfitError

__all__ = ["Configuration", "check_geometry", "find_geometry_problem", "find_overlap",
           "check_species", "complete_cell"]

_VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))  # xx yy zz yz xz xy


@dataclass(eq=False)
class Configuration:
    positions: np.ndarray  # (N, 3) float64 Cartesian Å
    types: np.ndarray  # (N,) int64, 0-based species index
    cell: np.ndarray | None = None  # (3, 3) rows = lattice vectors; None = non-periodic
    pbc: tuple[bool, bool, bool] = (True, True, True)  # (False,)*3 when cell is None
    energy: float | None = None  # eV, total
    forces: np.ndarray | None = None  # (N, 3) eV/Å
    plus_stress: np.ndarray | None = None  # (3, 3) eV, MLIP PlusStress (= -stress * volume)
    features: dict[str, str] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # per-atom columns (nbh_grades)
    species: tuple[str, ...] | None = None  # element symbol of each type index, when known
    source: str | None = None  # "file.cfg:123" (the BEGIN_CFG line), for messages

    def __post_init__(self):
        try:
            self.positions = np.asarray(self.positions, dtype=np.float64)
            types = np.asarray(self.types)
            if types.dtype.kind in "iub" or (types.dtype.kind == "f" and types.size
                                             and np.all(types == np.round(types))):
                types = types.astype(np.int64)
            elif types.size == 0:
                types = types.astype(np.int64)
            self.types = types
            for name in ("cell", "forces", "plus_stress"):
                value = getattr(self, name)
                if value is not None:
                    setattr(self, name, np.asarray(value, dtype=np.float64))
            if self.energy is not None:
                self.energy = float(self.energy)
        except (TypeError, ValueError) as exc:
            raise PyfitError(f"{self.source or 'configuration'}: invalid array: {exc}") from None
        if self.cell is None:
            self.pbc = (False, False, False)
        else:
            pbc = self.pbc
            if isinstance(pbc, (bool, np.bool_)):
                pbc = (pbc,) * 3
            pbc = tuple(bool(p) for p in np.asarray(pbc, dtype=bool).ravel())
            if len(pbc) != 3:
                raise PyfitError(f"{self.source or 'configuration'}: pbc: expected 3 booleans, "
                                 f"found {self.pbc!r}")
            self.pbc = pbc
        if self.species is not None:
            self.species = tuple(str(s) for s in self.species)

    # ------------------------------------------------------------------ properties
    @property
    def n_atoms(self) -> int:
        return int(len(self.positions))

    @property
    def volume(self) -> float | None:
        """Cell volume (Å^3) of a fully periodic configuration, else ``None``."""
        if self.cell is None or not all(self.pbc):
            return None
        return float(abs(np.linalg.det(self.cell)))

    @property
    def stress_ase(self) -> np.ndarray | None:
        """ASE stress (Voigt xx yy zz yz xz xy, eV/Å^3, positive under tension) or ``None``."""
        volume = self.volume
        if self.plus_stress is None or not volume:
            return None
        s = -np.asarray(self.plus_stress) / volume
        return np.array([s[a, b] for a, b in _VOIGT])

    def copy(self) -> "Configuration":
        return _copy.deepcopy(self)

    # ------------------------------------------------------------------ ASE
    def to_atoms(self, species: Sequence[str] | None = None):
        """An ``ase.Atoms`` with a SinglePointCalculator holding energy / forces / stress."""
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator

        where = self.source or "configuration"
        species = tuple(species) if species is not None else self.species
        if species is None:
            raise PyfitError(f"{where}: cannot build ase.Atoms: the element symbols of the "
                             "species are unknown; pass species=['Cu', ...] (one per type index)")
        if self.types.size and (self.types.min() < 0 or self.types.max() >= len(species)):
            bad = int(self.types[(self.types < 0) | (self.types >= len(species))][0])
            raise PyfitError(f"{where}: atom type {bad} has no element: species = "
                             f"{list(species)} names types 0..{len(species) - 1}")
        cell = self.cell if self.cell is not None else np.zeros((3, 3))
        try:
            atoms = Atoms(symbols=[species[t] for t in self.types], positions=self.positions,
                          cell=cell, pbc=self.pbc)
        except (KeyError, ValueError) as exc:
            raise PyfitError(f"{where}: invalid element symbol in species {list(species)}: "
                             f"{exc}") from None
        for name, values in self.extra.items():
            if name not in atoms.arrays:
                atoms.new_array(name, np.array(values))
        atoms.info.update({k: v for k, v in self.features.items()  # single-line, plain names
                           if k.isidentifier() and "\n" not in str(v)})
        results = {}
        if self.energy is not None:
            results["energy"] = self.energy
        if self.forces is not None:
            results["forces"] = self.forces.copy()
        if self.stress_ase is not None:
            results["stress"] = self.stress_ase
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms

    @classmethod
    def from_atoms(cls, atoms, species: Sequence[str]) -> "Configuration":
        """A Configuration from ``ase.Atoms``; ``species[k]`` is the element of type index k.

        Energy, forces and stress are taken from ``atoms.calc`` when it already holds them
        (nothing is calculated here).
        """
        species = tuple(species)
        index = {s: k for k, s in enumerate(species)}
        symbols = atoms.get_chemical_symbols()
        for i, s in enumerate(symbols):
            if s not in index:
                raise PyfitError(f"element {s!r} (atom {i}) is not in species {list(species)}; "
                                 f"expected one of these")
        types = np.array([index[s] for s in symbols], dtype=np.int64)
        pbc = tuple(bool(p) for p in atoms.pbc)
        positions = np.array(atoms.positions, dtype=np.float64)
        cell = None
        if any(pbc):
            cell = np.array(atoms.cell.array, dtype=np.float64)
            rows = [cell[d] for d in range(3) if pbc[d]]
            if np.linalg.matrix_rank(np.array(rows), tol=1e-9) < len(rows):
                raise PyfitError(f"ase.Atoms with pbc={list(pbc)}: the periodic cell vectors "
                                 f"are zero or linearly dependent: {cell.tolist()}")
            if abs(np.linalg.det(cell)) < 1e-9:
                cell = complete_cell(cell, pbc, positions)
        energy = forces = plus_stress = None
        if atoms.calc is not None:
            energy = _calc_property(atoms, "energy")
            if energy is None:
                energy = _calc_property(atoms, "free_energy")
            forces = _calc_property(atoms, "forces")
            stress = _calc_property(atoms, "stress")
            if stress is not None and all(pbc):
                stress = np.asarray(stress, dtype=np.float64)
                if stress.shape == (6,):
                    full = np.zeros((3, 3))
                    for k, (a, b) in enumerate(_VOIGT):
                        full[a, b] = full[b, a] = stress[k]
                    stress = full
                plus_stress = -stress * abs(np.linalg.det(cell))
        return cls(positions=positions, types=types, cell=cell, pbc=pbc, energy=energy,
                   forces=None if forces is None else np.array(forces, dtype=np.float64),
                   plus_stress=plus_stress, species=species)


def _calc_property(atoms, name):
    try:
        return atoms.calc.get_property(name, atoms, allow_calculation=False)
    except Exception:  # property not implemented / not available: unlabelled
        return None


def complete_cell(cell, pbc, positions=None) -> np.ndarray:
    """An invertible 3x3 cell keeping the periodic rows of ``cell``.

    Each non-periodic row is replaced by a vector perpendicular to the periodic ones (and to each
    other), as long as the extent of the atoms along it plus 10 Å. These rows carry no physics:
    they only make fractional coordinates well defined.
    """
    cell = np.array(cell, dtype=np.float64).reshape(3, 3)
    periodic = [d for d in range(3) if pbc[d]]
    basis = [cell[d] / np.linalg.norm(cell[d]) for d in periodic]
    out = cell.copy()
    for d in range(3):
        if pbc[d]:
            continue
        if len(basis) == 2:
            v = np.cross(basis[0], basis[1])
        else:  # Gram-Schmidt on the coordinate axis least aligned with the current basis
            axes = np.eye(3)
            scores = [sum(abs(a @ b) for b in basis) for a in axes]
            v = axes[int(np.argmin(scores))].copy()
            for b in basis:
                v -= (v @ b) * b
        v /= np.linalg.norm(v)
        basis.append(v)
        extent = float(np.ptp(positions @ v)) if positions is not None and len(positions) else 0.0
        out[d] = v * (extent + 10.0)
    return out


def find_geometry_problem(config: Configuration, min_distance: float = 1e-6) -> str | None:
    """The first problem with shapes, finite values or overlapping atoms, or ``None``.

    Overlaps are searched including periodic images (periodic directions only). With
    ``min_distance <= 0`` only shapes and values are checked.
    """
    pos, types = config.positions, config.types
    if pos.ndim != 2 or pos.shape[1] != 3:
        return f"positions: expected shape (N, 3), found {pos.shape}"
    n = len(pos)
    if n == 0:
        return "no atoms: expected at least one"
    if types.shape != (n,):
        return f"types: expected shape ({n},), found {types.shape}"
    if types.dtype.kind not in "iu":
        return f"types: expected integer species indices, found dtype {types.dtype}"
    if types.min() < 0:
        i = int(np.argmax(types < 0))
        return (f"atom {i} (id {i + 1}): expected type >= 0 (0-based species index), found "
                f"{types[i]}")
    bad = ~np.isfinite(pos).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        return f"atom {i} (id {i + 1}): position is not finite: {pos[i].tolist()}"
    for name, shape in (("forces", (n, 3)), ("plus_stress", (3, 3))):
        value = getattr(config, name)
        if value is not None:
            if value.shape != shape:
                return f"{name}: expected shape {shape}, found {value.shape}"
            if not np.all(np.isfinite(value)):
                return f"{name}: expected finite values, found {value[~np.isfinite(value)][0]}"
    if config.energy is not None and not np.isfinite(config.energy):
        return f"energy: expected a finite number, found {config.energy}"
    for name, value in config.extra.items():
        if len(value) != n:
            return f"extra column {name!r}: expected {n} values (one per atom), found {len(value)}"
    cell, pbc = config.cell, config.pbc
    if cell is not None:
        if cell.shape != (3, 3) or not np.all(np.isfinite(cell)):
            return f"cell: expected a finite 3x3 matrix, found {cell.tolist()}"
        if any(pbc) and abs(np.linalg.det(cell)) < 1e-9:
            return f"cell: the lattice vectors are singular (zero volume): {cell.tolist()}"
    if min_distance <= 0 or n < 2 and not any(pbc):
        return None
    r = float(min_distance)
    hit = find_overlap(pos, cell, pbc, r)
    if hit is None:
        return None
    i, j, dist = hit
    if i == j:
        return f"cell: a lattice translation is shorter than min_distance = {r:g} Å"
    image = "" if np.linalg.norm(pos[i] - pos[j]) < r else " (through a periodic image)"
    return (f"atoms {i} and {j} (ids {i + 1} and {j + 1}) are on top of each other{image}: "
            f"distance {dist:.3g} Å < min_distance = {r:g} Å")


def find_overlap(pos, cell, pbc, r) -> tuple[int, int, float] | None:
    """``(i, j, distance)``, i <= j, of two atoms closer than ``r`` (periodic images included;
    ``i == j``: an atom and its own image), or ``None``. ``r`` must be small against the cell."""
    from scipy.spatial import cKDTree

    n = len(pos)
    points, owner = pos, np.arange(n)
    if cell is not None and any(pbc):
        inv = np.linalg.inv(cell)
        frac = pos @ inv
        near0 = np.zeros((n, 3), dtype=bool)
        for d in range(3):
            if pbc[d]:
                frac[:, d] -= np.floor(frac[:, d])
                eps = 2.0 * r * np.linalg.norm(inv[:, d]) + 1e-12
                frac[:, d][frac[:, d] > 1.0 - eps] -= 1.0  # fold the upper edge onto the lower
                near0[:, d] = frac[:, d] < eps
        # an atom at the lower edge of direction d also gets an image shifted by +1 along d
        images, owners = [frac], [owner]
        for shift in ((1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1),
                      (1, 1, 1)):
            mask = np.all(near0 | ~np.array(shift, dtype=bool), axis=1)
            if mask.any():
                images.append(frac[mask] + shift)
                owners.append(owner[mask])
        points, owner = np.concatenate(images) @ cell, np.concatenate(owners)
    pairs = cKDTree(points).query_pairs(r, output_type="ndarray")
    if len(pairs) == 0:
        return None
    a, b = owner[pairs[:, 0]], owner[pairs[:, 1]]
    k = int(np.argmax(a != b))  # a pair of distinct atoms first, if any
    i, j = sorted((int(a[k]), int(b[k])))
    return i, j, float(np.linalg.norm(points[pairs[k, 0]] - points[pairs[k, 1]]))


def check_geometry(config: Configuration, min_distance: float = 1e-6) -> None:
    """Raises :class:`PyfitError` (prefixed by ``config.source``) for a broken configuration."""
    problem = find_geometry_problem(config, min_distance)
    if problem is not None:
        raise PyfitError(f"{config.source or 'configuration'}: {problem}")


def check_species(configs, species_count: int, source: str | None = None) -> None:
    """Raises :class:`PyfitError` at the first configuration with a type >= species_count."""
    for k, config in enumerate(configs):
        types = np.asarray(config.types)
        if types.size and types.max() >= species_count:
            i = int(np.argmax(types >= species_count))
            where = config.source or (f"{source}: configuration {k}" if source
                                      else f"configuration {k}")
            raise PyfitError(f"{where}: atom id {i + 1} has type {int(types[i])}, expected a "
                             f"type in 0..{species_count - 1} (species_count = {species_count})")
