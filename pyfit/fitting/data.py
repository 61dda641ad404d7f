"""Training data for a fit: reading the files of a config, splitting, and validation with clear
errors (unknown elements, missing forces, NaN labels, empty sets)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pyfit.configuration import Configuration
from pyfit.errors import PyfitError

__all__ = ["Dataset", "load_dataset", "check_dataset", "split_dataset", "read_config_weights",
           "file_weight_of"]


@dataclass
class Dataset:
    train: list[Configuration]
    valid: list[Configuration]
    species: tuple[str, ...] | None  # element of each type index, when known
    species_count: int
    train_weights: np.ndarray | None = None  # per training configuration (data.file_weights)


def _read(path, species):
    from pyfit.io.dataset import read_configurations

    configs = read_configurations(path, species=species)
    if not configs:
        raise PyfitError(f"{path}: the file holds no configurations")
    return configs


def _elements(paths) -> tuple[str, ...] | None:
    """Union of the elements of the non-.cfg files (sorted by atomic number), or None."""
    from ase.data import atomic_numbers

    present = set()
    for path in paths:
        if Path(path).suffix.lower() != ".cfg":
            for c in _read(path, None):
                present.update(c.species[t] for t in np.unique(c.types))
    if not present:
        return None
    return tuple(sorted(present, key=lambda s: atomic_numbers.get(s, 0)))


def split_dataset(configs: Sequence, fraction: float, seed: int):
    """(train, valid): ``round(fraction * n)`` configurations (at least one when fraction > 0)
    chosen by ``np.random.default_rng(seed)``; both keep the original order."""
    n = len(configs)
    n_valid = max(1, int(round(fraction * n))) if fraction > 0 else 0
    if n_valid >= n:
        raise PyfitError(f"data.valid_fraction = {fraction}: holding out {n_valid} of {n} "
                         "configurations leaves none to train on")
    chosen = set(np.random.default_rng(seed).permutation(n)[:n_valid].tolist())
    train = [c for k, c in enumerate(configs) if k not in chosen]
    valid = [c for k, c in enumerate(configs) if k in chosen]
    return train, valid


def file_weight_of(path, patterns: dict) -> float:
    """The weight of training file ``path`` from ``{pattern: weight}`` (``fnmatch`` on the file
    name, or on the end of the path when the pattern has a ``/``); 1 when none matches. A file
    matched by two patterns with different weights is an error."""
    hits = {pat: w for pat, w in patterns.items() if _matches(path, pat)}
    if len(set(hits.values())) > 1:
        raise PyfitError(f"data.file_weights: {path} matches {sorted(hits)} with different "
                         f"weights {sorted(set(hits.values()))}; make the patterns exclusive")
    return next(iter(hits.values())) if hits else 1.0


def load_dataset(data_config, species: Sequence[str] | None) -> Dataset:
    """Reads ``data_config.train`` / ``valid`` (a :class:`~pyfit.fitting.config.DataConfig`)."""
    paths = list(data_config.train) + list(data_config.valid)
    for p in paths:
        if not Path(p).exists():
            from pyfit.errors import MissingFileError

            raise MissingFileError(p)
    if not species:
        species = _elements(paths)
    patterns = dict(getattr(data_config, "file_weights", {}) or {})
    weights = {p: file_weight_of(p, patterns) for p in data_config.train}
    unused = [pat for pat in patterns if not any(_matches(p, pat) for p in data_config.train)]
    if unused:
        raise PyfitError(f"data.file_weights: pattern {unused[0]!r} matches none of the "
                         f"training files ({', '.join(Path(p).name for p in data_config.train)})")
    train, w = [], []
    for p in data_config.train:
        configs = _read(p, species)
        train += configs
        w += [weights[p]] * len(configs)
    valid = [c for p in data_config.valid for c in _read(p, species)]
    if data_config.valid_fraction > 0:  # the weights follow their configurations
        kept, held = split_dataset(list(zip(train, w)), data_config.valid_fraction,
                                   data_config.split_seed)
        train, w = [c for c, _ in kept], [x for _, x in kept]
        valid = [c for c, _ in held]
    ds = make_dataset(train, valid, species)
    if patterns:
        ds.train_weights = np.array(w, dtype=float)
        if not ds.train_weights.sum() > 0:
            raise PyfitError("data.file_weights: every training configuration has weight 0")
    return ds


def _matches(path, pattern: str) -> bool:
    """``fnmatch`` of the file name, or (pattern with a ``/``) of the path's tail."""
    from fnmatch import fnmatchcase

    if "/" not in pattern:
        return fnmatchcase(Path(path).name, pattern)
    path = Path(path).as_posix()
    return fnmatchcase(path, pattern) or fnmatchcase(path, "*/" + pattern.lstrip("/"))


def make_dataset(train, valid=(), species: Sequence[str] | None = None) -> Dataset:
    train, valid = list(train), list(valid or [])
    if not train:
        raise PyfitError("the training set is empty: no configurations to fit")
    if species:
        species = tuple(species)
        count = len(species)
    else:
        known = {c.species for c in train + valid if c.species}
        if len(known) > 1:
            raise PyfitError(f"the configurations disagree on the species order "
                             f"({sorted(known)}); give the species list ([model] species)")
        species = known.pop() if known else None
        # species the training set never shows could not be fitted: count them from it only
        count = len(species) if species else 1 + max(int(np.max(c.types)) for c in train
                                                     if len(c.types))
    return Dataset(train, valid, species, count)


def _where(c, k, role):
    return c.source or f"{role} configuration {k}"


def check_dataset(ds: Dataset, weights) -> None:
    """Raises :class:`PyfitError` for data that cannot be fitted with the loss ``weights``."""
    for role, configs in (("training", ds.train), ("validation", ds.valid)):
        for k, c in enumerate(configs):
            where = _where(c, k, role)
            if c.n_atoms == 0:
                raise PyfitError(f"{where}: configuration without atoms")
            types = np.asarray(c.types)
            if types.min() < 0 or types.max() >= ds.species_count:
                bad = int(types[(types < 0) | (types >= ds.species_count)][0])
                names = f" {list(ds.species)}" if ds.species else ""
                raise PyfitError(f"{where}: atom type {bad} is not one of the "
                                 f"{ds.species_count} species{names} of the model")
            if c.energy is not None and not math.isfinite(c.energy):
                raise PyfitError(f"{where}: the energy label is NaN or inf")
            for name, value in (("force", c.forces), ("stress", c.plus_stress)):
                if value is not None and not np.all(np.isfinite(value)):
                    raise PyfitError(f"{where}: the {name} labels contain NaN or inf")
            if role == "training":
                if weights.energy > 0 and c.energy is None:
                    raise PyfitError(f"{where}: no energy label, but the energy weight is "
                                     f"{weights.energy}; label it or set [loss] energy = 0")
                if weights.forces > 0 and c.forces is None:
                    raise PyfitError(f"{where}: no forces, but the force weight is "
                                     f"{weights.forces}; add forces or set [loss] forces = 0")


def read_config_weights(path, n: int) -> np.ndarray:
    """One weight per training configuration, from a text file (one number a line)."""
    from pyfit.errors import FileFormatError, read_text

    values = []
    for line_no, line in enumerate(read_text(path).splitlines(), 1):
        text = line.split("#")[0].strip()
        if not text:
            continue
        try:
            w = float(text)
        except ValueError:
            raise FileFormatError(path, line_no, f"expected a number, found {text!r}") from None
        if not math.isfinite(w) or w < 0:
            raise FileFormatError(path, line_no, f"expected a finite weight >= 0, found {w}")
        values.append(w)
    if len(values) != n:
        raise FileFormatError(path, None, f"expected {n} weights (one per training "
                                          f"configuration), found {len(values)}")
    return np.array(values)
