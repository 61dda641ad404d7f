"""MLIP ``.cfg`` configuration files: :func:`read_cfg`, :func:`write_cfg`.

Blocks of a configuration (between ``BEGIN_CFG`` and ``END_CFG``)::

    Size / Supercell / AtomData: id type cartes_x ... / Energy / PlusStress: xx ... / Feature

Decisions:

* ``Supercell`` may have 1, 2 or 3 rows: the configuration is periodic along those rows and open
  in the other directions; ``pbc = (True,) * k + (False,) * (3 - k)``. The missing rows of
  ``cell`` are filled by :func:`pyfit.configuration.complete_cell` (perpendicular, not written
  back). No ``Supercell``: ``cell = None``, non-periodic. The writer writes the periodic rows
  only, in order (so ``pbc = (False, True, True)`` reads back as ``(True, True, False)``).
* ``AtomData`` columns may come in any order: ``id``, ``type``, ``cartes_x/y/z`` or
  ``direct_x/y/z`` (fractional, needs 3 Supercell rows), optional ``fx fy fz``, and extra
  per-atom columns from :data:`KNOWN_EXTRA_COLUMNS` (or ``extra_columns=``), kept in
  ``Configuration.extra``. Any other column name is an error.
* ``PlusStress`` follows the component names of its header (default ``xx yy zz yz xz xy``).
* ``Feature name value`` lines go to ``features[name]`` (a repeated name keeps every value,
  joined by newlines). The other MLIP blocks in :data:`KNOWN_OTHER_BLOCKS` (``EnergyWeight``), and
  those named in ``other_blocks=``, are kept verbatim in ``features["@<header>"]`` (data lines
  joined by newlines) and written back as blocks. Any other block is an error, so that a
  misspelt ``Energy`` cannot silently drop a label.

Errors name the file, the line and what was expected; each configuration is also checked with
:func:`pyfit.configuration.find_geometry_problem` (finite values, no overlapping atoms).
"""

from __future__ import annotations

import os
import re

import numpy as np

from pyfit.configuration import (Configuration, complete_cell, find_geometry_problem,
                                 find_overlap)
from pyfit.errors import FileFormatError, PyfitError, read_text

__all__ = ["read_cfg", "write_cfg", "KNOWN_EXTRA_COLUMNS", "KNOWN_OTHER_BLOCKS"]

#: Per-atom columns other than id/type/coordinates/forces that are accepted by default.
KNOWN_EXTRA_COLUMNS = ("nbh_grades",)
#: Blocks pyfit does not use but keeps (in ``features["@<name>"]``) and writes back.
KNOWN_OTHER_BLOCKS = ("EnergyWeight",)
_STRESS_NAMES = ("xx", "yy", "zz", "yz", "xz", "xy")
_STRESS_INDEX = {"xx": (0, 0), "yy": (1, 1), "zz": (2, 2), "yz": (1, 2), "xz": (0, 2),
                 "xy": (0, 1)}
_CARTES = ("cartes_x", "cartes_y", "cartes_z")
_DIRECT = ("direct_x", "direct_y", "direct_z")
_FORCES = ("fx", "fy", "fz")
_EXTRA_FORMAT = {"nbh_grades": " %16.5f"}


def _names(header: str) -> list[str]:
    """Column names after ``AtomData:`` / ``PlusStress:`` (``AtomData :`` also accepted)."""
    names = header.split()[1:]
    return names[1:] if names[:1] == [":"] else names


def _is_data(s: str) -> bool:
    return bool(s) and (s[0] in "0123456789+-." or s[:3].lower() in ("nan", "inf"))


class _Reader:
    def __init__(self, path, text, extra_columns, other_blocks, min_distance):
        self.path = os.fspath(path)
        self.lines = text.split("\n")
        self.allowed = set(KNOWN_EXTRA_COLUMNS) | set(extra_columns)
        self.other = set(KNOWN_OTHER_BLOCKS) | set(other_blocks)
        self.min_distance = min_distance

    def error(self, line, message):
        raise FileFormatError(self.path, line, message)

    def read(self):
        configs, lines, i = [], self.lines, 0
        while i < len(lines):
            s = lines[i].strip()
            if not s:
                i += 1
            elif s == "BEGIN_CFG":
                config, i = self.config(i)
                configs.append(config)
            else:
                self.error(i + 1, f"expected BEGIN_CFG, found '{s[:60]}'")
        if not configs:
            self.error(1, "no configuration found: expected BEGIN_CFG (empty file?)")
        return configs

    def block(self, j):
        """Data lines (line number, stripped text) following the header at index j."""
        data, k = [], j + 1
        lines = self.lines
        while k < len(lines):
            s = lines[k].strip()
            if s and not _is_data(s):
                break
            if s:
                data.append((k + 1, s))
            k += 1
        return data, k

    def config(self, start):
        lines, first = self.lines, start + 1
        seen, blocks, features = {}, {}, {}
        j = start + 1
        while True:
            if j >= len(lines):
                last = max((k + 1 for k, ln in enumerate(lines) if ln.strip()), default=first)
                self.error(last, f"file ends inside the configuration that starts at line {first}: "
                                 "expected END_CFG (truncated file?)")
            s = lines[j].strip()
            if not s:
                j += 1
                continue
            if s == "END_CFG":
                break
            if s == "BEGIN_CFG":
                self.error(j + 1, f"expected END_CFG for the configuration that starts at line "
                                  f"{first}, found BEGIN_CFG")
            head = s.split()[0]
            name = "AtomData" if head.startswith("AtomData") else \
                "PlusStress" if head.startswith("PlusStress") else head
            data, k = self.block(j)
            if name == "Feature":
                parts = s.split(None, 2)
                if len(parts) < 2:
                    self.error(j + 1, "expected 'Feature <name> <value>', found 'Feature'")
                value = parts[2] if len(parts) > 2 else ""
                key = parts[1]
                features[key] = features[key] + "\n" + value if key in features else value
                if data:
                    self.error(data[0][0], f"unexpected line after Feature: '{data[0][1][:60]}'")
            elif name in ("Size", "Supercell", "AtomData", "Energy", "PlusStress"):
                if name in seen:
                    self.error(j + 1, f"duplicate {name} block (first on line {seen[name]})")
                seen[name] = j + 1
                blocks[name] = (j + 1, s, data)
            elif head.rstrip(":") in self.other:
                features["@" + s] = "\n".join(t for _, t in data)
            else:
                self.error(j + 1, f"unexpected line '{s[:60]}': expected a block name (Size, "
                                  f"Supercell, AtomData, Energy, PlusStress, Feature, "
                                  f"{', '.join(sorted(self.other))}) or END_CFG "
                                  "(other_blocks= keeps more blocks)")
            j = k
        config = self.assemble(first, blocks, features)
        problem = find_geometry_problem(config, self.min_distance)
        if problem is not None:  # overlapping atoms: point at the line of the second one
            hit = find_overlap(config.positions, config.cell, config.pbc, self.min_distance) \
                if problem.startswith("atoms ") else None
            line = blocks["AtomData"][2][hit[1]][0] if hit else first
            self.error(line, f"configuration starting at line {first}: {problem}")
        return config, j + 1

    def single(self, blocks, name, what, count):
        n, _, data = blocks[name]
        if not data:
            found = self.lines[n].strip() if n < len(self.lines) else "end of file"
            self.error(n + 1, f"{name}: expected {what} on the line after '{name}', found "
                              f"'{found[:60]}'")
        if len(data) > 1:
            self.error(data[1][0], f"{name}: expected one line ({what}), found another: "
                                   f"'{data[1][1][:60]}'")
        line, text = data[0]
        tokens = text.split()
        if len(tokens) != count:
            self.error(line, f"{name}: expected {what}, found '{text[:80]}'")
        return line, tokens

    def check_numbers(self, items):
        """Raises at the first ``(line, what, token)`` that is not a finite number."""
        for line, what, token in items:
            try:
                value = float(token)
            except ValueError:
                self.error(line, f"{what}: expected a number, found '{token}'")
            if not np.isfinite(value):
                self.error(line, f"{what}: expected a finite number, found '{token}'")

    def floats(self, line, tokens, what):
        try:
            values = np.array(tokens, dtype=np.float64)
            if np.all(np.isfinite(values)):
                return values
        except ValueError:
            pass
        self.check_numbers((line, what, t) for t in tokens)

    def assemble(self, first, blocks, features):
        if "Size" not in blocks:
            self.error(first, "configuration has no Size block: expected 'Size' and the number "
                              "of atoms")
        line, (tok,) = self.single(blocks, "Size", "the number of atoms (an integer)", 1)
        if not re.fullmatch(r"\+?\d+", tok):
            self.error(line, f"Size: expected the number of atoms (an integer >= 1), found '{tok}'")
        size = int(tok)
        if size < 1:
            self.error(line, "Size: expected at least 1 atom, found 0")
        if "AtomData" not in blocks:
            self.error(first, "configuration has no AtomData block: expected 'AtomData: id type "
                              "cartes_x cartes_y cartes_z ...'")
        rows = None
        if "Supercell" in blocks:
            n, _, data = blocks["Supercell"]
            if not 1 <= len(data) <= 3:
                self.error(n if not data else data[3][0],
                           f"Supercell: expected 1 to 3 rows of 3 numbers (lattice vectors), "
                           f"found {len(data)}")
            rows = []
            for ln, text in data:
                tokens = text.split()
                if len(tokens) != 3:
                    self.error(ln, f"Supercell: expected 3 numbers (a lattice vector), found "
                                   f"'{text[:60]}'")
                rows.append(self.floats(ln, tokens, "Supercell"))
            gram = np.linalg.det(np.array(rows) @ np.array(rows).T)
            if not gram > 1e-12:
                self.error(n, "Supercell: the lattice vectors are zero or linearly dependent")
        positions, types, forces, extra = self.atoms(blocks["AtomData"], size, rows)
        cell, pbc = None, (False, False, False)
        if rows is not None:
            pbc = tuple(d < len(rows) for d in range(3))
            cell = np.zeros((3, 3))
            cell[: len(rows)] = rows
            if len(rows) < 3:
                cell = complete_cell(cell, pbc, positions)
        energy = plus_stress = None
        if "Energy" in blocks:
            line, tokens = self.single(blocks, "Energy", "the energy (one number, eV)", 1)
            energy = float(self.floats(line, tokens, "Energy")[0])
        if "PlusStress" in blocks:
            n, header, _ = blocks["PlusStress"]
            names = _names(header) or list(_STRESS_NAMES)
            if sorted(names) != sorted(_STRESS_NAMES):
                self.error(n, f"PlusStress: expected the components xx yy zz yz xz xy, found "
                              f"'{' '.join(names)}'")
            line, tokens = self.single(blocks, "PlusStress", "6 numbers (" + " ".join(names)
                                       + ", eV)", 6)
            values = self.floats(line, tokens, "PlusStress")
            plus_stress = np.zeros((3, 3))
            for name, v in zip(names, values):
                a, b = _STRESS_INDEX[name]
                plus_stress[a, b] = plus_stress[b, a] = v
        return Configuration(positions=positions, types=types, cell=cell, pbc=pbc, energy=energy,
                             forces=forces, plus_stress=plus_stress, features=features,
                             extra=extra, source=f"{self.path}:{first}")

    def atoms(self, block, size, rows):
        n, header, data = block
        columns = _names(header)
        known = {"id", "type", *_CARTES, *_DIRECT, *_FORCES}
        for c in columns:
            if c not in known and c not in self.allowed:
                self.error(n, f"AtomData: unknown column '{c}'; expected id, type, "
                              f"cartes_x/y/z or direct_x/y/z, fx/fy/fz or one of "
                              f"{sorted(self.allowed)} (extra_columns= accepts more)")
            if columns.count(c) > 1:
                self.error(n, f"AtomData: column '{c}' appears twice")
        coords = _CARTES if "cartes_x" in columns else _DIRECT
        for group, need in ((("id", "type"), True), (coords, True), (_FORCES, False)):
            present = [c for c in group if c in columns]
            if (need or present) and len(present) != len(group):
                missing = [c for c in group if c not in columns]
                self.error(n, f"AtomData: missing column(s) {' '.join(missing)} (header "
                              f"'{header[:100]}')")
        if "cartes_x" in columns and any(c in columns for c in _DIRECT):
            self.error(n, "AtomData: expected either cartes_* or direct_* coordinates, not both")
        if coords is _DIRECT and (rows is None or len(rows) != 3):
            self.error(n, "AtomData: direct_* (fractional) coordinates need a Supercell with 3 "
                          "lattice vectors")
        if len(data) != size:
            if len(data) > size:
                self.error(data[size][0], f"AtomData: more atom lines than Size = {size}")
            after = data[-1][0] + 1 if data else n + 1
            self.error(after, f"AtomData: expected {size} atom lines (Size = {size}), found "
                              f"{len(data)}")
        width = len(columns)
        tokens = [t.split() for _, t in data]
        for (ln, text), row in zip(data, tokens):
            if len(row) != width:
                self.error(ln, f"AtomData: expected {width} values ({' '.join(columns)}), "
                               f"found {len(row)}: '{text[:80]}'")
        try:
            table = np.array(tokens, dtype=np.float64)
        except ValueError:
            table = None
        if table is None or not np.all(np.isfinite(table)):
            self.check_numbers((ln, f"AtomData column '{c}'", tok) for (ln, _), row in
                               zip(data, tokens) for c, tok in zip(columns, row))
        col = {c: k for k, c in enumerate(columns)}
        ids = table[:, col["id"]]
        wrong = np.nonzero(ids != np.arange(1, size + 1))[0]
        if wrong.size:
            r = wrong[0]
            self.error(data[r][0], f"AtomData: atom ids must run 1..{size} in order: expected "
                                   f"{r + 1}, found '{tokens[r][col['id']]}'")
        t = table[:, col["type"]]
        wrong = np.nonzero((t < 0) | (t != np.round(t)))[0]
        if wrong.size:
            r = wrong[0]
            self.error(data[r][0], f"AtomData: type must be a non-negative integer (0-based "
                                   f"species index), found '{tokens[r][col['type']]}'")
        xyz = table[:, [col[c] for c in coords]]
        positions = xyz @ np.array(rows) if coords is _DIRECT else xyz
        forces = table[:, [col[c] for c in _FORCES]] if "fx" in col else None
        extra = {c: table[:, k].copy() for c, k in col.items() if c not in known}
        return positions, t.astype(np.int64), forces, extra


def read_cfg(path, *, min_distance: float = 1e-6, extra_columns=(),
             other_blocks=()) -> list[Configuration]:
    """Reads every configuration of an MLIP ``.cfg`` file.

    ``min_distance`` (Å): atoms closer than this (periodic images included) are an error.
    ``extra_columns``: AtomData column names accepted besides :data:`KNOWN_EXTRA_COLUMNS`.
    ``other_blocks``: block names kept in ``features`` besides :data:`KNOWN_OTHER_BLOCKS`.
    """
    return _Reader(path, read_text(path), extra_columns, other_blocks, min_distance).read()


# --------------------------------------------------------------------------- writing
def _format(config: Configuration, include_extra: bool, k: int) -> str:
    where = config.source or f"configuration {k}"
    problem = find_geometry_problem(config, min_distance=0.0)
    if problem is not None:
        raise PyfitError(f"{where}: cannot write: {problem}")
    n = config.n_atoms
    out = ["BEGIN_CFG", " Size", f"    {n}"]
    if config.cell is not None and any(config.pbc):
        out.append(" Supercell")
        out += [" %16.6f %13.6f %13.6f" % tuple(config.cell[d]) for d in range(3)
                if config.pbc[d]]
    fmt = " %13d %4d %14.6f %13.6f %13.6f"
    cols = [range(1, n + 1), config.types.tolist(), *config.positions.T.tolist()]
    head = " AtomData:  id type       cartes_x      cartes_y      cartes_z"
    if config.forces is not None:
        fmt += " %12.6f %11.6f %11.6f"
        cols += config.forces.T.tolist()
        head += "           fx          fy          fz"
    if include_extra:
        for name, values in config.extra.items():
            if not re.fullmatch(r"[A-Za-z_]\w*", name):
                raise PyfitError(f"{where}: cannot write extra column {name!r}: expected a "
                                 "name of letters, digits and '_'")
            fmt += _EXTRA_FORMAT.get(name, " %16.8f")
            cols.append(np.asarray(values, dtype=np.float64).tolist())
            head += "%17s" % name
    out.append(head)
    out += [fmt % row for row in zip(*cols)]
    if config.energy is not None:
        out += [" Energy", " %23.12f" % config.energy]
    if config.plus_stress is not None:
        s = config.plus_stress
        out.append(" PlusStress:  xx          yy          zz          yz          xz          xy")
        out.append(" %15.5f %11.5f %11.5f %11.5f %11.5f %11.5f"
                   % (s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]))
    other, features = [], []  # other blocks ("@<header>") first, then Feature lines
    for name, value in config.features.items():
        if name.startswith("@"):
            other += [" " + name[1:]] + ["    " + v for v in str(value).split("\n") if v.strip()]
        elif not name or any(c.isspace() for c in name):
            raise PyfitError(f"{where}: cannot write feature {name!r}: expected a name "
                             "without spaces")
        else:
            features += [f" Feature   {name}\t{v}" for v in str(value).split("\n")]
    out += other + features + ["END_CFG", "", ""]
    return "\n".join(out)


def write_cfg(path, configs, include_extra: bool = False) -> None:
    """Writes configurations in MLIP-2's ``.cfg`` layout (6 decimals in positions/forces,
    12 in energies, 5 in PlusStress). ``include_extra`` also writes ``Configuration.extra``
    columns (e.g. nbh_grades)."""
    if isinstance(configs, Configuration):
        configs = [configs]
    text = "".join(_format(c, include_extra, k) for k, c in enumerate(configs))
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
