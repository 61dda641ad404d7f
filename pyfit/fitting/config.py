"""Training configuration: a TOML file read into dataclasses, with strict checking.

Example (every key optional except ``data.train`` and ``model.level``; defaults shown)::

    extends = "base.toml"          # optional, before any section: start from the settings of
                                   # that file (relative to this one; its own relative paths
                                   # stay relative to it) and change only what this file sets:
                                   # keys replace the parent's key by key, a [compression] table
                                   # replaces the parent's whole [compression]. Chains allowed.

    [data]
    train = ["train.cfg"]          # one path or a list; relative to the TOML file
    valid = []                     # validation files (errors reported, never fitted)
    valid_fraction = 0.0           # or: hold out this fraction of the training set ...
    split_seed = 0                 # ... chosen by np.random.default_rng(split_seed)
    file_weights = {}              # per-file configuration weights by file-name pattern, e.g.
                                   # { "*_Surface.json" = 10, "*_AIMD.json" = 4 } (others: 1)

    [model]
    level = 16
    species = ["Nb", "Mo", "Ta", "W"]  # element of each type index; default: from the data
    min_dist = 2.0                 # Å, start of the radial basis
    max_dist = 5.0                 # Å, cutoff
    radial_basis_size = 8
    init = ""                      # start from this trained potential (.mtp or .mtplr) of the
                                   # same or a lower level (embedded exactly, pyfit.fitting.
                                   # level_up) instead of random coefficients; factored fits
                                   # start from its truncation (SVD / TT-SVD) + a linear solve

    [loss]
    energy = 1.0                   # MLIP-2's defaults
    forces = 0.01
    stress = 0.001
    config_weights = ""            # "" = all 1; or a text file: one weight per training config

    [optimizer]
    method = "bfgs"                # or "lbfgs"
    max_iter = 1000
    rel_tol = 1e-3                 # stop when the loss decreased by less than this fraction ...
    rel_window = 50                # ... over the last rel_window iterations (MLIP's rule)
    max_time = 0.0                 # seconds of wall time, 0 = no limit
    linear_solve_every = 50        # exact least squares of the linear parameters, 0 = never
    reset_after_linear_solve = false  # clear the BFGS memory after an accepted solve
    seed = 0                       # model k of an ensemble uses seed + k
    threads = 0                    # 0 = all available cores
    n_models = 1                   # ensemble size
    c1 = 1e-4                      # strong-Wolfe line search constants
    c2 = 0.9
    memory = 20                    # L-BFGS pairs

    [output]
    potential = "pot.mtp"          # ensembles: pot.0.mtp, pot.1.mtp, ...
    log = ""                       # JSON lines; default: the potential path with .jsonl
    checkpoint = ""                # npz; default: the potential path with .ckpt.npz
    checkpoint_every = 10          # iterations; 0 = only at the end and on a signal
                                   # (the potential file is rewritten with each checkpoint)
    progress_every = 10            # iterations between error reports

    [compression]                  # optional, passed as a dict to pyfit.lowrank (if installed)

Unknown sections or keys, and values of the wrong type, raise :class:`PyfitError` naming the
file, section and key (and listing the allowed keys). Relative paths are relative to the TOML
file that sets them. A parent that cannot be read, or a cycle of ``extends``, is an error naming
the files involved. A file that extends a compressed one cannot remove its [compression]: make
the dense model the parent instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from pyfit.errors import FileFormatError, MissingFileError, PyfitError

__all__ = ["TrainConfig", "DataConfig", "ModelConfig", "LossConfig", "OptimizerConfig",
           "OutputConfig", "load_config", "config_from_dict", "apply_overrides"]


@dataclass
class DataConfig:
    train: list[str] = field(default_factory=list)
    valid: list[str] = field(default_factory=list)
    valid_fraction: float = 0.0
    split_seed: int = 0
    file_weights: dict = field(default_factory=dict)


@dataclass
class ModelConfig:
    level: int = 0
    species: list[str] = field(default_factory=list)
    min_dist: float = 2.0
    max_dist: float = 5.0
    radial_basis_size: int = 8
    init: str = ""


@dataclass
class LossConfig:
    energy: float = 1.0
    forces: float = 0.01
    stress: float = 0.001
    config_weights: str = ""


@dataclass
class OptimizerConfig:
    method: str = "bfgs"
    max_iter: int = 1000
    rel_tol: float = 1e-3
    rel_window: int = 50
    max_time: float = 0.0
    linear_solve_every: int = 50
    reset_after_linear_solve: bool = False
    seed: int = 0
    threads: int = 0
    n_models: int = 1
    c1: float = 1e-4
    c2: float = 0.9
    memory: int = 20


@dataclass
class OutputConfig:
    potential: str = "pot.mtp"
    log: str = ""
    checkpoint: str = ""
    checkpoint_every: int = 10
    progress_every: int = 10


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    compression: dict | None = None  # [compression] table, for pyfit.lowrank

    def validate(self, require_data: bool = True) -> "TrainConfig":
        """Range checks across fields (types are checked when parsing); ``require_data``:
        training files must be named (not so when the data are given directly to ``fit``)."""
        m, o, lo, d = self.model, self.optimizer, self.loss, self.data
        if m.level == 0:
            raise PyfitError("config: model.level is required ([model] level = 16, or --level)")
        checks = [
            (m.level >= 2 and m.level % 2 == 0, "model.level", "an even level 2..28", m.level),
            (0 < m.min_dist < m.max_dist, "model.min_dist/max_dist",
             "0 < min_dist < max_dist", (m.min_dist, m.max_dist)),
            (m.radial_basis_size >= 2, "model.radial_basis_size", ">= 2", m.radial_basis_size),
            (len(set(m.species)) == len(m.species), "model.species", "distinct elements",
             m.species),
            (o.method in ("bfgs", "lbfgs"), "optimizer.method", "'bfgs' or 'lbfgs'", o.method),
            (o.max_iter >= 0, "optimizer.max_iter", ">= 0", o.max_iter),
            (o.rel_tol >= 0, "optimizer.rel_tol", ">= 0", o.rel_tol),
            (o.rel_window >= 1, "optimizer.rel_window", ">= 1", o.rel_window),
            (o.max_time >= 0, "optimizer.max_time", ">= 0 (seconds)", o.max_time),
            (o.linear_solve_every >= 0, "optimizer.linear_solve_every", ">= 0",
             o.linear_solve_every),
            (o.seed >= 0, "optimizer.seed", ">= 0", o.seed),
            (o.threads >= 0, "optimizer.threads", ">= 0 (0 = all cores)", o.threads),
            (o.n_models >= 1, "optimizer.n_models", ">= 1", o.n_models),
            (0 < o.c1 < o.c2 < 1, "optimizer.c1/c2", "0 < c1 < c2 < 1", (o.c1, o.c2)),
            (o.memory >= 1, "optimizer.memory", ">= 1", o.memory),
            (not (m.init and o.n_models > 1), "model.init / optimizer.n_models",
             "n_models = 1 with model.init (every member would start from the same "
             "coefficients and be the same fit)", (m.init, o.n_models)),
            (0 <= d.valid_fraction < 1, "data.valid_fraction", "0 <= fraction < 1",
             d.valid_fraction),
            (not (d.valid and d.valid_fraction > 0), "data.valid / data.valid_fraction",
             "only one of them", (d.valid, d.valid_fraction)),
            (self.output.checkpoint_every >= 0, "output.checkpoint_every", ">= 0",
             self.output.checkpoint_every),
            (self.output.progress_every >= 1, "output.progress_every", ">= 1",
             self.output.progress_every),
        ]
        for name in ("energy", "forces", "stress"):
            value = getattr(lo, name)
            checks.append((value >= 0 and value == value, f"loss.{name}", ">= 0", value))
        for ok, key, expected, found in checks:
            if not ok:
                raise PyfitError(f"config: {key}: expected {expected}, found {found!r}")
        if require_data and not d.train:
            raise PyfitError("config: data.train: no training files given ([data] train = "
                             "[...], or --train)")
        return self

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self, data_digest: str = "") -> str:
        """Hash of the settings that change the iterates (not the stopping limits, output
        paths, thread count or data file names) and of ``data_digest`` (the training data
        themselves), stored in checkpoints to refuse resuming a different fit."""
        d = self.as_dict()
        for key in ("max_iter", "max_time", "rel_tol", "rel_window", "threads", "n_models"):
            d["optimizer"].pop(key)
        d.pop("output")
        d.pop("data")  # file weights are in the data digest
        d["model"].pop("init")  # the starting coefficients are in the data digest
        d["loss"].pop("config_weights")  # the weights themselves are in the data digest
        d["data_digest"] = data_digest
        text = json.dumps(d, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def potential_path(self, index: int | None = None) -> Path:
        """The output potential (``pot.3.mtp`` for model 3 of an ensemble)."""
        return _indexed(Path(self.output.potential), index)

    def log_path(self) -> Path:
        p = self.output.log
        return Path(p) if p else Path(self.output.potential).with_suffix(".jsonl")

    def checkpoint_path(self, index: int | None = None) -> Path:
        p = self.output.checkpoint
        base = Path(p) if p else Path(self.output.potential).with_suffix(".ckpt.npz")
        return _indexed(base, index)


def _indexed(path: Path, index: int | None) -> Path:
    if index is None:
        return path
    name = path.name
    if name.endswith(".ckpt.npz"):
        return path.with_name(f"{name[:-9]}.{index}.ckpt.npz")
    return path.with_name(f"{path.stem}.{index}{path.suffix}")


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig,
             "optimizer": OptimizerConfig, "output": OutputConfig}
_PATH_KEYS = {("data", "train"), ("data", "valid"), ("loss", "config_weights"),
              ("model", "init"), ("output", "potential"), ("output", "log"),
              ("output", "checkpoint")}


def _type_name(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)


def _convert(section: str, key: str, annotation: str, value, source: str = "config"):
    where = f"{source}: [{section}] {key}"
    if annotation == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise PyfitError(f"{where}: expected an integer, found {_type_name(value)} "
                             f"({value!r})")
        return value
    if annotation == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PyfitError(f"{where}: expected a number, found {_type_name(value)} "
                             f"({value!r})")
        return float(value)
    if annotation == "bool":
        if not isinstance(value, bool):
            raise PyfitError(f"{where}: expected true or false, found "
                             f"{_type_name(value)} ({value!r})")
        return value
    if annotation == "str":
        if not isinstance(value, str):
            raise PyfitError(f"{where}: expected a string, found {_type_name(value)} "
                             f"({value!r})")
        return value
    if annotation == "list[str]":
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise PyfitError(f"{where}: expected a string or an array of strings, "
                             f"found {value!r}")
        return list(value)
    if annotation == "dict":  # data.file_weights: {pattern: weight}
        if not isinstance(value, dict):
            raise PyfitError(f"{where}: expected a table of file-name patterns and "
                             f"weights, e.g. {{ \"*_Surface.json\" = 10 }}, found "
                             f"{_type_name(value)} ({value!r})")
        out = {}
        for pattern, w in value.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 0 \
                    or w == float("inf"):
                raise PyfitError(f"{where}: {pattern!r}: expected a finite weight "
                                 f">= 0, found {w!r}")
            out[str(pattern)] = float(w)
        return out
    raise AssertionError(annotation)  # pragma: no cover


def config_from_dict(table: dict, base_dir: str | os.PathLike | None = None,
                     source: str = "config") -> TrainConfig:
    """A :class:`TrainConfig` from a parsed TOML table (relative paths resolved against
    ``base_dir`` when given). Raises :class:`PyfitError` for unknown or mistyped keys."""
    if not isinstance(table, dict):
        raise PyfitError(f"{source}: expected a table of sections")
    if "extends" in table:
        raise PyfitError(f"{source}: 'extends' is read only from TOML files (load_config); "
                         f"pass the merged settings instead")
    allowed_sections = list(_SECTIONS) + ["compression"]
    cfg = TrainConfig()
    for section, content in table.items():
        if section not in allowed_sections:
            raise PyfitError(f"{source}: unknown section [{section}]; allowed sections: "
                             f"{', '.join('[' + s + ']' for s in allowed_sections)}")
        if not isinstance(content, dict):
            raise PyfitError(f"{source}: {section} must be a table ([{section}]), found "
                             f"{_type_name(content)}")
        if section == "compression":
            cfg.compression = dict(content)
            continue
        cls = _SECTIONS[section]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for key, value in content.items():
            if key not in fields:
                hint = (" ('extends' goes at the top of the file, before any [section])"
                        if key == "extends" else "")
                raise PyfitError(f"{source}: unknown key {key!r} in [{section}]; allowed keys: "
                                 f"{', '.join(fields)}{hint}")
            value = _convert(section, key, fields[key].type, value, source)
            if base_dir is not None and (section, key) in _PATH_KEYS:
                value = _resolve(value, base_dir)
            values[key] = value
        setattr(cfg, section, cls(**values))
    return cfg


def apply_overrides(cfg: TrainConfig, overrides: dict) -> TrainConfig:
    """A copy of ``cfg`` with ``{section: {key: value}}`` replaced (checked like TOML values;
    ``None`` values are ignored)."""
    table = cfg.as_dict()
    compression = table.pop("compression")
    for section, values in overrides.items():
        for key, value in values.items():
            if value is not None:
                if section not in table or key not in table[section]:
                    raise PyfitError(f"unknown setting {section}.{key}")
                table[section][key] = value
    new = config_from_dict(table, source="settings")
    new.compression = compression
    return new


def _resolve(value, base_dir):
    if isinstance(value, list):
        return [_resolve(v, base_dir) for v in value]
    if not value:
        return value
    p = Path(os.path.expanduser(value))
    return str(p if p.is_absolute() else Path(base_dir) / p)


def load_config(path) -> TrainConfig:
    """Reads and validates a training TOML file (following its ``extends`` chain)."""
    table = _load_table(Path(path), [])
    return config_from_dict(table, source=os.fspath(path)).validate()


def _read_toml(path: Path, named_by: str = "") -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise PyfitError("reading TOML needs Python >= 3.11 or the 'tomli' package") from None
    name = os.fspath(path)
    by = f" (named by 'extends' in {named_by})" if named_by else ""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise MissingFileError(name, f"no such file{by}") from None
    except IsADirectoryError:
        raise MissingFileError(name, f"is a directory, expected a TOML file{by}") from None
    except PermissionError:
        raise MissingFileError(name, f"permission denied{by}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FileFormatError(name, None, f"invalid TOML: {exc}{by}") from None
    except UnicodeDecodeError:
        raise FileFormatError(name, None, f"not a text file (invalid UTF-8){by}") from None


def _load_table(path: Path, chain: list[Path]) -> dict:
    """The settings of ``path`` merged over those of its ``extends`` parents, with every
    relative path resolved against the file that set it. ``chain``: the files that led here
    (child first), for cycle detection and messages."""
    name = os.fspath(path)
    table = _read_toml(path, os.fspath(chain[-1]) if chain else "")
    real = path.resolve()
    parent_name = table.pop("extends", None)
    # keys and types of this file alone, so that a mistake names the file that has it (the
    # paths are resolved below, once, in the table that is merged)
    config_from_dict(table, source=name)
    own = {}
    for section, content in table.items():
        own[section] = dict(content)
        if section == "compression":
            continue
        for key, value in content.items():
            if (section, key) in _PATH_KEYS:
                own[section][key] = _resolve(value, real.parent)
    if parent_name is None:
        return own
    if not isinstance(parent_name, str) or not parent_name:
        raise PyfitError(f"{name}: extends: expected the path of another training TOML file "
                         f"(a non-empty string), found {_type_name(parent_name)} "
                         f"({parent_name!r})")
    parent = Path(os.path.expanduser(parent_name))
    if not parent.is_absolute():
        parent = real.parent / parent
    seen = [p.resolve() for p in chain] + [real]
    if parent.resolve() in seen:
        loop = " -> ".join(os.fspath(p) for p in [*chain, path, parent])
        raise PyfitError(f"{name}: extends: cycle of 'extends' ({loop}); expected a chain "
                         f"that ends in a file without 'extends'")
    merged = _load_table(parent, [*chain, path])
    for section, content in own.items():
        if section == "compression":
            merged[section] = content
        else:
            merged.setdefault(section, {}).update(content)
    return merged
