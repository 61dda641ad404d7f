# Private Cython layer over include/mtp/fit.hpp: a training set held in C++ (neighbour lists
# built once), the loss and its analytic gradient, and the normal equations of the linear
# parameters. Validation lives in pyfit.fitting.loss.
from libcpp cimport bool as cbool
from libcpp.vector cimport vector

from pyfit._mtp cimport (FitWorkspace, LossWeights, Model, NeighbourList, SiteEvaluator,
                         TrainConfig, build_neighbours, predict, total_loss,
                         total_normal_equations)

import numpy as np


cdef const int* _iptr(const int[::1] a):
    return &a[0] if a.shape[0] > 0 else NULL


cdef class FitKernel:
    """Training configurations and an MTP basis; parameters are passed as one flat vector
    ``[radial (C*C*K*R), species (C), moment (n_scalar)]``."""

    cdef Model model
    cdef vector[TrainConfig] configs
    cdef LossWeights weights
    cdef readonly int n_params

    def __init__(self, int species_count, int radial_funcs_count, int radial_basis_size,
                 double min_dist, double max_dist, double scaling, int n_moments,
                 const int[::1] basic, const int[::1] times, const int[::1] mapping):
        self.model.C = species_count
        self.model.K = radial_funcs_count
        self.model.R = radial_basis_size
        self.model.min_dist = min_dist
        self.model.max_dist = max_dist
        self.model.scaling = scaling
        self.model.set_basis(n_moments, basic.shape[0] // 4, _iptr(basic),
                             times.shape[0] // 4, _iptr(times), mapping.shape[0], _iptr(mapping))
        self.n_params = self.model.n_radial() + species_count + self.model.n_scalar()
        self.model.radial.resize(self.model.n_radial())
        self.model.species.resize(species_count)
        self.model.moment.resize(self.model.n_scalar())
        self.set_weights(1.0, 0.01, 0.001, 1.0)

    def set_weights(self, double energy, double forces, double stress, double force_norm):
        self.weights.energy = energy
        self.weights.forces = forces
        self.weights.stress = stress
        self.weights.force_norm = force_norm

    def add_config(self, const double[:, ::1] positions, const int[::1] types,
                   const double[:, ::1] cell, pbc, energy, forces, stress, double weight):
        """Adds one configuration. energy: float or None; forces: (n, 3) or None;
        stress: PlusStress Voigt (6,) or None."""
        cdef TrainConfig c
        cdef cbool cpbc[3]
        cdef int n = positions.shape[0]
        cdef int k
        for k in range(3):
            cpbc[k] = bool(pbc[k])
        with nogil:
            c.nl = build_neighbours(n, &positions[0, 0], &cell[0, 0], cpbc, self.model.max_dist,
                                    1e-8)
        c.n = n
        c.types.assign(&types[0], &types[0] + n)
        c.zj.resize(c.nl.index.size())
        for k in range(<int> c.nl.index.size()):
            c.zj[k] = types[c.nl.index[k]]
        c.weight = weight
        c.has_energy = energy is not None
        c.energy = energy if energy is not None else 0.0
        cdef const double[:, ::1] f
        if forces is not None:
            f = forces
            c.has_forces = True
            c.forces.assign(&f[0, 0], &f[0, 0] + 3 * n)
        cdef const double[::1] s
        if stress is not None:
            s = stress
            c.has_stress = True
            for k in range(6):
                c.stress[k] = s[k]
        self.configs.push_back(c)

    @property
    def n_configs(self):
        return self.configs.size()

    cdef void _set_params(self, const double[::1] params) except *:
        if params.shape[0] != self.n_params:
            raise ValueError(f"expected {self.n_params} parameters, found {params.shape[0]}")
        cdef int nr = self.model.n_radial(), C = self.model.C, ns = self.model.n_scalar()
        cdef int k
        for k in range(nr):
            self.model.radial[k] = params[k]
        for k in range(C):
            self.model.species[k] = params[nr + k]
        for k in range(ns):
            self.model.moment[k] = params[nr + C + k]

    def loss(self, const double[::1] params, bint gradient=True, int n_threads=1):
        """(sum_c L_c, gradient or None); the caller divides by the sum of the weights."""
        self._set_params(params)
        grad = np.zeros(self.n_params) if gradient else None
        cdef double[::1] g
        cdef double* gp = NULL
        if gradient:
            g = grad
            gp = &g[0]
        cdef double value
        with nogil:
            value = total_loss(self.model, self.configs, self.weights, n_threads, gp,
                               self.n_params)
        return value, grad

    def normal_equations(self, const double[::1] params, int n_threads=1):
        """(A^T W A, A^T W y) of the linear parameters [species, moment] at these radial coeffs."""
        self._set_params(params)
        cdef int nl = self.model.C + self.model.n_scalar()
        ata = np.zeros((nl, nl))
        aty = np.zeros(nl)
        cdef double[:, ::1] a = ata
        cdef double[::1] b = aty
        with nogil:
            total_normal_equations(self.model, self.configs, self.weights, n_threads, &a[0, 0],
                                   &b[0])
        return ata, aty

    def predict(self, const double[::1] params):
        """[(energy, forces (n, 3), PlusStress Voigt (6,))] for every configuration."""
        self._set_params(params)
        cdef SiteEvaluator[double]* ev = new SiteEvaluator[double](self.model)
        cdef FitWorkspace* ws = new FitWorkspace()
        cdef double[:, ::1] f
        cdef double[::1] s
        cdef size_t k
        out = []
        try:
            for k in range(self.configs.size()):
                forces = np.zeros((self.configs[k].n, 3))
                stress = np.zeros(6)
                f = forces
                s = stress
                e = predict(self.model, self.configs[k], ev[0], ws[0], &f[0, 0], &s[0])
                out.append((e, forces, stress))
        finally:
            del ev
            del ws
        return out
