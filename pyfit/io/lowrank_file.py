"""Factored potential files (``MTP-LOWRANK``, version 1; specification: docs/lowrank-format.md).

:func:`write_lowrank` / :func:`read_lowrank` store an MTP whose radial tensor is kept as
:class:`~pyfit.lowrank.factors.LowRank` (``radial_form = mf``) or
:class:`~pyfit.lowrank.factors.TensorTrain` (``radial_form = tt``) factors; everything else is the
MLIP ``.mtp`` content. Numbers are written with ``%.16e`` (17 significant digits), so a round
trip is bitwise exact. :func:`read_potential` reads either format, chosen by the first line.
Every problem is a :class:`~pyfit.errors.FileFormatError` naming the file, the line and what was
expected.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from pyfit.errors import FileFormatError, PyfitError, read_text
from pyfit.io.mtp_file import (_FLOAT_KEYS, _GROUP_KEYS, _LIST_KEYS, _Lines, _check_counts,
                               _flat_list, _group_list, _number)
from pyfit.lowrank.factors import (UNFOLDINGS, LowRank, TensorTrain, _check_tt_ranks,
                                   unfolding_shape)
from pyfit.lowrank.potential import METHODS
from pyfit.model import MTPModel

__all__ = ["read_lowrank", "write_lowrank", "read_potential", "LowRankFile", "FORMAT_VERSION",
           "file_kind"]

FORMAT_VERSION = "1"
_HEAD = "MTP-LOWRANK"
_FMT = "%.16e"
_INT_KEYS = ("species_count", "radial_basis_size", "radial_funcs_count", "alpha_moments_count",
             "alpha_index_basic_count", "alpha_index_times_count", "alpha_scalar_moments",
             "mf_rank")
_STR_KEYS = ("version", "potential_name", "radial_basis_type", "radial_form", "unfolding",
             "fit_method")
_KNOWN = (set(_INT_KEYS) | set(_FLOAT_KEYS) | set(_STR_KEYS) | set(_GROUP_KEYS) | set(_LIST_KEYS)
          | {"species_names", "tt_ranks", "mf_u", "mf_v"} | {f"tt_core_{k}" for k in range(1, 5)})
_REQUIRED = ("version", "species_count", "radial_basis_type", "min_dist", "max_dist",
             "radial_basis_size", "radial_funcs_count", "radial_form", "alpha_moments_count",
             "alpha_index_basic_count", "alpha_index_basic", "alpha_index_times_count",
             "alpha_index_times", "alpha_scalar_moments", "alpha_moment_mapping",
             "species_coeffs", "moment_coeffs")
#: the fitting methods a file may record (optional ``fit_method`` key) for each radial form
_FIT_METHODS = {form: tuple(m for m, f in METHODS.items() if f == form) for form in ("mf", "tt")}
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


@dataclass
class LowRankFile:
    """What an ``MTP-LOWRANK`` file holds: the model (with the dense radial tensor contracted
    from the factors), the factors and the optional element names."""

    model: MTPModel
    factors: LowRank | TensorTrain
    species_names: tuple[str, ...] | None = None
    fit_method: str | None = None  # mf | rmf | mfra | tf, when the file records it


def file_kind(path) -> str:
    """``"mtp"`` or ``"lowrank"`` from the first non-blank line of ``path``."""
    text = read_text(path)
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip():
            first = line.strip()
            if first == "MTP":
                return "mtp"
            if first == _HEAD:
                return "lowrank"
            raise FileFormatError(path, n, f"expected 'MTP' (MLIP .mtp) or '{_HEAD}' (factored "
                                           f"potential) on the first line, found '{first[:60]}'")
    raise FileFormatError(path, 1, f"empty file: expected 'MTP' or '{_HEAD}' on the first line")


def read_potential(path, species=None):
    """An evaluable potential from an MLIP ``.mtp`` file (:class:`pyfit.MTP`) or a factored
    ``MTP-LOWRANK`` file (:class:`pyfit.lowrank.potential.CompressedMTP`, which remembers its
    factors), chosen by the first line."""
    if file_kind(path) == "mtp":
        from pyfit.potential import MTP

        return MTP.load(path, species=species)
    from pyfit.lowrank.potential import CompressedMTP

    return CompressedMTP.load(path, species=species)


# --------------------------------------------------------------------------- reading
def _matrix_rows(lines, key, rows, cols, what):
    """``rows`` lines ``{x, ...}`` of ``cols`` numbers each, after the line that named ``key``."""
    out = np.empty((rows, cols))
    for i in range(rows):
        n, text = lines.next(f"line {i + 1} of {rows} of {key}")
        if not text.startswith("{"):
            lines.error(n, f"{key}: expected {rows} lines of {{{cols} numbers}} ({what}), found "
                           f"only {i} before '{text[:40]}'")
        row = _flat_list(lines, n, f"{key} line {i + 1}", text, float, "number")
        if row.size != cols:
            lines.error(n, f"{key} line {i + 1}: expected {cols} numbers ({what}), found "
                           f"{row.size}")
        out[i] = row
    n, text = lines.peek()
    if text is not None and text.startswith("{"):
        lines.error(n, f"{key}: more than {rows} lines; expected {rows} ({what})")
    return out


def _need(lines, n, values, key, needed):
    missing = [k for k in needed if k not in values]
    if missing:
        lines.error(n, f"{key} must come after {', '.join(missing)}")


def _name_list(lines, n, text):
    if not (text.startswith("{") and text.endswith("}")):
        lines.error(n, f"expected 'species_names = {{Mo, Nb, ...}}', found "
                       f"'species_names = {text}'")
    names = tuple(t.strip() for t in text[1:-1].split(","))
    for i, name in enumerate(names):
        if not _NAME_RE.match(name):
            lines.error(n, f"species_names: entry {i}: expected an element symbol, found "
                           f"'{name}'")
        if name in names[:i]:
            lines.error(n, f"species_names: '{name}' appears twice; expected distinct names")
    return names


def read_lowrank(path) -> LowRankFile:
    """Reads a factored ``MTP-LOWRANK`` file (see docs/lowrank-format.md)."""
    lines = _Lines(path, read_text(path))
    n, text = lines.peek()
    if text != _HEAD:
        lines.error(n or 1, f"expected '{_HEAD}' on the first line, found '{text or ''}'"
                    + (" (empty file)" if text is None else ""))
    lines.pos += 1
    n, text = lines.next(f"'version = {FORMAT_VERSION}'")
    if text.replace(" ", "") != f"version={FORMAT_VERSION}":
        lines.error(n, f"unsupported format: expected 'version = {FORMAT_VERSION}' on the line "
                       f"after '{_HEAD}', found '{text}'")
    values: dict = {"version": FORMAT_VERSION}
    where: dict = {"version": n}
    cores: dict = {}
    while lines.pos < len(lines.items):
        n, text = lines.next("a key")
        if text in ("mf_u", "mf_v"):
            key, value = text, None
        elif "=" in text:
            key, _, value = (s.strip() for s in text.partition("="))
        else:
            lines.error(n, f"expected 'key = value', 'mf_u' or 'mf_v', found '{text[:60]}'")
        if key not in _KNOWN:
            lines.error(n, f"unknown key '{key}' (not part of the {_HEAD} format version "
                           f"{FORMAT_VERSION})")
        if key in where:
            lines.error(n, f"duplicate key '{key}' (first given on line {where[key]})")
        where[key] = n
        if value is not None:
            while value.startswith("{") and value.count("{") > value.count("}"):
                _, more = lines.next(f"the rest of the list '{key}' started on line {n}")
                value += " " + more
        if key in ("mf_u", "mf_v", "mf_rank", "unfolding", "tt_ranks") or key in cores or \
                key.startswith("tt_core_"):
            form = "tt" if key.startswith("tt_") else "mf"
            _need(lines, n, values, key, ["radial_form"])
            if values["radial_form"] != form:
                lines.error(n, f"'{key}' belongs to radial_form = {form}, but this file has "
                               f"radial_form = {values['radial_form']} (line "
                               f"{where['radial_form']})")
        if key in ("mf_u", "mf_v"):
            _need(lines, n, values, key, ["species_count", "radial_funcs_count",
                                          "radial_basis_size", "mf_rank"])
            values.setdefault("unfolding", "pairs")
            C, K, R = (values[k] for k in ("species_count", "radial_funcs_count",
                                          "radial_basis_size"))
            m, cols = unfolding_shape((C, C, K, R), values["unfolding"])
            rows, label = (m, "rows of the unfolding") if key == "mf_u" else \
                (cols, "columns of the unfolding")
            values[key] = _matrix_rows(lines, key, rows, values["mf_rank"],
                                       f"{rows} {label} x mf_rank = {values['mf_rank']}")
        elif key.startswith("tt_core_"):
            k = int(key[-1])
            _need(lines, n, values, key, ["species_count", "radial_funcs_count",
                                          "radial_basis_size", "tt_ranks"])
            if len(cores) != k - 1:
                lines.error(n, f"expected tt_core_{len(cores) + 1} next, found {key}")
            C, K, R = (values[k2] for k2 in ("species_count", "radial_funcs_count",
                                             "radial_basis_size"))
            full = (1,) + tuple(values["tt_ranks"]) + (1,)
            expected = (full[k - 1], (C, C, K, R)[k - 1], full[k])
            found = tuple(_flat_list(lines, n, key, value, int))
            if found != expected:
                lines.error(n, f"{key}: expected shape {{{', '.join(map(str, expected))}}} "
                               f"(r{k - 1}, n{k}, r{k} from tt_ranks, species_count, "
                               f"radial_funcs_count, radial_basis_size), found "
                               f"{{{', '.join(map(str, found))}}}")
            a, nk, b = expected
            cores[key] = _matrix_rows(lines, key, a * nk, b,
                                      f"r{k - 1} * n{k} = {a * nk} lines of r{k} = {b}")
            cores[key] = cores[key].reshape(a, nk, b)
        elif key in _INT_KEYS:
            values[key] = _number(lines, n, key, value, int)
            if values[key] < 1 and key not in ("alpha_index_times_count",):
                lines.error(n, f"expected {key} >= 1, found {key} = {values[key]}")
            if key == "mf_rank":
                _need(lines, n, values, key, ["species_count", "radial_funcs_count",
                                              "radial_basis_size"])
                C, K, R = (values[k] for k in ("species_count", "radial_funcs_count",
                                              "radial_basis_size"))
                unf = values.setdefault("unfolding", "pairs")
                m, cols = unfolding_shape((C, C, K, R), unf)
                if values[key] > min(m, cols):
                    lines.error(n, f"mf_rank = {values[key]} is larger than the {m} x {cols} "
                                   f"{unf} unfolding allows: expected 1 <= mf_rank <= "
                                   f"{min(m, cols)}")
        elif key in _FLOAT_KEYS:
            values[key] = _number(lines, n, key, value, float)
        elif key in _GROUP_KEYS:
            values[key] = _group_list(lines, n, key, value)
        elif key in _LIST_KEYS:
            kind = _LIST_KEYS[key]
            values[key] = _flat_list(lines, n, key, value, kind,
                                     "coefficient" if kind is float else "entry")
        elif key == "species_names":
            values[key] = _name_list(lines, n, value)
        elif key == "tt_ranks":
            _need(lines, n, values, key, ["species_count", "radial_funcs_count",
                                          "radial_basis_size"])
            ranks = tuple(int(r) for r in _flat_list(lines, n, key, value, int))
            C, K, R = (values[k] for k in ("species_count", "radial_funcs_count",
                                          "radial_basis_size"))
            try:
                values[key] = _check_tt_ranks(ranks, (C, C, K, R))
            except PyfitError as exc:
                lines.error(n, str(exc))
        else:
            values[key] = value
            if key == "radial_basis_type" and value != "RBChebyshev":
                lines.error(n, f"expected 'radial_basis_type = RBChebyshev', found "
                               f"'radial_basis_type = {value}'")
            if key == "radial_form" and value not in ("mf", "tt"):
                lines.error(n, f"expected 'radial_form = mf' or 'radial_form = tt', found "
                               f"'radial_form = {value}'")
            if key == "fit_method":
                _need(lines, n, values, key, ["radial_form"])
                allowed = _FIT_METHODS[values["radial_form"]]
                if value not in allowed:
                    lines.error(n, f"expected 'fit_method = {' | '.join(allowed)}' for "
                                   f"radial_form = {values['radial_form']} (line "
                                   f"{where['radial_form']}), found 'fit_method = {value}'")
            if key == "unfolding":
                if value not in UNFOLDINGS:
                    lines.error(n, f"expected 'unfolding = {' | '.join(UNFOLDINGS)}', found "
                                   f"'unfolding = {value}'")
                if "mf_rank" in where:
                    lines.error(n, f"unfolding must come before mf_rank (line "
                                   f"{where['mf_rank']})")
    for key in _REQUIRED:
        if key not in values:
            lines.error(lines.last_line, f"missing required key '{key}' (the file ends at line "
                                         f"{lines.last_line}; truncated?)")
    _check_counts(lines, values, where)
    C, K, R = (values[k] for k in ("species_count", "radial_funcs_count", "radial_basis_size"))
    if "species_names" in values and len(values["species_names"]) != C:
        lines.error(where["species_names"], f"species_names has {len(values['species_names'])} "
                                            f"names; expected species_count = {C}")
    if values["radial_form"] == "mf":
        for key in ("mf_rank", "mf_u", "mf_v"):
            if key not in values:
                lines.error(lines.last_line, f"missing '{key}' (required by radial_form = mf, "
                                             f"line {where['radial_form']})")
        factors = LowRank(values["mf_u"], values["mf_v"], (C, C, K, R), values["unfolding"])
    else:
        if "tt_ranks" not in values:
            lines.error(lines.last_line, f"missing 'tt_ranks' (required by radial_form = tt, "
                                         f"line {where['radial_form']})")
        if len(cores) != 4:
            lines.error(lines.last_line, f"missing 'tt_core_{len(cores) + 1}' (radial_form = tt "
                                         f"needs tt_core_1 .. tt_core_4)")
        factors = TensorTrain([cores[f"tt_core_{k}"] for k in range(1, 5)])
    model = MTPModel(
        species_count=C, min_dist=values["min_dist"], max_dist=values["max_dist"],
        radial_basis_size=R, radial_funcs_count=K,
        alpha_moments_count=values["alpha_moments_count"],
        alpha_index_basic=values["alpha_index_basic"],
        alpha_index_times=values["alpha_index_times"],
        alpha_moment_mapping=values["alpha_moment_mapping"],
        radial_coeffs=factors.to_dense(), species_coeffs=values["species_coeffs"],
        moment_coeffs=values["moment_coeffs"], scaling=values.get("scaling", 1.0),
        radial_basis_type=values["radial_basis_type"],
        potential_name=values.get("potential_name"),
    )
    problem = model.find_problem(for_evaluation=True)
    if problem is not None:
        key, message = problem
        lines.error(where.get(key), f"{key}: {message}")
    return LowRankFile(model, factors, values.get("species_names"), values.get("fit_method"))


# --------------------------------------------------------------------------- writing
def _model_of(model_or_parts) -> MTPModel:
    if isinstance(model_or_parts, MTPModel):
        return model_or_parts
    model = getattr(model_or_parts, "model", None)
    if isinstance(model, MTPModel):
        return model
    raise PyfitError(f"write_lowrank: expected an MTPModel or a potential with .model, found "
                     f"{type(model_or_parts).__name__}")


def write_lowrank(path, model_or_parts, factors: LowRank | TensorTrain,
                  species_names=None, fit_method: str | None = None) -> None:
    """Writes a factored ``MTP-LOWRANK`` file.

    ``model_or_parts``: an :class:`MTPModel` (or a potential with ``.model``) giving the basis,
    species and moment coefficients (its ``radial_coeffs`` are ignored: the radial tensor is
    ``factors``); ``species_names`` defaults to the potential's ``species`` if it has them;
    ``fit_method`` (``mf``, ``rmf``, ``mfra`` for LowRank factors, ``tf`` for a TensorTrain),
    if given, is recorded (defaults to the potential's ``method``).
    """
    model = _model_of(model_or_parts)
    if species_names is None:
        species_names = getattr(model_or_parts, "species", None)
    if fit_method is None:
        fit_method = getattr(model_or_parts, "method", None)
    where = os.fspath(path)
    model = model.copy()
    if not isinstance(factors, (LowRank, TensorTrain)):
        raise PyfitError(f"{where}: factors: expected a LowRank or TensorTrain, found "
                         f"{type(factors).__name__}")
    C, K, R = model.species_count, model.radial_funcs_count, model.radial_basis_size
    shape = factors.shape
    if isinstance(factors, LowRank) and shape is None:
        factors = LowRank(factors.u, factors.v, (C, C, K, R), factors.unfolding)
        shape = factors.shape
    if tuple(shape) != (C, C, K, R):
        raise PyfitError(f"{where}: factors describe a radial tensor of shape {tuple(shape)}; "
                         f"the model expects (C, C, K, R) = {(C, C, K, R)}")
    form = "mf" if isinstance(factors, LowRank) else "tt"
    if fit_method is not None and fit_method not in _FIT_METHODS[form]:
        raise PyfitError(f"{where}: fit_method: expected {' | '.join(_FIT_METHODS[form])} for "
                         f"{type(factors).__name__} factors, found {fit_method!r}")
    model.radial_coeffs = factors.to_dense()
    model.validate(source=where, for_evaluation=True)
    if species_names is not None:
        species_names = tuple(str(s) for s in species_names)
        if len(species_names) != C or not all(_NAME_RE.match(s) for s in species_names) \
                or len(set(species_names)) != C:
            raise PyfitError(f"{where}: species_names: expected {C} distinct element symbols, "
                             f"found {list(species_names)}")

    def flist(values):
        return "{" + ", ".join(_FMT % v for v in np.ravel(values)) + "}"

    def ilist(values):
        return "{" + ", ".join(str(int(v)) for v in values) + "}"

    out = [_HEAD, f"version = {FORMAT_VERSION}"]
    if model.potential_name is not None:
        out.append(f"potential_name = {model.potential_name}")
    out += [f"scaling = {_FMT % model.scaling}", f"species_count = {C}"]
    if species_names is not None:
        out.append("species_names = {" + ", ".join(species_names) + "}")
    out += ["radial_basis_type = RBChebyshev", f"\tmin_dist = {_FMT % model.min_dist}",
            f"\tmax_dist = {_FMT % model.max_dist}", f"\tradial_basis_size = {R}",
            f"\tradial_funcs_count = {K}"]
    if isinstance(factors, LowRank):
        out.append("\tradial_form = mf")
        if fit_method is not None:
            out.append(f"\tfit_method = {fit_method}")
        out += [f"\tunfolding = {factors.unfolding}",
                f"\tmf_rank = {factors.rank}", "\tmf_u"]
        out += [f"\t\t{flist(row)}" for row in factors.u]
        out.append("\tmf_v")
        out += [f"\t\t{flist(row)}" for row in factors.v]
    else:
        if len(factors.cores) != 4:
            raise PyfitError(f"{where}: expected a tensor train of 4 cores, found "
                             f"{len(factors.cores)}")
        out.append("\tradial_form = tt")
        if fit_method is not None:
            out.append(f"\tfit_method = {fit_method}")
        out.append(f"\ttt_ranks = {ilist(factors.ranks)}")
        for k, g in enumerate(factors.cores, 1):
            out.append(f"\ttt_core_{k} = {ilist(g.shape)}")
            out += [f"\t\t{flist(row)}" for row in g.reshape(-1, g.shape[2])]
    out += [f"alpha_moments_count = {model.alpha_moments_count}",
            f"alpha_index_basic_count = {model.alpha_index_basic_count}",
            "alpha_index_basic = {" + ", ".join(ilist(r) for r in model.alpha_index_basic) + "}",
            f"alpha_index_times_count = {model.alpha_index_times_count}",
            "alpha_index_times = {" + ", ".join(ilist(r) for r in model.alpha_index_times) + "}",
            f"alpha_scalar_moments = {model.alpha_scalar_moments}",
            f"alpha_moment_mapping = {ilist(model.alpha_moment_mapping)}",
            f"species_coeffs = {flist(model.species_coeffs)}",
            f"moment_coeffs = {flist(model.moment_coeffs)}"]
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\n".join(out) + "\n")
