"""The NbMoTaW DFT data set (Li, Zuo, Chen, Ong et al., npj Comput. Mater. 6, 70 (2020);
materialsvirtuallab/maml): JSON lists of records with a pymatgen ``Structure`` dict and VASP
``outputs`` (energy eV, forces eV/Å, stress kbar). pymatgen is not needed.

Stress: VASP sign (positive = compressed) and kbar, so
``PlusStress = stress_kbar / 1602.1766 * volume`` (eV). The three diagonal entries come first;
the order of the three shears is not the same in every file. Investigation (by symmetry: a
structure invariant under a mirror / 2-fold axis along x, y or z forces some shears to vanish,
and the file's zeros must sit where the forbidden components are; and for files without such
structures by correlating the shears with the virial of a pair potential fitted to the forces):

* ``*_Elastic``, ``*_SS``, ``*_Test``, ``*_AIMD``, ``{Nb,Ta,W}_Surface``: VASP order
  ``xx yy zz xy yz zx`` (e.g. Mo_Elastic's xy-sheared cells have their shear in entry 3);
* ``Mo_Surface``: Voigt order ``xx yy zz yz xz xy`` (its records also differ in layout:
  ``tags`` is a string, no ``notes``).

``shear_order="auto"`` (the default) repeats the symmetry test on the file's own records and
picks the order they support; with no decisive record it uses the VASP order (most of the data).
``"vasp"`` or ``"voigt"`` forces an order.
"""

from __future__ import annotations

import itertools
import json
import os

import numpy as np
from ase.data import chemical_symbols

from pyfit.configuration import Configuration, find_geometry_problem
from pyfit.errors import FileFormatError, PyfitError, read_text

__all__ = ["read_nbmotaw_json", "KBAR_PER_EV_A3", "SHEAR_ORDERS"]

KBAR_PER_EV_A3 = 1602.1766
_ELEMENTS = frozenset(chemical_symbols[1:])
#: (a, b) pairs of the stress entries 3, 4, 5 for each order.
SHEAR_ORDERS = {"vasp": ((0, 1), (1, 2), (0, 2)), "voigt": ((1, 2), (0, 2), (0, 1))}


def _get(path, k, record, keys):
    value = record
    for depth, key in enumerate(keys):
        ok = isinstance(value, dict) and key in value if isinstance(key, str) else \
            isinstance(value, list) and -len(value) <= key < len(value)
        if not ok:
            name = ".".join(str(x) for x in keys[: depth + 1])
            raise FileFormatError(path, None, f"record {k}: missing key '{name}'")
        value = value[key]
    return value


def _only_numbers(value) -> bool:
    """True for a number or nested lists of numbers (JSON true/false/null/strings excluded)."""
    if isinstance(value, list):
        return all(map(_only_numbers, value))
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _array(path, k, value, name, shape):
    try:
        arr = np.array(value, dtype=np.float64) if _only_numbers(value) else None
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != shape:
        found = "non-numeric values" if arr is None else f"shape {arr.shape}"
        raise FileFormatError(path, None, f"record {k}: '{name}': expected numbers of shape "
                                          f"{shape}, found {found}")
    if not np.all(np.isfinite(arr)):
        raise FileFormatError(path, None, f"record {k}: '{name}': expected finite numbers, "
                                          "found NaN or inf")
    return arr


def _parse(path, k, record):
    """(cell, positions, symbols, energy, forces, stress6) of one record, validated."""
    if not isinstance(record, dict):
        raise FileFormatError(path, None, f"record {k}: expected an object, found "
                                          f"{type(record).__name__}")
    cell = _array(path, k, _get(path, k, record, ["structure", "lattice", "matrix"]),
                  "structure.lattice.matrix", (3, 3))
    sites = _get(path, k, record, ["structure", "sites"])
    if not isinstance(sites, list) or not sites:
        raise FileFormatError(path, None, f"record {k}: 'structure.sites': expected a non-empty "
                                          "list of sites")
    n = len(sites)
    symbols = []
    for s in range(n):
        species = _get(path, k, record, ["structure", "sites", s, "species"])
        occu = species[0].get("occu", 1) if isinstance(species, list) and len(species) == 1 \
            and isinstance(species[0], dict) else None
        if isinstance(occu, (list, bool)) or not _only_numbers(occu) or not abs(occu - 1) <= 1e-8:
            raise FileFormatError(path, None, f"record {k}: site {s}: expected one fully "
                                              f"occupied species, found {species!r}")
        element = _get(path, k, record, ["structure", "sites", s, "species", 0, "element"])
        if not isinstance(element, str) or element not in _ELEMENTS:
            raise FileFormatError(path, None, f"record {k}: site {s}: expected an element "
                                              f"symbol, found {element!r}")
        symbols.append(element)
    xyz = [_get(path, k, record, ["structure", "sites", s, "xyz"]) for s in range(n)]
    positions = _array(path, k, xyz, "structure.sites[].xyz", (n, 3))
    if "num_atoms" in record and record["num_atoms"] != n:
        raise FileFormatError(path, None, f"record {k}: num_atoms = {record['num_atoms']} but "
                                          f"structure.sites has {n} sites")
    energy = _get(path, k, record, ["outputs", "energy"])
    energy = float(_array(path, k, energy, "outputs.energy", ()))
    forces = _array(path, k, _get(path, k, record, ["outputs", "forces"]), "outputs.forces",
                    (n, 3))
    stress = _array(path, k, _get(path, k, record, ["outputs", "stress"]), "outputs.stress",
                    (6,))
    return cell, positions, symbols, energy, forces, stress


def _invariant(cell, inv, positions, species, signs, tol):
    """Is the structure mapped onto itself by x_d -> signs[d] * x_d plus some translation?"""
    image = positions * signs
    shifts = positions[species == species[0]] - image[0]  # candidate translations
    for i in range(1, len(positions)):
        moved = image[i] + shifts
        frac = (moved[:, None, :] - positions[None, :, :]) @ inv
        frac -= np.round(frac)
        close = np.linalg.norm(frac @ cell, axis=2) < tol
        shifts = shifts[(close & (species == species[i])[None, :]).any(axis=1)]
        if not len(shifts):
            return False
    return True


def _forbidden_shears(cell, positions, symbols, tol=2e-3):
    """Shear pairs (a, b) forced to zero by a mirror or 2-fold axis along x, y or z."""
    species = np.array(symbols)
    inv = np.linalg.inv(cell)
    forbidden = set()
    for signs in itertools.product((1.0, -1.0), repeat=3):
        d = np.array(signs)
        pairs = {(a, b) for a, b in ((0, 1), (1, 2), (0, 2)) if d[a] * d[b] < 0}
        if not pairs or pairs <= forbidden:
            continue
        m = (cell * d) @ inv  # the operation must map the lattice onto itself
        if np.abs(m - np.round(m)).max() > 1e-4:
            continue
        if _invariant(cell, inv, positions, species, d, tol):
            forbidden |= pairs
    return forbidden


def detect_shear_order(parsed, max_votes: int = 8) -> str:
    """'vasp' or 'voigt' from the symmetric records of a file ('vasp' if none decides)."""
    votes = {"vasp": 0, "voigt": 0}
    for cell, positions, symbols, _, _, stress in parsed:
        shear = stress[3:]
        if np.abs(shear).max() == 0:
            continue
        forbidden = _forbidden_shears(cell, positions, symbols)
        if not forbidden or len(forbidden) == 3:
            continue
        tol = 1e-6 + 1e-2 * np.abs(shear).max()
        ok = {name: all(abs(shear[order.index(p)]) <= tol for p in forbidden)
              for name, order in SHEAR_ORDERS.items()}
        if ok["vasp"] != ok["voigt"]:
            votes["vasp" if ok["vasp"] else "voigt"] += 1
            if max(votes.values()) >= max_votes:
                break
    if votes["voigt"] > 3 * votes["vasp"]:
        return "voigt"
    return "vasp"


def read_nbmotaw_json(path, species=None, shear_order: str = "auto",
                      min_distance: float = 1e-6) -> list[Configuration]:
    """Reads an NbMoTaW JSON file into Configurations (``species`` set on each).

    ``species``: element symbols of the type indices (default: the sorted symbols present).
    ``shear_order``: ``"auto"``, ``"vasp"`` (xy yz zx) or ``"voigt"`` (yz xz xy).
    """
    name = os.fspath(path)
    if shear_order not in ("auto", *SHEAR_ORDERS):
        raise PyfitError(f"shear_order: expected 'auto', 'vasp' or 'voigt', found {shear_order!r}")
    try:
        records = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise FileFormatError(name, exc.lineno, f"invalid JSON: {exc.msg} (column "
                                                f"{exc.colno})") from None
    if not isinstance(records, list):
        raise FileFormatError(name, None, "expected a JSON list of records, found "
                                          f"{type(records).__name__}")
    if not records:
        raise FileFormatError(name, None, "the file holds no records")
    parsed = [_parse(name, k, r) for k, r in enumerate(records)]
    present = sorted({s for p in parsed for s in p[2]})
    species = tuple(species) if species is not None else tuple(present)
    index = {s: t for t, s in enumerate(species)}
    order = SHEAR_ORDERS[detect_shear_order(parsed) if shear_order == "auto" else shear_order]
    configs = []
    for k, (cell, positions, symbols, energy, forces, stress) in enumerate(parsed):
        missing = [s for s in symbols if s not in index]
        if missing:
            raise FileFormatError(name, None, f"record {k}: element {missing[0]!r} is not in "
                                              f"species {list(species)}")
        volume = abs(np.linalg.det(cell))
        s = np.diag(stress[:3])
        for (a, b), v in zip(order, stress[3:]):
            s[a, b] = s[b, a] = v
        config = Configuration(
            positions=positions, types=np.array([index[x] for x in symbols], dtype=np.int64),
            cell=cell, pbc=(True, True, True), energy=energy, forces=forces,
            plus_stress=s / KBAR_PER_EV_A3 * volume, species=species, source=f"{name}[{k}]")
        rec = records[k]
        for key in ("_id", "group"):
            if isinstance(rec.get(key), (str, int)):
                config.features[key.lstrip("_")] = str(rec[key])
        problem = find_geometry_problem(config, min_distance)
        if problem is not None:
            raise FileFormatError(name, None, f"record {k}: {problem}")
        configs.append(config)
    return configs
