"""The trainer: BFGS / L-BFGS over all parameters of an objective, with exact linear solves,
stopping rules, JSON-lines log, live progress, atomic checkpoints, resume, signals, ensembles.

Objective protocol
------------------
The trainer optimises any object with these members (the dense MTP loss is wrapped by
:class:`DenseObjective`; a ``[compression]`` table is passed, as a plain dict, to
``pyfit.lowrank.objective.make_objective(loss, compression, rng[, species=...])``, whose result
must follow the same protocol; ``rng`` is ``default_rng(seed + model index)``, distinct from
the Generator later given to ``initial``)::

    n_params: int                              # length of the parameter vector x
    initial(rng: np.random.Generator) -> x     # starting point; all randomness from rng
    value(x) -> float                          # the loss
    value_and_grad(x) -> (float, ndarray)      # the loss and its gradient (shape (n_params,))
    start_from(params) -> x                    # OPTIONAL (model.init): the starting point for
                                               # a trained dense parameter vector
    linear_solve(x) -> x'                      # OPTIONAL (absent or None = never called):
                                               # x with the parameters that enter the loss
                                               # linearly replaced by their exact optimum
    to_potential(x) -> potential               # has .save(path) (MLIP .mtp or another format)
                                               # and .evaluate(config) -> obj with .energy,
                                               # .forces, .plus_stress (like pyfit.MTP)
    errors(x) -> pyfit.metrics.ErrorStats      # errors on the objective's training set

All calls must be deterministic functions of ``x`` (and, for ``initial``, of the Generator's
state), so that a fit is reproducible and a resumed fit reaches the same result bit for bit
(for the same thread count). The trainer never modifies ``x`` arrays it passes in.

A fit (per model of an ensemble, model k seeded with ``seed + k``)::

    x = objective.initial(rng) (or start_from(init)); state = initial_state(...)
    repeat until a stopping rule holds (max_iter, relative decrease over rel_window iterations,
    wall time, optimizer converged / line search failed, a signal):
        if linear_solve_every divides the iteration (> 0, or 0 too when the fit starts from
            model.init): x' = linear_solve(x); accepted only if
            the loss decreases; the BFGS memory is kept (reset_after_linear_solve = true
            clears it: on the 20-configuration Cu/Ag/Au test set, level 10, 300 iterations,
            clearing it doubled the final force RMSE of dense BFGS, 0.067 vs 0.033 eV/Å)
        one BFGS iteration; log; every progress_every iterations: train / valid errors;
        every checkpoint_every iterations: atomic checkpoint (tmp file + os.replace)

On SIGINT / SIGTERM the evaluation in progress finishes, the iteration it belongs to is
abandoned (it is repeated identically on resume), the checkpoint and the current potential are
written, and :class:`TrainingInterrupted` is raised.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pyfit.errors import PyfitError
from pyfit.fitting.config import TrainConfig
from pyfit.fitting.driver import make_driver
from pyfit.fitting.optimize import OptimizerState
from pyfit.fitting.report import ProgressLog, errors_record

__all__ = ["DenseObjective", "ModelResult", "FitResult", "TrainingInterrupted", "make_template",
           "build_objective", "train_model", "fit"]


class DenseObjective:
    """The plain MTP loss (:class:`pyfit.fitting.loss.Loss`) as a trainer objective."""

    def __init__(self, loss, species=None):
        self.loss = loss
        self.species = species
        self.n_params = loss.n_params

    def initial(self, rng):
        return self.loss.initial_params(rng)

    def start_from(self, params):
        return np.array(params, dtype=float)

    def value(self, x):
        return self.loss.value(x)

    def value_and_grad(self, x):
        return self.loss.value_and_grad(x)

    def linear_solve(self, x):
        return self.loss.linear_solve(x)

    def to_potential(self, x):
        from pyfit.potential import MTP

        return MTP(self.loss.unpack(x), species=self.species)

    def errors(self, x):
        return self.loss.errors(x)


def make_template(level: int, species_count: int, min_dist: float, max_dist: float,
                  radial_basis_size: int):
    """An untrained MTP of ``level`` (basis generated, MLIP-compatible)."""
    from pyfit.basis import generate_basis
    from pyfit.model import MTPModel

    try:
        b = generate_basis(level)
    except ValueError as exc:
        raise PyfitError(f"model.level: {exc}") from None
    return MTPModel(species_count=species_count, min_dist=min_dist, max_dist=max_dist,
                    radial_basis_size=radial_basis_size,
                    radial_funcs_count=b.radial_funcs_count,
                    alpha_moments_count=b.alpha_moments_count,
                    alpha_index_basic=b.alpha_index_basic, alpha_index_times=b.alpha_index_times,
                    alpha_moment_mapping=b.alpha_moment_mapping, potential_name=f"MTP{level:02d}")


def build_objective(loss, compression: dict | None, rng, species=None):
    """The dense objective, or the compressed one from ``pyfit.lowrank`` when ``compression``
    (the ``[compression]`` table) is given."""
    if compression is None:
        return DenseObjective(loss, species)
    try:
        from pyfit.lowrank.objective import make_objective
    except ImportError as exc:
        raise PyfitError(f"[compression]: low-rank compression is not available in this "
                         f"installation (pyfit.lowrank.objective.make_objective: {exc}); remove "
                         "the [compression] section") from None
    import inspect

    kwargs = {}
    if "species" in inspect.signature(make_objective).parameters:
        kwargs["species"] = species
    return make_objective(loss, dict(compression), rng, **kwargs)


class TrainingInterrupted(PyfitError):
    """A fit stopped by SIGINT / SIGTERM after saving its checkpoint and potential."""

    def __init__(self, signum: int, checkpoint: Path, potential: Path):
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name}: checkpoint {checkpoint}, current potential "
                         f"{potential}; continue with --resume")
        self.signum, self.checkpoint, self.potential = signum, checkpoint, potential


class _Abort(Exception):
    """Raised inside the objective wrapper when a stop signal arrived."""


class SignalGuard:
    """Turns SIGINT / SIGTERM into a flag while active (main thread only; elsewhere inert)."""

    def __init__(self):
        self.signum = 0
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
        return False


@dataclass
class ModelResult:
    index: int
    seed: int
    x: np.ndarray
    loss: float
    iterations: int
    n_evals: int
    stop_reason: str
    wall_time: float
    potential: object
    potential_path: Path
    checkpoint_path: Path
    train_errors: object = None
    valid_errors: object = None


@dataclass
class FitResult:
    models: list[ModelResult] = field(default_factory=list)
    config: TrainConfig | None = None

    @property
    def potential(self):
        """The potential of the first (only) model."""
        return self.models[0].potential

    @property
    def potentials(self) -> list:
        return [m.potential for m in self.models]

    def ensemble(self):
        from pyfit.ensemble import Ensemble

        return Ensemble(self.potentials)


# -------------------------------------------------------------------- checkpoints
def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_checkpoint(path: Path, arrays: dict, meta: dict) -> None:
    """``arrays``: the driver's ``to_dict()``; ``meta``: the trainer's entries."""
    arrays = dict(arrays)
    arrays.update({f"meta.{k}": np.asarray(v) for k, v in meta.items()})

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    _atomic_write(path, write)


def read_checkpoint(path: Path) -> tuple[dict, dict]:
    """``(arrays, meta)``: the driver's arrays and the trainer's ``meta.*`` entries."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if not k.startswith("meta.")}
            meta = {k[5:]: z[k] for k in z.files if k.startswith("meta.")}
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise PyfitError(f"{path}: not a readable pyfit checkpoint ({exc})") from None
    return arrays, meta


def load_checkpoint(path: Path) -> tuple[OptimizerState, dict]:
    """``(state, meta)`` of a checkpoint written by the Euclidean BFGS driver."""
    arrays, meta = read_checkpoint(path)
    try:
        state = OptimizerState.from_dict(arrays, prefix="opt.")
    except (PyfitError, ValueError, KeyError) as exc:
        raise PyfitError(f"{path}: not a readable pyfit checkpoint ({exc})") from None
    return state, meta


def _save_potential(objective, x, path: Path):
    pot = objective.to_potential(x)
    _atomic_write(path, pot.save)
    return pot


# -------------------------------------------------------------------- one model
def _stop_reason(driver, history, opt, elapsed) -> str | None:
    status = driver.stop_status()
    if status is not None:
        return status
    if driver.state.iteration >= opt.max_iter:
        return "max_iter"
    if opt.max_time > 0 and elapsed >= opt.max_time:
        return "max_time"
    w = opt.rel_window
    history = history[driver.rel_tol_from:]
    if opt.rel_tol > 0 and len(history) > w:
        old, new = history[-1 - w], history[-1]
        if old - new < opt.rel_tol * abs(old):
            return "rel_tol"
    return None


def data_digest(configs, weights=None, init=None) -> str:
    """Hash of the training configurations (geometry and labels), their weights and the
    starting coefficients (``model.init``)."""
    import hashlib

    h = hashlib.sha256()
    for c in configs:
        for a in (c.positions, c.types, c.cell, c.pbc, c.energy, c.forces, c.plus_stress):
            h.update(b"-" if a is None else np.ascontiguousarray(a, dtype=float).tobytes())
    if weights is not None:
        h.update(np.ascontiguousarray(weights, dtype=float).tobytes())
    if init is not None:
        h.update(b"init")
        h.update(np.ascontiguousarray(init, dtype=float).tobytes())
    return h.hexdigest()[:16]


def initial_parameters(path, template, loss, rng: np.random.Generator | None = None
                       ) -> np.ndarray:
    """The dense parameter vector of the trained potential ``path`` (``model.init``: MLIP
    ``.mtp`` or ``MTP-LOWRANK``), of the basis of ``template`` or of a lower level (embedded
    exactly, new radial functions random from ``rng``: :mod:`pyfit.fitting.level_up`). MLIP's
    ``scaling`` is folded into the radial coefficients."""
    from pyfit.fitting.level_up import check_settings, embed_lower_level, fold_scaling
    from pyfit.io.lowrank_file import read_potential

    model = read_potential(path).model
    source = f"model.init: {path}"
    check_settings(model, template, source)
    same = all(np.array_equal(np.asarray(getattr(model, key)), np.asarray(getattr(template, key)))
               for key in ("alpha_index_basic", "alpha_index_times", "alpha_moment_mapping"))
    if same and model.radial_funcs_count == template.radial_funcs_count:
        return loss.pack(fold_scaling(model))
    if rng is None:
        rng = np.random.default_rng(0)
    return loss.pack(embed_lower_level(model, template, rng, source=source))


def train_model(objective, config: TrainConfig, index: int, valid, log: ProgressLog,
                guard: SignalGuard, resume: bool = False, ensemble: bool = False,
                digest: str = "", init=None) -> ModelResult:
    """Fits model ``index`` (seed ``config.optimizer.seed + index``); see the module doc.
    ``digest``: :func:`data_digest` of the training data (part of the checkpoint's
    fingerprint). ``init``: dense parameters to start from (``objective.start_from``)
    instead of ``objective.initial(rng)``."""
    from pyfit.metrics import compute_errors

    opt, out = config.optimizer, config.output
    seed = opt.seed + index
    ckpt = config.checkpoint_path(index if ensemble else None)
    pot_path = config.potential_path(index if ensemble else None)
    fingerprint = config.fingerprint(digest)

    def check():
        if guard.signum:
            raise _Abort

    driver = make_driver(objective, opt, check)
    resumed = resume and ckpt.exists()
    if resumed:
        arrays, meta = read_checkpoint(ckpt)
        if "fingerprint" not in meta or str(meta["fingerprint"]) != fingerprint \
                or int(meta["seed"]) != seed:
            found = (f"settings fingerprint {meta['fingerprint']}, seed {int(meta['seed'])}"
                     if "fingerprint" in meta and "seed" in meta else "no fingerprint")
            raise PyfitError(f"{ckpt}: written by a different fit ({found}; now "
                             f"{fingerprint}, seed {seed}); remove it or run without --resume")
        try:
            driver.load(arrays)
        except PyfitError as exc:
            raise PyfitError(f"{ckpt}: {exc}") from None
        history = [float(v) for v in meta["history"]]
        elapsed0, last_linear = float(meta["elapsed"]), int(meta["last_linear"])
        rng = np.random.default_rng(seed)
        rng.bit_generator.state = json.loads(str(meta["rng_state"]))
    else:
        rng = np.random.default_rng(seed)
        driver.start(rng, init)
        history, elapsed0, last_linear = [driver.state.f], 0.0, -1
    t_start = time.perf_counter()

    def elapsed():
        return elapsed0 + time.perf_counter() - t_start

    def meta(reason=""):
        return {"fingerprint": np.str_(fingerprint), "seed": np.int64(seed),
                "model_index": np.int64(index), "history": np.array(history),
                "elapsed": np.float64(elapsed()), "last_linear": np.int64(last_linear),
                "rng_state": np.str_(json.dumps(rng.bit_generator.state)),
                "stop_reason": np.str_(reason)}

    start = {}
    state = driver.state
    if not resumed:  # errors of the starting point, for the log and the table
        start["train"] = errors_record(driver.objective.errors(state.x))
        if valid:
            start["valid"] = errors_record(compute_errors(driver.objective.to_potential(state.x),
                                                          valid, opt.threads or 1))
    log.record("start", model=index, seed=seed, n_params=driver.objective.n_params,
               fingerprint=fingerprint, resumed=resumed, iter=state.iteration, loss=state.f,
               time=elapsed(), **start)
    if start:
        log.iteration(index, 0, state.f, 0.0, start["train"], start.get("valid"))
    if resumed:
        log.message(f"model {index}: resumed from {ckpt} at iteration {state.iteration} "
                    f"(loss {state.f:.6e})")
    every = opt.linear_solve_every
    t_report, it_report = time.perf_counter(), state.iteration
    reason = None
    try:
        while True:
            reason = _stop_reason(driver, history, opt, elapsed())
            if reason is not None:
                break
            event = driver.before_iteration()
            if event:
                log.record(event.pop("event", "driver"), model=index, time=elapsed(), **event)
            k = driver.state.iteration
            # also at iteration 0 of a fit from a given start (--init): after a level-up
            # the new moment coefficients are 0 and their least-squares values are free
            if every and (k > 0 or init is not None) and k % every == 0 and last_linear != k:
                solved = driver.linear_solve()
                if solved is not None:
                    f_before, f_lin, accepted = solved
                    log.record("linear_solve", model=index, iter=k, loss_before=f_before,
                               loss_after=f_lin, accepted=accepted, time=elapsed())
                last_linear = k
            driver.step()
            state = driver.state
            history.append(state.f)
            it = state.iteration
            rec = {"model": index, "iter": it, "loss": state.f, "n_evals": state.n_evals,
                   "alpha": state.alpha, "time": elapsed()}
            train_e = valid_e = None
            if it % out.progress_every == 0:
                train_e = errors_record(driver.objective.errors(state.x))
                if valid:
                    pot = driver.objective.to_potential(state.x)
                    valid_e = errors_record(compute_errors(pot, valid, opt.threads or 1))
                rec.update(train=train_e, valid=valid_e)
            now = time.perf_counter()
            spi = (now - t_report) / max(1, it - it_report)
            if train_e is not None:
                t_report, it_report = now, it
            rec["s_per_iter"] = spi
            log.record("iter", **rec)
            log.iteration(index, it, state.f, spi, train_e, valid_e)
            if out.checkpoint_every and it % out.checkpoint_every == 0:
                save_checkpoint(ckpt, driver.to_dict(), meta())
                # the current potential too: usable (tested, run) while a long fit goes on
                _save_potential(driver.objective, state.x, pot_path)
                log.record("checkpoint", model=index, iter=it, path=str(ckpt),
                           potential=str(pot_path), time=elapsed())
            if guard.signum:
                raise _Abort
    except _Abort:
        state = driver.state
        save_checkpoint(ckpt, driver.to_dict(), meta())
        _save_potential(driver.objective, state.x, pot_path)
        log.record("stop", model=index, iter=state.iteration, reason="signal",
                   signal=signal.Signals(guard.signum).name, loss=state.f, time=elapsed())
        raise TrainingInterrupted(guard.signum, ckpt, pot_path) from None
    state = driver.state
    save_checkpoint(ckpt, driver.to_dict(), meta(reason))
    pot = _save_potential(driver.objective, state.x, pot_path)
    train_stats = driver.objective.errors(state.x)
    valid_stats = compute_errors(pot, valid, opt.threads or 1) if valid else None
    log.record("stop", model=index, iter=state.iteration, reason=reason, loss=state.f,
               n_evals=state.n_evals, time=elapsed(), train=errors_record(train_stats),
               valid=errors_record(valid_stats) if valid_stats else None,
               potential=str(pot_path))
    log.message(f"model {index}: {reason} after {state.iteration} iterations "
                f"({state.n_evals} evaluations, {elapsed():.1f} s), loss {state.f:.6e} "
                f"-> {pot_path}")
    return ModelResult(index, seed, state.x.copy(), state.f, state.iteration, state.n_evals,
                       reason, elapsed(), pot, pot_path, ckpt, train_stats, valid_stats)


# -------------------------------------------------------------------- the API
def _as_config(config) -> TrainConfig:
    from pyfit.fitting.config import config_from_dict, load_config

    if config is None:
        return TrainConfig()
    if isinstance(config, TrainConfig):
        return config
    if isinstance(config, dict):
        return config_from_dict(config)
    if isinstance(config, (str, os.PathLike)):
        return load_config(config)
    raise PyfitError(f"config: expected a TrainConfig, a dict or a TOML path, found "
                     f"{type(config).__name__}")


def fit(dataset=None, config=None, *, valid=None, resume: bool = False, progress: bool = True,
        stream=None, live: bool | None = None) -> FitResult:
    """Fits an MTP (or an ensemble) and writes it; returns a :class:`FitResult`.

    ``dataset``: training configurations (a list of :class:`pyfit.Configuration`, a file path,
    or None to read ``config.data``); ``valid``: validation configurations (optional).
    ``config``: a :class:`~pyfit.fitting.config.TrainConfig`, a dict shaped like the TOML file,
    or the path of a TOML file. ``resume``: continue from the checkpoints (see
    :func:`train_model`). ``progress``: print progress (to ``stream``, default stdout; ``live``
    status line by default on a terminal).
    """
    from pyfit.fitting.data import (check_dataset, load_dataset, make_dataset,
                                    read_config_weights)
    from pyfit.fitting.loss import Loss, LossWeights

    import copy

    cfg = copy.deepcopy(_as_config(config))
    if isinstance(dataset, (str, os.PathLike)):
        cfg.data.train = [os.fspath(dataset)]
        dataset = None
    cfg.validate(require_data=dataset is None)
    species = cfg.model.species or None
    if dataset is None:
        ds = load_dataset(cfg.data, species)
    else:
        ds = make_dataset(dataset, valid, species)
    weights = LossWeights(cfg.loss.energy, cfg.loss.forces, cfg.loss.stress)
    check_dataset(ds, weights)
    if cfg.data.file_weights and dataset is not None:
        raise PyfitError("data.file_weights applies to the files of [data] train; with "
                         "configurations given directly use loss.config_weights")
    cw = ds.train_weights
    if cfg.loss.config_weights:
        cw_file = read_config_weights(cfg.loss.config_weights, len(ds.train))
        cw = cw_file if cw is None else cw * cw_file
    template = make_template(cfg.model.level, ds.species_count, cfg.model.min_dist,
                             cfg.model.max_dist, cfg.model.radial_basis_size)
    loss = Loss(template, ds.train, weights, n_threads=cfg.optimizer.threads,
                config_weights=cw)
    cfg.optimizer.threads = loss.n_threads  # 0 resolved to the available cores
    init = None
    if cfg.model.init:
        init = initial_parameters(cfg.model.init, template, loss,
                                  np.random.default_rng(cfg.optimizer.seed))
    digest = data_digest(ds.train, cw, init)
    log = ProgressLog(cfg.log_path(), stream=stream, live=live, quiet=not progress)
    result = FitResult(config=cfg)
    n = cfg.optimizer.n_models
    try:
        with SignalGuard() as guard:
            for k in range(n):
                rng = np.random.default_rng(cfg.optimizer.seed + k)
                objective = build_objective(loss, cfg.compression, rng, ds.species)
                if k == 0:
                    method = (cfg.compression or {}).get("method")
                    form = (f"{objective.n_params} parameters ({method.upper()}; dense "
                            f"{loss.n_params})" if method else f"{loss.n_params} parameters")
                    log.message(
                        f"fitting {n} model{'s' if n > 1 else ''}: level {cfg.model.level}, "
                        f"{ds.species_count} species"
                        f"{' ' + str(list(ds.species)) if ds.species else ''}, {form}, "
                        f"{len(ds.train)} training / {len(ds.valid)} validation "
                        f"configurations, {loss.n_threads} "
                        f"thread{'' if loss.n_threads == 1 else 's'}")
                result.models.append(train_model(objective, cfg, k, ds.valid, log, guard,
                                                 resume=resume, ensemble=n > 1,
                                                 digest=digest, init=init))
    finally:
        log.close()
    return result
