"""Start a fit from a trained potential of a lower level (``pyfit train --level 20 --init
l16.mtp``): the "level up" embedding.

MTP bases are nested: every scalar basis function of level L is also one of level L' > L (the
same contraction of the same moment tensors), and level L' may add radial functions (K = 4 at
level 16, 5 at 18 and 20). :func:`embed_lower_level` returns a model of the higher level that
computes exactly the lower-level potential:

- radial coefficients ``c[:, :, mu, :]`` copied for the lower level's ``mu < K``, the new radial
  functions small random (as a fresh fit's, from ``rng``), so that they have gradients;
- species coefficients copied; the moment coefficient of every lower-level basis function moved
  to the index of the same function in the higher basis, all other moment coefficients 0.

Which higher-level function is "the same" is decided numerically: each basis function is
evaluated (with the shared radial functions) on a few fixed random probe configurations and
matched by value; then the embedded and the lower-level potential are checked to give the same
energies on the probes. The higher-level fit therefore starts at the lower level's loss and can
only improve it.
"""

from __future__ import annotations

import numpy as np

from pyfit.configuration import Configuration
from pyfit.errors import PyfitError
from pyfit.model import MTPModel

__all__ = ["check_settings", "embed_lower_level", "fold_scaling"]

_SAME = ("species_count", "radial_basis_size", "min_dist", "max_dist")


def check_settings(model: MTPModel, template: MTPModel, source: str = "model.init") -> None:
    """Raises :class:`PyfitError` naming ``source`` unless ``model`` is trained and has
    ``template``'s species count, radial basis size and cutoffs (what a starting potential of
    the same or a lower level must share with the [model] settings)."""
    if not model.is_trained:
        raise PyfitError(f"{source} is untrained (no coefficients)")
    for key in _SAME:
        a, b = getattr(model, key), getattr(template, key)
        if a != b:
            raise PyfitError(f"{source} has {key} = {a}, the [model] settings give {b}; the "
                             "starting potential must have the same species, radial basis and "
                             "cutoffs")


def fold_scaling(model: MTPModel) -> MTPModel:
    """The same potential with ``scaling = 1``: MLIP's ``scaling`` multiplies every radial
    basis function (``Q_b = scaling T_b (max_dist - r)^2``), so it folds into the radial
    coefficients."""
    if float(model.scaling) == 1.0:
        return model
    m = model.copy()
    m.radial_coeffs = np.asarray(model.radial_coeffs, dtype=float) * float(model.scaling)
    m.scaling = 1.0
    return m


def _probes(model: MTPModel, n_probes: int = 5, n_atoms: int = 24) -> list[Configuration]:
    """Fixed random periodic configurations (every species present, no pair closer than
    ``min_dist``): the same for every call, independent of the fit's seed."""
    rng = np.random.default_rng(20261202)
    length = 1.6 * model.max_dist
    closest = model.min_dist + 0.05 * (model.max_dist - model.min_dist)
    out = []
    for _ in range(n_probes):
        pos: list[np.ndarray] = []
        while len(pos) < n_atoms:
            x = rng.uniform(0.0, length, 3)
            if all(np.linalg.norm((x - p + length / 2) % length - length / 2) >= closest
                   for p in pos):
                pos.append(x)
        types = np.arange(n_atoms) % model.species_count
        out.append(Configuration(positions=np.array(pos), types=types,
                                 cell=length * np.eye(3)))
    return out


def _function_values(model: MTPModel, probes) -> np.ndarray:
    """``(n_probes, n_scalar)``: the sum over atoms of each scalar basis function."""
    from pyfit.potential import MTP

    m = model.copy()
    m.species_coeffs = np.zeros(model.species_count)
    n = len(model.alpha_moment_mapping)
    values = np.empty((len(probes), n))
    for k in range(n):
        m.moment_coeffs = np.zeros(n)
        m.moment_coeffs[k] = 1.0
        pot = MTP(m)
        values[:, k] = [pot.evaluate(c).energy for c in probes]
    return values


def embed_lower_level(low: MTPModel, template: MTPModel, rng: np.random.Generator,
                      source: str = "model.init") -> MTPModel:
    """A trained model with ``template``'s (higher-level) basis that computes exactly the
    trained lower-level ``low`` (see the module doc). Raises :class:`PyfitError` naming
    ``source`` when the bases do not nest or the settings differ."""
    check_settings(low, template, source)
    low = fold_scaling(low)
    n_low, n_high = len(low.alpha_moment_mapping), len(template.alpha_moment_mapping)
    k_low, k_high = low.radial_funcs_count, template.radial_funcs_count
    if n_low > n_high or k_low > k_high:
        raise PyfitError(f"{source}: {n_low} basis functions and {k_low} radial functions, "
                         f"the [model] level has {n_high} and {k_high}; the starting potential "
                         "must be of the same or a lower level")
    C, R = template.species_count, template.radial_basis_size
    width = template.max_dist - template.min_dist
    scale = 1.0 / (R * width * width)  # as a fresh fit's radial coefficients (Loss.initial_params)
    radial = rng.uniform(-scale, scale, (C, C, k_high, R))
    radial[:, :, :k_low, :] = low.radial_coeffs
    high = template.copy()
    high.radial_coeffs = radial
    high.species_coeffs = np.array(low.species_coeffs, dtype=float)
    high.moment_coeffs = np.zeros(n_high)
    high.scaling = 1.0

    probes = _probes(template)
    v_low = _function_values(low, probes)
    v_high = _function_values(high, probes)
    scale_v = np.maximum(np.abs(v_high).max(axis=0), 1e-300)
    taken = np.zeros(n_high, dtype=bool)
    for j in range(n_low):
        diff = np.abs(v_high - v_low[:, [j]]).max(axis=0)
        match = np.flatnonzero((diff <= 1e-9 * np.maximum(scale_v, np.abs(v_low[:, j]).max()))
                               & ~taken)
        if match.size == 0:
            raise PyfitError(f"{source}: basis function {j} of the starting potential has no "
                             "counterpart in the basis of the [model] level (not a lower level "
                             "of the same basis family)")
        taken[match[0]] = True
        high.moment_coeffs[match[0]] = low.moment_coeffs[j]

    from pyfit.potential import MTP

    pot_low, pot_high = MTP(low), MTP(high)
    e_low = np.array([pot_low.evaluate(c).energy for c in probes])
    e_high = np.array([pot_high.evaluate(c).energy for c in probes])
    if not np.allclose(e_high, e_low, rtol=1e-10, atol=1e-10 * len(probes[0].positions)):
        raise PyfitError(f"{source}: the embedded potential does not reproduce the starting "
                         f"potential (energies {e_low.tolist()} vs {e_high.tolist()})")
    return high
