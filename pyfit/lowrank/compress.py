"""Compression of trained potentials, rank scans and singular-value spectra.

- :func:`compress`: truncate the radial tensor of a trained MTP (SVD of the unfolding for
  mf / rmf / mfra, TT-SVD for tf) and optionally refit on data ("fine-tuning") with the method's
  optimiser: MF/TF BFGS, R-MF Riemannian BFGS, or MFRA (start from the truncation at rank
  ``r0`` and augment to the requested rank).
- :func:`rank_scan`: compress at a sweep of ranks, fine-tune each on training data and measure
  the loss on validation data; :func:`pick_ranks` applies the paper's rule (the "optimal" rank
  has the lowest validation loss among ranks that remove at least 20 % of the radial
  parameters) and finds the rank closest to 50 % compression.
- :func:`spectrum`: singular values of the unfolded radial tensor with the relative error and
  parameter count of every truncation rank — how compressible a potential is at a glance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pyfit.errors import PyfitError
from pyfit.lowrank.factors import unfold, unfolding_shape
from pyfit.lowrank.objective import (MatrixObjective, TTObjective, rank_for_compression,
                                     tt_ranks_for_compression)
from pyfit.lowrank.potential import CompressedMTP

__all__ = ["compress", "CompressionResult", "rank_scan", "ScanRow", "pick_ranks", "spectrum",
           "format_spectrum", "format_scan", "plot_scan", "plot_spectrum", "METHOD_NAMES"]

METHOD_NAMES = ("mf", "rmf", "mfra", "tf")


@dataclass
class CompressionResult:
    potential: CompressedMTP
    method: str
    ranks: tuple
    n_radial_dense: int
    n_radial: int
    truncation_error: float  # ||c - c_r||_F / ||c||_F of the truncation (before fine-tuning)
    loss_dense: float | None = None  # on the fine-tuning data
    loss_truncated: float | None = None
    loss_final: float | None = None
    n_iter: int = 0
    message: str = ""
    history: list = field(default_factory=list)

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("method", "n_radial_dense", "n_radial",
                                             "truncation_error", "loss_dense", "loss_truncated",
                                             "loss_final", "n_iter", "message")}
        out["ranks"] = list(self.ranks)
        out["removed"] = 1 - self.n_radial / self.n_radial_dense
        return out


def _model_and_species(potential):
    from pyfit.model import MTPModel

    if isinstance(potential, MTPModel):
        return potential, None
    model = getattr(potential, "model", None)
    if model is None:
        raise PyfitError(f"compress: expected a potential or an MTPModel, found "
                         f"{type(potential).__name__}")
    return model, getattr(potential, "species", None)


def _objective(loss, model, method, rank, ranks, compression, unfolding, species):
    shape = (model.species_count, model.species_count, model.radial_funcs_count,
             model.radial_basis_size)
    if method not in METHOD_NAMES:
        raise PyfitError(f"method: expected one of {', '.join(METHOD_NAMES)}, found {method!r}")
    given = [name for name, v in (("rank", rank), ("ranks", ranks), ("compression", compression))
             if v is not None]
    if len(given) != 1:
        raise PyfitError(f"compress: give exactly one of rank (mf, rmf, mfra), ranks (tf) or "
                         f"compression, found {', '.join(given) or 'none'}")
    if method == "tf":
        if rank is not None:
            raise PyfitError("method tf takes TT ranks (r1, r2, r3), not one rank")
        ranks = tt_ranks_for_compression(shape, compression) if ranks is None else tuple(ranks)
        return TTObjective(loss, ranks, species=species)
    if ranks is not None:
        raise PyfitError(f"method {method} takes one rank, not TT ranks")
    if rank is None:
        rank = rank_for_compression(shape, compression, unfolding, method)
    return MatrixObjective(loss, rank, unfolding, species=species, method=method)


def compress(potential, method: str = "mf", rank: int | None = None, ranks=None,
             compression: float | None = None, unfolding: str = "pairs", configs=None,
             max_iter: int = 100, linear_solve_every: int = 50, weights=None,
             n_threads: int = 0, sufficient_descent: float = 1e-4, r0: int | None = None,
             delta_r: int = 1, every: int | None = None, callback=None,
             loss=None, seed: int = 0, species=None) -> CompressionResult:
    """Compresses a trained potential (``pyfit.MTP``, ``CompressedMTP`` or ``MTPModel``).

    Exactly one of ``rank`` (mf / rmf / mfra), ``ranks`` (tf) or ``compression`` (the fraction
    of radial parameters to remove). With ``configs`` (labelled configurations) or a prebuilt
    ``loss``, the truncated potential is refitted for ``max_iter`` iterations (linear
    parameters re-solved first and every ``linear_solve_every`` iterations). MFRA starts from the
    rank-``r0`` truncation (default ``max(1, rank // 2)``) and adds ``delta_r`` ranks every
    ``every`` iterations (default: reaching ``rank`` halfway through ``max_iter``).

    An *untrained* template (e.g. from ``pyfit basis``) with data is fitted from a random start
    (``np.random.default_rng(seed)``) by the method's optimiser; ``truncation_error`` is then
    NaN and ``loss_truncated`` is the loss at the starting point.
    """
    from pyfit.fitting.loss import Loss

    model, own_species = _model_and_species(potential)
    species = own_species if species is None else species
    model.validate(for_evaluation=model.is_trained)
    if loss is None and configs is not None:
        loss = Loss(model, configs, weights, n_threads=n_threads)
    if not model.is_trained:
        if loss is None:
            raise PyfitError("compress: the potential is untrained (a template): give training "
                             "data to fit the compressed potential from a random start")
        obj = _objective(loss, model, method, rank, ranks, compression, unfolding, species)
        return _fit_from_scratch(obj, loss, model, method, species, seed, max_iter,
                                 linear_solve_every, sufficient_descent, r0, delta_r, every,
                                 callback)
    dense_params = np.concatenate([np.ravel(model.radial_coeffs), model.species_coeffs,
                                   model.moment_coeffs])
    if loss is None:  # truncation only: a loss is still needed for the objective's shapes
        obj = _objective(_ShapeOnly(model), model, method, rank, ranks, compression, unfolding,
                         species)
    else:
        obj = _objective(loss, model, method, rank, ranks, compression, unfolding, species)
    c = model.radial_coeffs
    norm = float(np.linalg.norm(c)) or 1.0
    x0 = obj.from_dense(dense_params)
    trunc_err = float(np.linalg.norm(obj.radial(x0) - c)) / norm
    ranks_out = (obj.rank,) if isinstance(obj, MatrixObjective) else obj.ranks
    if loss is None:
        pot = CompressedMTP(model, obj.factors(x0), species=species, method=method)
        return CompressionResult(pot, method, ranks_out, model.n_radial_params,
                                 obj.n_radial_params, trunc_err)
    from pyfit.lowrank.fit import fit_euclidean, fit_rmf
    from pyfit.lowrank.mfra import fit_mfra

    loss_dense = loss.value(dense_params)
    loss_trunc = obj.value(x0)
    solved = obj.linear_solve(x0)
    if obj.value(solved) < loss_trunc:
        x0 = solved
    common = dict(max_iter=max_iter, linear_solve_every=linear_solve_every, callback=callback)
    if method == "rmf":
        res = fit_rmf(obj, x0, sufficient_descent=sufficient_descent, **common)
    elif method == "mfra":
        start = max(1, obj.rank // 2) if r0 is None else int(r0)
        small = obj.at_rank(start, method="mfra")
        xs = small.from_dense(dense_params)
        solved = small.linear_solve(xs)
        xs = solved if small.value(solved) < small.value(xs) else xs
        steps = max(1, math.ceil((obj.rank - start) / max(1, delta_r)))
        every = max(1, (max_iter // 2) // steps) if every is None else every
        res = fit_mfra(obj, x0=xs, r0=start, delta_r=delta_r, every=every, r_max=obj.rank,
                       **common)
    else:
        res = fit_euclidean(obj, x0, **common)
    final_obj = res.objective
    pot = CompressedMTP(loss.unpack(final_obj.dense(res.x)), final_obj.factors(res.x),
                        species=species, method=method)
    return CompressionResult(pot, method, ranks_out, model.n_radial_params,
                             final_obj.n_radial_params, trunc_err, loss_dense, loss_trunc,
                             res.value, res.n_iter, res.message, res.history)


def _fit_from_scratch(obj, loss, model, method, species, seed, max_iter, linear_solve_every,
                      sufficient_descent, r0, delta_r, every, callback) -> CompressionResult:
    """A compressed fit of an untrained template from a random start (``seed``)."""
    from pyfit.lowrank.fit import fit_objective

    settings = {"sufficient_descent": sufficient_descent}
    if method == "mfra":
        start = max(1, obj.rank // 2) if r0 is None else int(r0)
        steps = max(1, math.ceil((obj.rank - start) / max(1, delta_r)))
        settings.update(r0=start, delta_r=delta_r, r_max=obj.rank,
                        every=max(1, (max_iter // 2) // steps) if every is None else every)
    res = fit_objective(obj, rng=np.random.default_rng(seed), max_iter=max_iter,
                        linear_solve_every=linear_solve_every, callback=callback, **settings)
    final = res.objective
    pot = CompressedMTP(loss.unpack(final.dense(res.x)), final.factors(res.x), species=species,
                        method=method)
    ranks_out = (final.rank,) if isinstance(final, MatrixObjective) else final.ranks
    return CompressionResult(pot, method, ranks_out, model.n_radial_params,
                             final.n_radial_params, float("nan"), None, res.history[0],
                             res.value, res.n_iter, res.message, res.history)


class _ShapeOnly:
    """Stands in for a Loss when only the parameter layout is needed (no data)."""

    def __init__(self, model):
        C, K, R = model.species_count, model.radial_funcs_count, model.radial_basis_size
        self.template = model.untrained()
        n = C * C * K * R
        self.radial_slice = slice(0, n)
        self.n_params = n + C + model.alpha_scalar_moments

    def linear_solve(self, params):  # pragma: no cover - never called without data
        raise PyfitError("no data: cannot solve the linear parameters")


# --------------------------------------------------------------------------- spectrum
def spectrum(model, unfolding: str = "pairs") -> list[dict]:
    """Per truncation rank k: ``sigma_k``, ``sigma_k / sigma_1``, the relative Frobenius error
    of the rank-k truncation, MF / R-MF radial parameter counts and the share removed."""
    c = model.radial_coeffs
    if c is None:
        raise PyfitError("spectrum: the potential is untrained (no radial_coeffs)")
    m, n = unfolding_shape(c.shape, unfolding)
    s = np.linalg.svd(unfold(c, unfolding), compute_uv=False)
    norm = float(np.linalg.norm(s)) or 1.0
    tail = np.sqrt(np.maximum(np.cumsum((s ** 2)[::-1])[::-1] - s ** 2, 0.0))
    rows = []
    for k in range(1, len(s) + 1):
        rows.append({"rank": k, "sigma": float(s[k - 1]),
                     "sigma_rel": float(s[k - 1] / s[0]) if s[0] > 0 else 0.0,
                     "truncation_error": float(tail[k - 1] / norm),
                     "mf_params": k * (m + n), "rmf_params": k * (m + n - k),
                     "removed_mf": 1 - k * (m + n) / (m * n)})
    return rows


def format_spectrum(rows, base: int) -> str:
    lines = [f"{'rank':>4} {'sigma':>12} {'sigma/s1':>10} {'rel.error':>10} {'MF params':>10} "
             f"{'R-MF':>6} {'removed (MF)':>12}"]
    for r in rows:
        lines.append(f"{r['rank']:>4d} {r['sigma']:>12.5e} {r['sigma_rel']:>10.3e} "
                     f"{r['truncation_error']:>10.3e} {r['mf_params']:>10d} {r['rmf_params']:>6d} "
                     f"{100 * r['removed_mf']:>11.1f}%")
    lines.append(f"(dense radial parameters: {base})")
    return "\n".join(lines)


def plot_spectrum(rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ks = [r["rank"] for r in rows]
    ax.semilogy(ks, [max(r["sigma_rel"], 1e-17) for r in rows], "o-", label="sigma_k / sigma_1")
    ax.semilogy(ks, [max(r["truncation_error"], 1e-17) for r in rows], "s--",
                label="rel. error of rank-k truncation")
    ax.set_xlabel("rank k")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- rank scan
@dataclass
class ScanRow:
    method: str
    ranks: tuple
    n_radial: int
    removed: float  # share of the dense radial parameters removed
    train_loss: float
    valid_loss: float
    valid_forces_rmse: float
    n_iter: int
    seed: int = 0


def rank_scan(potential, train_configs, valid_configs, method: str = "mf", ranks=None,
              fractions=None, unfolding: str = "pairs", max_iter: int = 100,
              linear_solve_every: int = 50, weights=None, n_threads: int = 0,
              progress=None) -> tuple[list[ScanRow], dict]:
    """Compresses ``potential`` at each rank (``ranks``: ints for mf/rmf/mfra, (r1, r2, r3)
    tuples for tf) or each fraction in ``fractions``, fine-tunes on ``train_configs`` and
    measures the loss on ``valid_configs``. Returns the rows and the base (uncompressed) row's
    values as a dict."""
    from pyfit.fitting.loss import Loss

    model, species = _model_and_species(potential)
    train = Loss(model, train_configs, weights, n_threads=n_threads)
    valid = Loss(model, valid_configs, weights, n_threads=n_threads)
    dense = train.pack(model)
    base = {"n_radial": model.n_radial_params, "train_loss": train.value(dense),
            "valid_loss": valid.value(dense),
            "valid_forces_rmse": valid.errors(dense).forces_rmse}
    if (ranks is None) == (fractions is None):
        raise PyfitError("rank_scan: give ranks or fractions (one of them)")
    specs = [("rank" if method != "tf" else "ranks", r) for r in ranks] if ranks is not None \
        else [("compression", f) for f in fractions]
    rows = []
    for kind, value in specs:
        kw = {kind: (tuple(value) if kind == "ranks" else value)}
        res = compress(model, method, unfolding=unfolding, max_iter=max_iter,
                       linear_solve_every=linear_solve_every, loss=train, **kw)
        params = valid.pack(res.potential.model)
        row = ScanRow(method, res.ranks, res.n_radial, 1 - res.n_radial / model.n_radial_params,
                      res.loss_final, valid.value(params), valid.errors(params).forces_rmse,
                      res.n_iter)
        rows.append(row)
        if progress is not None:
            progress(row)
    return rows, base


def pick_ranks(rows: list[ScanRow], min_removed: float = 0.2, target: float = 0.5) -> dict:
    """``{"optimal": row, "half": row}``: the lowest validation loss among rows removing at
    least ``min_removed`` of the radial parameters (None if there is none), and the row whose
    removed share is closest to ``target`` (ties: the lower validation loss)."""
    eligible = [r for r in rows if r.removed >= min_removed - 1e-12]
    optimal = min(eligible, key=lambda r: r.valid_loss) if eligible else None
    half = min(rows, key=lambda r: (abs(r.removed - target), r.valid_loss)) if rows else None
    return {"optimal": optimal, "half": half}


def format_scan(rows, base, picks) -> str:
    lines = [f"{'method':<6} {'ranks':<12} {'radial':>6} {'removed':>8} {'train loss':>11} "
             f"{'valid loss':>11} {'valid F RMSE':>12}  note"]
    lines.append(f"{'base':<6} {'-':<12} {base['n_radial']:>6d} {0:>7.1f}% "
                 f"{base['train_loss']:>11.4e} {base['valid_loss']:>11.4e} "
                 f"{base['valid_forces_rmse']:>12.5f}")
    for r in rows:
        notes = [name for name, p in (("optimal", picks.get("optimal")),
                                      ("~50%", picks.get("half"))) if p is r]
        lines.append(f"{r.method:<6} {','.join(map(str, r.ranks)):<12} {r.n_radial:>6d} "
                     f"{100 * r.removed:>7.1f}% {r.train_loss:>11.4e} {r.valid_loss:>11.4e} "
                     f"{r.valid_forces_rmse:>12.5f}  {' '.join(notes)}")
    return "\n".join(lines)


def plot_scan(rows, base, picks, path) -> None:
    """Validation loss against the number of radial parameters (the paper's Fig. 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    xs = [r.n_radial for r in rows]
    ax.plot(xs, [r.valid_loss for r in rows], "o-", label=f"{rows[0].method} (validation)")
    ax.plot(xs, [r.train_loss for r in rows], ".:", color="gray", label="training")
    ax.axhline(base["valid_loss"], color="k", ls="--", lw=1, label="base (validation)")
    ax.axvline(0.8 * base["n_radial"], color="r", ls=":", lw=1, label="20% removed")
    for name, marker in (("optimal", "*"), ("half", "D")):
        r = picks.get(name)
        if r is not None:
            ax.plot([r.n_radial], [r.valid_loss], marker, ms=12, mfc="none",
                    label=f"{'optimal' if name == 'optimal' else '~50%'}: "
                          f"{','.join(map(str, r.ranks))}")
    ax.set_xlabel("radial parameters")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
