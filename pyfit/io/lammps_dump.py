"""LAMMPS text dumps and log files -> :class:`~pyfit.configuration.Configuration` objects.

* :func:`read_lammps_dump` reads every frame of a ``dump custom`` text file (``id type`` plus
  ``x y z`` or ``xu yu zu`` or scaled ``xs ys zs``; ``fx fy fz`` when present become the forces),
  orthogonal or triclinic boxes. Atoms are sorted by id. ``species[t - 1]`` is the element of
  LAMMPS type ``t``; pyfit's type index of an atom is its position in ``species``.
* :func:`read_lammps_log` reads the thermo tables of a log file (one list of rows per ``run``).
* :func:`thermo_labels` turns thermo columns (potential energy and the virial-only pressure
  tensor, see below) into ``energy`` and ``plus_stress`` of a configuration.

Stress signs: LAMMPS's pressure ``P_ab`` (bar, positive under compression) from
``compute ID all pressure NULL virial`` (virial only, no kinetic part) is the virial per
volume: MLIP's PlusStress is ``P_ab * V / nktv2p`` (eV; ``nktv2p = 1.6021765e6`` bar A^3/eV in
``units metal``) and ASE's stress is ``-P_ab / nktv2p`` (eV/A^3, positive under tension).
A thermo ``pxx`` without ``NULL virial`` includes the kinetic term and is *not* a label.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from pyfit.configuration import Configuration
from pyfit.errors import FileFormatError, MissingFileError, PyfitError

__all__ = ["read_lammps_dump", "read_lammps_log", "thermo_labels", "lammps_box_to_cell",
           "NKTV2P_METAL"]

NKTV2P_METAL = 1.6021765e6  # LAMMPS units metal: bar * A^3 per eV (force->nktv2p)


def lammps_box_to_cell(lo, hi, tilt=(0.0, 0.0, 0.0)):
    """``(origin, cell)`` from LAMMPS box bounds; ``lo``/``hi`` are the dump file's *bounding*
    box for a triclinic box (as written in ``ITEM: BOX BOUNDS xy xz yz``)."""
    xy, xz, yz = tilt
    xlo_b, ylo_b, zlo = lo
    xhi_b, yhi_b, zhi = hi
    xlo = xlo_b - min(0.0, xy, xz, xy + xz)
    xhi = xhi_b - max(0.0, xy, xz, xy + xz)
    ylo = ylo_b - min(0.0, yz)
    yhi = yhi_b - max(0.0, yz)
    cell = np.array([[xhi - xlo, 0.0, 0.0], [xy, yhi - ylo, 0.0], [xz, yz, zhi - zlo]])
    return np.array([xlo, ylo, zlo]), cell


def read_lammps_dump(path, species: Sequence[str]) -> list[Configuration]:
    """Every frame of a LAMMPS ``dump custom`` text file as a Configuration (see module doc).

    The timestep of each frame is stored in ``features["timestep"]``; the positions are shifted
    so that the box origin is 0 and wrapped into the cell.
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise MissingFileError(name)
    species = tuple(species)
    with open(name) as fh:
        lines = fh.read().splitlines()
    configs: list[Configuration] = []
    k, n_lines = 0, len(lines)

    def expect(line_no, prefix):
        if line_no >= n_lines or not lines[line_no].startswith(prefix):
            found = lines[line_no] if line_no < n_lines else "end of file"
            raise FileFormatError(name, line_no + 1, f"expected {prefix!r}, found {found!r}")

    while k < n_lines:
        if not lines[k].strip():
            k += 1
            continue
        start = k
        expect(k, "ITEM: TIMESTEP")
        try:
            timestep = int(lines[k + 1])
            expect(k + 2, "ITEM: NUMBER OF ATOMS")
            n = int(lines[k + 3])
        except (ValueError, IndexError):
            raise FileFormatError(name, k + 2, "expected an integer timestep / atom count") \
                from None
        expect(k + 4, "ITEM: BOX BOUNDS")
        header = lines[k + 4].split()[3:]
        triclinic = "xy" in header
        try:
            rows = [[float(v) for v in lines[k + 5 + d].split()] for d in range(3)]
        except (ValueError, IndexError):
            raise FileFormatError(name, k + 6, "expected three rows of box bounds") from None
        lo = [r[0] for r in rows]
        hi = [r[1] for r in rows]
        tilt = tuple(r[2] for r in rows) if triclinic else (0.0, 0.0, 0.0)
        origin, cell = lammps_box_to_cell(lo, hi, tilt)
        pbc = tuple(flag.startswith("p") for flag in header[-3:]) if len(header) >= 3 \
            else (True, True, True)
        expect(k + 8, "ITEM: ATOMS")
        columns = lines[k + 8].split()[2:]
        if k + 9 + n > n_lines:
            raise FileFormatError(name, n_lines, f"frame at line {start + 1}: expected {n} atom "
                                  f"lines, the file ends after {n_lines - k - 9}")
        try:
            data = np.array([[float(v) for v in lines[k + 9 + i].split()] for i in range(n)])
        except ValueError as exc:
            raise FileFormatError(name, k + 10, f"atom lines: {exc}") from None
        if data.shape != (n, len(columns)):
            raise FileFormatError(name, k + 10, f"expected {len(columns)} columns "
                                  f"({' '.join(columns)}) on each of {n} atom lines")
        col = {c: i for i, c in enumerate(columns)}
        for needed in ("id", "type"):
            if needed not in col:
                raise FileFormatError(name, k + 9, f"dump has no {needed!r} column "
                                      f"(columns: {' '.join(columns)})")
        data = data[np.argsort(data[:, col["id"]])]
        if all(c in col for c in ("x", "y", "z")):
            pos = data[:, [col["x"], col["y"], col["z"]]] - origin
        elif all(c in col for c in ("xu", "yu", "zu")):
            pos = data[:, [col["xu"], col["yu"], col["zu"]]] - origin
        elif all(c in col for c in ("xs", "ys", "zs")):
            pos = data[:, [col["xs"], col["ys"], col["zs"]]] @ cell
        else:
            raise FileFormatError(name, k + 9, "dump has no positions (x y z, xu yu zu or "
                                  f"xs ys zs); columns: {' '.join(columns)}")
        frac = pos @ np.linalg.inv(cell)
        for d in range(3):
            if pbc[d]:
                frac[:, d] -= np.floor(frac[:, d])
        pos = frac @ cell
        lmp_types = data[:, col["type"]].astype(np.int64)
        if lmp_types.min() < 1 or lmp_types.max() > len(species):
            raise PyfitError(f"{name}:{k + 10}: LAMMPS atom types {lmp_types.min()}.."
                             f"{lmp_types.max()} but species = {list(species)} names types "
                             f"1..{len(species)}")
        forces = None
        if all(c in col for c in ("fx", "fy", "fz")):
            forces = data[:, [col["fx"], col["fy"], col["fz"]]].copy()
        configs.append(Configuration(positions=pos, types=lmp_types - 1, cell=cell, pbc=pbc,
                                     forces=forces, species=species,
                                     features={"timestep": str(timestep)},
                                     source=f"{name}:{start + 1}"))
        k += 9 + n
    if not configs:
        raise PyfitError(f"{name}: no frames found (expected a LAMMPS text dump)")
    return configs


def read_lammps_log(path) -> list[list[dict[str, float]]]:
    """The thermo tables of a LAMMPS log: one list of ``{column: value}`` rows per run.

    A table starts at a header line beginning with ``Step`` and ends at the first line that is
    not a row of numbers of the same length (``Loop time ...``, a warning, ...).
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise MissingFileError(name)
    tables: list[list[dict[str, float]]] = []
    header = None
    with open(name) as fh:
        for line in fh:
            words = line.split()
            if words and words[0] == "Step":
                header = words
                tables.append([])
                continue
            if header is None:
                continue
            if len(words) == len(header):
                try:
                    tables[-1].append(dict(zip(header, map(float, words))))
                    continue
                except ValueError:
                    pass
            if line.startswith("WARNING"):
                continue
            header = None
    return tables


def thermo_labels(config: Configuration, row: dict[str, float], energy: str = "PotEng",
                  pressure: Sequence[str] = ("c_pvir[1]", "c_pvir[2]", "c_pvir[3]",
                                             "c_pvir[4]", "c_pvir[5]", "c_pvir[6]"),
                  nktv2p: float = NKTV2P_METAL) -> Configuration:
    """A copy of ``config`` with ``energy = row[energy]`` and ``plus_stress`` from the six
    virial-only pressure columns ``pxx pyy pzz pxy pxz pyz`` (bar) of ``row``.

    The pressure must be the virial part only (``compute pvir all pressure NULL virial``); see
    the module docstring for the signs.
    """
    out = config.copy()
    try:
        out.energy = float(row[energy])
        pxx, pyy, pzz, pxy, pxz, pyz = (float(row[c]) for c in pressure)
    except KeyError as exc:
        raise PyfitError(f"{config.source or 'configuration'}: thermo row has no column {exc}; "
                         f"columns: {' '.join(row)}") from None
    p = np.array([[pxx, pxy, pxz], [pxy, pyy, pyz], [pxz, pyz, pzz]])
    out.plus_stress = p * config.volume / nktv2p
    return out
