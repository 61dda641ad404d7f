"""Reading and writing sets of configurations in any supported format, chosen by extension.

* ``.cfg``: MLIP (:mod:`pyfit.io.cfg`); ``species`` (element symbols), when given, is attached to
  every configuration and every type must be < ``len(species)``;
* ``.json``: the NbMoTaW data set (:mod:`pyfit.io.nbmotaw`);
* anything else: ``ase.io.read(path, index=":")``; the type index of an element is its position
  in ``species`` (default: the elements present, sorted by atomic number).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from pyfit.configuration import Configuration, check_species, find_geometry_problem
from pyfit.errors import MissingFileError, PyfitError

__all__ = ["read_configurations", "write_configurations"]


def read_configurations(path, species: Sequence[str] | None = None) -> list[Configuration]:
    """Reads every configuration of ``path`` (format by extension, see the module docstring)."""
    path = Path(path)
    name = os.fspath(path)
    if not path.exists():
        raise MissingFileError(name)
    if path.is_dir():
        raise MissingFileError(name, "is a directory, expected a file")
    suffix = path.suffix.lower()
    if suffix == ".cfg":
        from pyfit.io.cfg import read_cfg

        configs = read_cfg(path)
        if species is not None:
            species = tuple(species)
            check_species(configs, len(species), name)
            for c in configs:
                c.species = species
        return configs
    if suffix == ".json":
        from pyfit.io.nbmotaw import read_nbmotaw_json

        return read_nbmotaw_json(path, species=species)
    return _read_with_ase(path, name, species)


def _read_with_ase(path, name, species):
    import ase.io
    from ase.data import atomic_numbers

    try:
        images = ase.io.read(path, index=":")
    except Exception as exc:  # ase raises many kinds: report them all the same way
        raise PyfitError(f"{name}: cannot read with ase.io.read: {type(exc).__name__}: "
                         f"{exc}") from None
    if not isinstance(images, list):
        images = [images]
    if not images:
        raise PyfitError(f"{name}: no structures found")
    if species is None:
        present = {s for atoms in images for s in atoms.get_chemical_symbols()}
        species = sorted(present, key=lambda s: atomic_numbers.get(s, 0))
    species = tuple(species)
    configs = []
    for k, atoms in enumerate(images):
        try:
            config = Configuration.from_atoms(atoms, species)
        except PyfitError as exc:
            raise PyfitError(f"{name}[{k}]: {exc}") from None
        config.source = f"{name}[{k}]"
        problem = find_geometry_problem(config)
        if problem is not None:
            raise PyfitError(f"{name}[{k}]: {problem}")
        configs.append(config)
    return configs


def write_configurations(path, configs, species: Sequence[str] | None = None) -> None:
    """Writes configurations: ``.cfg`` in MLIP's layout, anything else with ``ase.io.write``
    (element symbols from ``species`` or each configuration's own ``species``)."""
    if isinstance(configs, Configuration):
        configs = [configs]
    name = os.fspath(path)
    if Path(path).suffix.lower() == ".cfg":
        from pyfit.io.cfg import write_cfg

        write_cfg(path, configs)
        return
    import ase.io

    images = [c.to_atoms(species) for c in configs]
    try:
        ase.io.write(path, images)
    except Exception as exc:
        raise PyfitError(f"{name}: cannot write with ase.io.write: {type(exc).__name__}: "
                         f"{exc}") from None
