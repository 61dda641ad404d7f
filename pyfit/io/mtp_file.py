"""MLIP ``.mtp`` potential files (format version 1.1.0): :func:`read_mtp`, :func:`write_mtp`.

Reading accepts trained files and untrained templates, keys in any order, tabs or spaces, and
``{...}`` lists with any spacing (a list may continue over several lines). Every problem is a
:class:`~pyfit.errors.FileFormatError` naming the file, the line and what was expected.

Writing reproduces MLIP-2's own layout (key order, tabs, ``%.15e`` floats, no newline after the
last line), so a file written by MLIP-2 is reproduced byte for byte: MLIP prints each double
``D`` as the correctly rounded 16-significant-digit decimal ``x``; ``x`` parses back to ``D``
(16 digits are within half an ulp of ``D``) and ``D`` prints again as ``x``. Hence
read -> write -> read is bitwise exact for every file written with ``%.15e``. An arbitrary double
(e.g. a freshly fitted coefficient) needs 17 significant digits: ``write_mtp(..., precision=16)``.
"""

from __future__ import annotations

import os
import re

import numpy as np

from pyfit.errors import FileFormatError, read_text
from pyfit.model import RADIAL_BASIS_TYPES, MTPModel

__all__ = ["read_mtp", "write_mtp", "SUPPORTED_VERSIONS"]

SUPPORTED_VERSIONS = ("1.1.0",)

_INT_KEYS = ("species_count", "radial_basis_size", "radial_funcs_count", "alpha_moments_count",
             "alpha_index_basic_count", "alpha_index_times_count", "alpha_scalar_moments")
_FLOAT_KEYS = ("scaling", "min_dist", "max_dist")
_STR_KEYS = ("version", "potential_name", "potential_tag", "radial_basis_type")
_GROUP_KEYS = {"alpha_index_basic": "{mu, a, b, c}", "alpha_index_times": "{i, j, k, out}"}
_LIST_KEYS = {"alpha_moment_mapping": int, "species_coeffs": float, "moment_coeffs": float}
_REQUIRED = ("version", "species_count", "radial_basis_type", "min_dist", "max_dist",
             "radial_basis_size", "radial_funcs_count", "alpha_moments_count",
             "alpha_index_basic_count", "alpha_index_basic", "alpha_index_times_count",
             "alpha_index_times", "alpha_scalar_moments", "alpha_moment_mapping")
_KNOWN = set(_INT_KEYS) | set(_FLOAT_KEYS) | set(_STR_KEYS) | set(_GROUP_KEYS) | set(_LIST_KEYS)

_INT_RE = re.compile(r"[+-]?\d+\Z")
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_NONFINITE_RE = re.compile(r"[+-]?(?:nan|inf|infinity)\Z", re.IGNORECASE)
_LABEL_RE = re.compile(r"(\d+)\s*-\s*(\d+)\Z")
_KEY_RE = re.compile(r"[A-Za-z_]\w*\s*=")


class _Lines:
    """Non-blank lines of the file with their 1-based numbers."""

    def __init__(self, path, text: str):
        self.path = path
        self.items = [(n + 1, ln.strip()) for n, ln in enumerate(text.split("\n")) if ln.strip()]
        self.pos = 0
        self.last_line = self.items[-1][0] if self.items else 1

    def next(self, expected: str):
        if self.pos >= len(self.items):
            self.error(self.last_line, f"file ends too early (truncated?): expected {expected}")
        item = self.items[self.pos]
        self.pos += 1
        return item

    def peek(self):
        return self.items[self.pos] if self.pos < len(self.items) else (None, None)

    def error(self, line, message):
        raise FileFormatError(self.path, line, message)


def _number(lines, n, key, text, kind):
    """Parses one int/float value of ``key``; ``text`` is the value as written."""
    if kind is int:
        if _INT_RE.match(text):
            return int(text)
        lines.error(n, f"expected '{key} = <int>', found '{key} = {text}'")
    if _FLOAT_RE.match(text):
        return float(text)
    if _NONFINITE_RE.match(text):
        lines.error(n, f"expected a finite number for {key}, found '{text}'")
    lines.error(n, f"expected '{key} = <number>', found '{key} = {text}'")


_INT_CHARS = frozenset("0123456789+-")
_FLOAT_CHARS = frozenset("0123456789+-.eE")


def _convert(lines, n, key, tokens, kind, what):
    """Numbers from tokens (fast path with NumPy; on failure, find and name the bad token)."""
    dtype = np.float64 if kind is float else np.int64
    arr = None
    if set("".join(tokens)) <= (_FLOAT_CHARS if kind is float else _INT_CHARS):
        try:
            arr = np.array(tokens, dtype=dtype) if tokens else np.zeros(0, dtype=dtype)
        except (ValueError, OverflowError):
            arr = None
    if arr is not None and (kind is int or np.all(np.isfinite(arr))):
        return arr
    pattern = _INT_RE if kind is int else _FLOAT_RE
    for i, t in enumerate(tokens):
        if not pattern.match(t):
            if kind is float and _NONFINITE_RE.match(t):
                lines.error(n, f"{key}: {what} {i}: expected a finite number, found '{t}'")
            kind_name = "an integer" if kind is int else "a number"
            lines.error(n, f"{key}: {what} {i}: expected {kind_name}, found '{t}'")
    lines.error(n, f"{key}: a value is out of range (overflow)")


def _flat_list(lines, n, key, text, kind, what="entry"):
    if not (text.startswith("{") and text.endswith("}")) or "{" in text[1:-1] or "}" in text[1:-1]:
        example = "{1, 2, 3}" if kind is int else "{1.0e+00, 2.0e+00}"
        lines.error(n, f"expected '{key} = {example}' (a list in braces), found '{key} = {text}'")
    inner = text[1:-1].strip()
    tokens = [t.strip() for t in inner.split(",")] if inner else []
    if "" in tokens:
        lines.error(n, f"{key}: empty {what} {tokens.index('')} (stray comma?) in '{text}'")
    return _convert(lines, n, key, tokens, kind, what)


def _group_list(lines, n, key, text):
    form = _GROUP_KEYS[key]
    if not (text.startswith("{") and text.endswith("}")):
        lines.error(n, f"expected '{key} = {{{form}, ...}}', found '{key} = {text}'")
    inner = text[1:-1].strip()
    if not inner:
        return np.zeros((0, 4), dtype=np.int64)
    if not (inner.startswith("{") and inner.endswith("}")):
        lines.error(n, f"{key}: expected a list of {form} entries, found '{text[:60]}'")
    tokens = []
    for e, part in enumerate(inner[1:-1].split("}")):
        part = part.strip()
        if e > 0:
            if not part.startswith(","):
                lines.error(n, f"{key}: expected ',' before entry {e}")
            part = part[1:].strip()
            if not part.startswith("{"):
                lines.error(n, f"{key}: entry {e}: expected {form}, found '{part[:40]}'")
            part = part[1:]
        items = [t.strip() for t in part.split(",")]
        if len(items) != 4 or "" in items or "{" in part:
            lines.error(n, f"{key}: entry {e}: expected {form} (4 integers), found '{{{part}}}'")
        tokens.extend(items)
    return _convert(lines, n, key, tokens, int, "number").reshape(-1, 4)


def _radial_coeffs(lines, C, K, R):
    rows = []
    for i in range(C):
        for j in range(C):
            label = f"{i}-{j}"
            n, text = lines.next(f"radial_coeffs block '{label}'")
            m = _LABEL_RE.match(text)
            if m is None:
                if text.startswith("{") and (i, j) != (0, 0):
                    prev = f"{i}-{j - 1}" if j else f"{i - 1}-{C - 1}"
                    lines.error(n, f"radial_coeffs block '{prev}' has more than {K} coefficient "
                                   f"lines; expected {K} (radial_funcs_count) then block '{label}'")
                lines.error(n, f"expected radial_coeffs block label '{label}', found '{text}'")
            a, b = int(m.group(1)), int(m.group(2))
            if a >= C or b >= C:
                lines.error(n, f"radial_coeffs block '{a}-{b}': species index >= species_count = "
                               f"{C}; expected block '{label}'")
            if (a, b) != (i, j):
                lines.error(n, f"radial_coeffs blocks out of order: expected '{label}', found "
                               f"'{a}-{b}' (blocks run 0-0, 0-1, ..., {C - 1}-{C - 1})")
            for mu in range(K):
                n, text = lines.next(f"line {mu + 1} of {K} of radial_coeffs block '{label}'")
                if not text.startswith("{"):
                    lines.error(n, f"radial_coeffs block '{label}': expected {K} lines of "
                                   f"{{{R} coefficients}} (radial_funcs_count = {K}), found only "
                                   f"{mu} before '{text[:40]}'")
                row = _flat_list(lines, n, f"radial_coeffs block '{label}'", text, float,
                                 "coefficient")
                if row.size != R:
                    lines.error(n, f"radial_coeffs block '{label}' line {mu + 1}: expected {R} "
                                   f"coefficients (radial_basis_size), found {row.size}")
                rows.append(row)
    n, text = lines.peek()
    if text is not None and text.startswith("{"):
        lines.error(n, f"radial_coeffs block '{C - 1}-{C - 1}' has more than {K} coefficient "
                       f"lines; expected {K} (radial_funcs_count)")
    if n is not None and _LABEL_RE.match(text):
        lines.error(n, f"unexpected radial_coeffs block '{text}': species_count = {C} gives "
                       f"{C * C} blocks, 0-0 to {C - 1}-{C - 1}")
    return np.array(rows).reshape(C, C, K, R)


def read_mtp(path) -> MTPModel:
    """Reads an MLIP ``.mtp`` file (trained or untrained) into an :class:`MTPModel`."""
    lines = _Lines(path, read_text(path))
    n, text = lines.peek()
    if text != "MTP":
        lines.error(n or 1, f"expected 'MTP' on the first line, found '{text or ''}'"
                    + (" (empty file)" if text is None else ""))
    lines.pos += 1
    values: dict = {}
    where: dict = {}
    while lines.pos < len(lines.items):
        n, text = lines.next("a key")
        if text == "radial_coeffs":
            key = "radial_coeffs"
            need = [k for k in ("species_count", "radial_funcs_count", "radial_basis_size")
                    if k not in values]
            if need:
                lines.error(n, f"radial_coeffs must come after {', '.join(need)}")
            for k in ("species_count", "radial_funcs_count", "radial_basis_size"):
                if values[k] < 1:
                    lines.error(where[k], f"expected {k} >= 1, found {k} = {values[k]}")
        elif "=" in text:
            key, _, value = (s.strip() for s in text.partition("="))
            if key == "radial_coeffs":
                lines.error(n, f"expected 'radial_coeffs' alone on its line, found '{text}'")
        else:
            lines.error(n, f"expected 'key = value' or 'radial_coeffs', found '{text}'")
        if key not in _KNOWN and key != "radial_coeffs":
            lines.error(n, f"unknown key '{key}' (not part of the MLIP .mtp format 1.1.0)")
        if key in where:
            lines.error(n, f"duplicate key '{key}' (first given on line {where[key]})")
        where[key] = n
        if key == "radial_coeffs":
            values[key] = _radial_coeffs(lines, values["species_count"],
                                         values["radial_funcs_count"], values["radial_basis_size"])
            continue
        while value.startswith("{") and value.count("{") > value.count("}"):
            _, more = lines.next(f"the rest of the list '{key}' started on line {n}")
            if more == "radial_coeffs" or _KEY_RE.match(more):
                lines.error(n, f"{key}: unbalanced braces: expected '}}' to close the list "
                               f"before the next key '{more[:40]}'")
            value += " " + more
        if key in _INT_KEYS:
            values[key] = _number(lines, n, key, value, int)
        elif key in _FLOAT_KEYS:
            values[key] = _number(lines, n, key, value, float)
        elif key in _GROUP_KEYS:
            values[key] = _group_list(lines, n, key, value)
        elif key in _LIST_KEYS:
            kind = _LIST_KEYS[key]
            values[key] = _flat_list(lines, n, key, value, kind,
                                     "coefficient" if kind is float else "entry")
        else:
            values[key] = value
            if key == "version" and value not in SUPPORTED_VERSIONS:
                lines.error(n, f"unsupported format: expected 'version = 1.1.0', found "
                               f"'version = {value}'")
            if key == "radial_basis_type" and value not in RADIAL_BASIS_TYPES:
                lines.error(n, f"expected 'radial_basis_type = <{'|'.join(RADIAL_BASIS_TYPES)}>', "
                               f"found 'radial_basis_type = {value}'")
    for key in _REQUIRED:
        if key not in values:
            lines.error(lines.last_line, f"missing required key '{key}' (the file ends at line "
                                         f"{lines.last_line}; truncated?)")
    _check_counts(lines, values, where)
    model = MTPModel(
        species_count=values["species_count"], min_dist=values["min_dist"],
        max_dist=values["max_dist"], radial_basis_size=values["radial_basis_size"],
        radial_funcs_count=values["radial_funcs_count"],
        alpha_moments_count=values["alpha_moments_count"],
        alpha_index_basic=values["alpha_index_basic"],
        alpha_index_times=values["alpha_index_times"],
        alpha_moment_mapping=values["alpha_moment_mapping"],
        radial_coeffs=values.get("radial_coeffs"), species_coeffs=values.get("species_coeffs"),
        moment_coeffs=values.get("moment_coeffs"), scaling=values.get("scaling", 1.0),
        radial_basis_type=values["radial_basis_type"],
        potential_name=values.get("potential_name"), potential_tag=values.get("potential_tag"),
        version=values["version"],
    )
    problem = model.find_problem()
    if problem is not None:
        key, message = problem
        lines.error(where.get(key), f"{key}: {message}")
    return model


def _check_counts(lines, values, where):
    def check(list_key, count_key, what):
        if list_key in values and len(values[list_key]) != values[count_key]:
            lines.error(where[list_key], f"{list_key} has {len(values[list_key])} {what} but "
                                         f"{count_key} = {values[count_key]} (line "
                                         f"{where[count_key]}); expected {values[count_key]}")

    for key in ("species_count", "radial_basis_size", "radial_funcs_count", "alpha_moments_count",
                "alpha_scalar_moments"):
        if values[key] < 1:
            lines.error(where[key], f"expected {key} >= 1, found {key} = {values[key]}")
    check("alpha_index_basic", "alpha_index_basic_count", "entries")
    check("alpha_index_times", "alpha_index_times_count", "entries")
    check("alpha_moment_mapping", "alpha_scalar_moments", "entries")
    check("moment_coeffs", "alpha_scalar_moments", "coefficients")
    check("species_coeffs", "species_count", "coefficients")


# --------------------------------------------------------------------------- writing
def write_mtp(model: MTPModel, path, precision: int = 15) -> None:
    """Writes ``model`` as an MLIP-2 ``.mtp`` file (format 1.1.0).

    ``precision`` is the number of decimals of the ``%.<p>e`` floats: 15 is MLIP's own (exact
    for values read from MLIP files); 16 (17 significant digits) is exact for any double.
    """
    model.validate(source=os.fspath(path))
    f = f"%.{int(precision)}e"

    def flist(values):
        return "{" + ", ".join(f % v for v in np.ravel(values)) + "}"

    def ilist(values):
        return "{" + ", ".join(str(int(v)) for v in values) + "}"

    out = ["MTP", f"version = {model.version}"]
    if model.potential_name is not None:
        out.append(f"potential_name = {model.potential_name}")
    if model.is_trained or model.scaling != 1.0:
        out.append(f"scaling = {f % model.scaling}")
    out.append(f"species_count = {model.species_count}")
    if model.potential_tag is not None:
        out.append(f"potential_tag = {model.potential_tag}")
    out += [f"radial_basis_type = {model.radial_basis_type}",
            f"\tmin_dist = {f % model.min_dist}", f"\tmax_dist = {f % model.max_dist}",
            f"\tradial_basis_size = {model.radial_basis_size}",
            f"\tradial_funcs_count = {model.radial_funcs_count}"]
    if model.radial_coeffs is not None:
        out.append("\tradial_coeffs")
        C = model.species_count
        for i in range(C):
            for j in range(C):
                out.append(f"\t\t{i}-{j}")
                out += [f"\t\t\t{flist(row)}" for row in model.radial_coeffs[i, j]]
    out += [f"alpha_moments_count = {model.alpha_moments_count}",
            f"alpha_index_basic_count = {model.alpha_index_basic_count}",
            "alpha_index_basic = {" + ", ".join(ilist(r) for r in model.alpha_index_basic) + "}",
            f"alpha_index_times_count = {model.alpha_index_times_count}",
            "alpha_index_times = {" + ", ".join(ilist(r) for r in model.alpha_index_times) + "}",
            f"alpha_scalar_moments = {model.alpha_scalar_moments}",
            f"alpha_moment_mapping = {ilist(model.alpha_moment_mapping)}"]
    if model.species_coeffs is not None:
        out.append(f"species_coeffs = {flist(model.species_coeffs)}")
    if model.moment_coeffs is not None:
        out.append(f"moment_coeffs = {flist(model.moment_coeffs)}")
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\n".join(out))  # MLIP-2 writes no newline after the last line
