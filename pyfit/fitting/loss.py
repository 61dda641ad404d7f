"""The fitting loss, its analytic gradient and the exact solve of the linear parameters.

Loss (the low-rank MTP paper's eq. 8, MLIP-2's default weights), for configurations c with
optional weights w_c, N_c atoms, and N_f = the mean number of atoms per configuration::

    L = sum_c w_c [ w_e ((E_c - E_c^ref) / N_c)^2
                    + w_f sum_i |F_i - F_i^ref|^2 / N_f
                    + w_s sum_k ((S_k - S_k^ref) / N_c)^2 ] / sum_c w_c

- energy: per atom (eV/atom); forces: summed over atoms and divided by N_f, so with unit weights
  the force term is the mean squared force error per atom (eV/Å)^2;
- stress: MLIP's PlusStress (the virial, eV) per atom, over the six Voigt components
  xx, yy, zz, yz, xz, xy (each off-diagonal component counted once).

Configurations without an energy / forces / stress label simply have no such term. The gradient
with respect to every parameter is computed in the C++ kernel (include/mtp/fit.hpp); the force
and stress terms use forward-mode dual numbers over positions inside reverse mode over
parameters, so no Jacobian of forces with respect to parameters is ever formed.

The parameter vector is ``[radial_coeffs.ravel() (C*C*K*R), species_coeffs (C), moment_coeffs
(n_scalar)]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pyfit.configuration import Configuration
from pyfit.errors import PyfitError
from pyfit.metrics import ErrorStats
from pyfit.model import MTPModel

__all__ = ["Loss", "LossWeights"]


@dataclass
class LossWeights:
    energy: float = 1.0
    forces: float = 0.01
    stress: float = 0.001

    def __post_init__(self):
        for name in ("energy", "forces", "stress"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
                raise PyfitError(f"weights.{name}: expected a finite number >= 0, found {value!r}")


def _default_threads(n_threads: int) -> int:
    if n_threads and n_threads > 0:
        return int(n_threads)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def _where(config: Configuration, index: int) -> str:
    return config.source or f"configuration {index}"


class Loss:
    """Loss over a fixed set of configurations for MTPs of one basis (``template``)."""

    def __init__(self, template: MTPModel, configs: Sequence[Configuration],
                 weights: LossWeights | None = None, n_threads: int = 0,
                 config_weights: Sequence[float] | None = None):
        from pyfit._fit import FitKernel

        weights = weights or LossWeights()
        template.validate()
        configs = list(configs)
        if not configs:
            raise PyfitError("the training set is empty: no configurations to fit")
        if config_weights is not None and len(config_weights) != len(configs):
            raise PyfitError(f"config_weights: expected {len(configs)} values, "
                             f"found {len(config_weights)}")
        self.template = template.untrained()
        self.configs = configs
        self.weights = weights
        self.n_threads = _default_threads(n_threads)
        m = template
        self._kernel = FitKernel(
            int(m.species_count), int(m.radial_funcs_count), int(m.radial_basis_size),
            float(m.min_dist), float(m.max_dist), float(m.scaling), int(m.alpha_moments_count),
            np.ascontiguousarray(m.alpha_index_basic, dtype=np.intc).ravel(),
            np.ascontiguousarray(m.alpha_index_times, dtype=np.intc).ravel(),
            np.ascontiguousarray(m.alpha_moment_mapping, dtype=np.intc),
        )
        cw = np.ones(len(configs)) if config_weights is None else np.asarray(config_weights, float)
        if not np.all(np.isfinite(cw)) or np.any(cw < 0) or cw.sum() <= 0:
            raise PyfitError("config_weights must be finite, >= 0 and not all zero")
        for k, (c, w) in enumerate(zip(configs, cw)):
            self._add(k, c, float(w))
        self.total_weight = float(cw.sum())
        self.mean_atoms = float(np.mean([c.n_atoms for c in configs]))
        self._kernel.set_weights(weights.energy, weights.forces, weights.stress, self.mean_atoms)
        C, K, R = m.species_count, m.radial_funcs_count, m.radial_basis_size
        n_radial = C * C * K * R
        self.radial_slice = slice(0, n_radial)
        self.species_slice = slice(n_radial, n_radial + C)
        self.moment_slice = slice(n_radial + C, self._kernel.n_params)
        self.n_params = int(self._kernel.n_params)

    def _add(self, k: int, c: Configuration, weight: float) -> None:
        where = _where(c, k)
        n = c.n_atoms
        if n == 0:
            raise PyfitError(f"{where}: configuration without atoms")
        types = np.ascontiguousarray(c.types, dtype=np.intc)
        C = self.template.species_count
        if types.min() < 0 or types.max() >= C:
            raise PyfitError(f"{where}: atom type {int(types.max())} out of range: the model has "
                             f"{C} species (types 0..{C - 1})")
        if self.weights.energy > 0 and c.energy is not None and not np.isfinite(c.energy):
            raise PyfitError(f"{where}: the energy label is NaN or inf")
        if c.forces is not None and not np.all(np.isfinite(c.forces)):
            raise PyfitError(f"{where}: the force labels contain NaN or inf")
        if c.plus_stress is not None and not np.all(np.isfinite(c.plus_stress)):
            raise PyfitError(f"{where}: the stress labels contain NaN or inf")
        if not np.all(np.isfinite(c.positions)):
            raise PyfitError(f"{where}: positions contain NaN or inf")
        periodic = c.cell is not None and any(c.pbc)
        cell = np.ascontiguousarray(c.cell if c.cell is not None else np.zeros((3, 3)), dtype=float)
        pbc = tuple(bool(p) for p in c.pbc) if c.cell is not None else (False,) * 3
        if periodic and abs(np.linalg.det(cell)) < 1e-9:
            raise PyfitError(f"{where}: the periodic cell is singular (zero volume)")
        stress = None
        if c.plus_stress is not None and c.cell is not None and all(pbc):
            s = np.asarray(c.plus_stress, dtype=float)
            stress = np.ascontiguousarray(s[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]])
        forces = None if c.forces is None else np.ascontiguousarray(c.forces, dtype=float)
        try:
            self._kernel.add_config(np.ascontiguousarray(c.positions, dtype=float), types, cell,
                                    pbc, None if c.energy is None else float(c.energy), forces,
                                    stress, weight)
        except ValueError as exc:  # geometry errors from the neighbour list
            raise PyfitError(f"{where}: {exc}") from None

    # ------------------------------------------------------------------ parameters
    def pack(self, model: MTPModel) -> np.ndarray:
        if not model.is_trained:
            raise PyfitError("pack: the model has no coefficients")
        return np.concatenate([np.ravel(model.radial_coeffs), np.ravel(model.species_coeffs),
                               np.ravel(model.moment_coeffs)]).astype(float)

    def unpack(self, params: np.ndarray) -> MTPModel:
        params = self._check(params)
        m = self.template.copy()
        C, K, R = m.species_count, m.radial_funcs_count, m.radial_basis_size
        m.radial_coeffs = params[self.radial_slice].reshape(C, C, K, R).copy()
        m.species_coeffs = params[self.species_slice].copy()
        m.moment_coeffs = params[self.moment_slice].copy()
        return m

    def _check(self, params) -> np.ndarray:
        params = np.ascontiguousarray(params, dtype=float)
        if params.shape != (self.n_params,):
            raise PyfitError(f"expected {self.n_params} parameters, found shape {params.shape}")
        return params

    # ------------------------------------------------------------------ loss
    def value(self, params) -> float:
        value, _ = self._kernel.loss(self._check(params), False, self.n_threads)
        return value / self.total_weight

    def value_and_grad(self, params) -> tuple[float, np.ndarray]:
        value, grad = self._kernel.loss(self._check(params), True, self.n_threads)
        return value / self.total_weight, grad / self.total_weight

    def linear_solve(self, params, ridge: float = 1e-10) -> np.ndarray:
        """Parameters with the species and moment coefficients replaced by the exact weighted
        least-squares optimum of this loss at the current radial coefficients."""
        params = self._check(params).copy()
        ata, aty = self._kernel.normal_equations(params, self.n_threads)
        d = np.sqrt(np.diag(ata))
        d[d == 0] = 1.0  # a species absent from the data, or a basis function that is always 0
        a = ata / np.outer(d, d)
        b = aty / d
        # symmetric eigen-solve with a relative cut-off: robust to near-collinear basis functions
        w, v = np.linalg.eigh(a)
        keep = w > ridge * max(w.max(), 1e-300)
        z = v[:, keep] @ ((v[:, keep].T @ b) / w[keep])
        lin = z / d
        C = self.template.species_count
        params[self.species_slice] = lin[:C]
        params[self.moment_slice] = lin[C:]
        return params

    def initial_params(self, rng: np.random.Generator) -> np.ndarray:
        """Small random radial coefficients from ``rng`` (radial functions of order 1 over the
        cutoff range), then the exact linear solve."""
        m = self.template
        width = m.max_dist - m.min_dist
        scale = 1.0 / (m.radial_basis_size * width * width)
        params = np.zeros(self.n_params)
        params[self.radial_slice] = rng.uniform(-scale, scale, self.radial_slice.stop)
        return self.linear_solve(params)

    # ------------------------------------------------------------------ predictions
    def predict(self, params) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """[(energy, forces, PlusStress Voigt)] per configuration."""
        return self._kernel.predict(self._check(params))

    def errors(self, params) -> ErrorStats:
        stats = ErrorStats()
        for c, (e, f, s) in zip(self.configs, self.predict(params)):
            plus = np.array([[s[0], s[5], s[4]], [s[5], s[1], s[3]], [s[4], s[3], s[2]]])
            stats.add(c, e, f, plus)
        return stats.finalize()
