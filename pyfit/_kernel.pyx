# Private Cython layer over the header-only C++ kernel (include/mtp). Validation lives in
# Python (pyfit.potential); this module only converts C-contiguous arrays and releases the GIL.
from libcpp cimport bool as cbool

from pyfit._mtp cimport (EFSOutput, EFSWorkspace, Model, NeighbourBuilder, NeighbourList,
                         SiteEvaluator, SiteOutputs, build_neighbours, compute_efs)

import threading

import numpy as np


cdef const int* _iptr(const int[::1] a):
    return &a[0] if a.shape[0] > 0 else NULL


cdef class Evaluator:
    """Compiled MTP evaluator. Construct through :class:`pyfit.MTP`, which validates input.

    ``basic`` (n_basic, 4), ``times`` (n_times, 4) and ``mapping`` are int32, C-contiguous;
    ``radial`` is the (C, C, K, R) tensor flattened, ``species`` (C,), ``moment`` (n_scalar,).
    """

    cdef Model model
    cdef NeighbourBuilder builder  # buffers reused between calls, guarded by _lock
    cdef EFSWorkspace workspace
    cdef object _lock

    def __init__(self, int species_count, int radial_funcs_count, int radial_basis_size,
                 double min_dist, double max_dist, double scaling, int n_moments,
                 const int[::1] basic, const int[::1] times, const int[::1] mapping,
                 const double[::1] radial, const double[::1] species,
                 const double[::1] moment):
        self._lock = threading.Lock()
        self.model.C = species_count
        self.model.K = radial_funcs_count
        self.model.R = radial_basis_size
        self.model.min_dist = min_dist
        self.model.max_dist = max_dist
        self.model.scaling = scaling
        self.model.set_basis(n_moments, basic.shape[0] // 4, _iptr(basic),
                             times.shape[0] // 4, _iptr(times), mapping.shape[0], _iptr(mapping))
        self.set_coefficients(radial, species, moment)

    def set_coefficients(self, const double[::1] radial, const double[::1] species,
                         const double[::1] moment):
        if radial.shape[0] != self.model.n_radial():
            raise ValueError(f"radial: expected {self.model.n_radial()} values, found {radial.shape[0]}")
        if species.shape[0] != self.model.C:
            raise ValueError(f"species: expected {self.model.C} values, found {species.shape[0]}")
        if moment.shape[0] != self.model.n_scalar():
            raise ValueError(f"moment: expected {self.model.n_scalar()} values, found {moment.shape[0]}")
        self.model.radial.assign(&radial[0], &radial[0] + radial.shape[0])
        self.model.species.assign(&species[0], &species[0] + species.shape[0])
        if moment.shape[0] > 0:
            self.model.moment.assign(&moment[0], &moment[0] + moment.shape[0])

    @property
    def cutoff(self):
        return self.model.max_dist

    def neighbours(self, const double[:, ::1] positions, const double[:, ::1] cell, pbc,
                   double cutoff=-1.0):
        """Neighbour list: (offsets (n+1,), index (n_pairs,), dr (n_pairs, 3))."""
        cdef NeighbourList nl
        cdef cbool cpbc[3]
        cdef int n = positions.shape[0]
        if cutoff <= 0:
            cutoff = self.model.max_dist
        for d in range(3):
            cpbc[d] = bool(pbc[d])
        cdef const double* pos_ptr = &positions[0, 0] if n > 0 else NULL
        with nogil:
            nl = build_neighbours(n, pos_ptr, &cell[0, 0], cpbc, cutoff, 1e-8)
        offsets = np.asarray(<int[:n + 1]> nl.offsets.data()).copy()
        npairs = nl.index.size()
        if npairs == 0:
            return offsets, np.zeros(0, dtype=np.intc), np.zeros((0, 3))
        index = np.asarray(<int[:npairs]> nl.index.data()).copy()
        dr = np.asarray(<double[:npairs, :3]> nl.dr.data()).copy()
        return offsets, index, dr

    def efs(self, const double[:, ::1] positions, const int[::1] types,
            const double[:, ::1] cell, pbc, int n_threads=1, bint site_virial=False):
        """Energy, site energies (n,), forces (n, 3), virial (3, 3) [, site virials (n, 3, 3)]."""
        cdef int n = positions.shape[0]
        cdef cbool cpbc[3]
        for d in range(3):
            cpbc[d] = bool(pbc[d])
        site_energy = np.zeros(n)
        forces = np.zeros((n, 3))
        virial = np.zeros((3, 3))
        sv = np.zeros((n, 3, 3)) if site_virial else None
        cdef double[::1] se_v = site_energy
        cdef double[:, ::1] f_v = forces
        cdef double[:, ::1] vir_v = virial
        cdef double[:, :, ::1] sv_v
        cdef EFSOutput out
        if n == 0:
            return 0.0, site_energy, forces, virial, sv
        out.site_energy = &se_v[0]
        out.forces = &f_v[0, 0]
        out.virial = &vir_v[0, 0]
        if site_virial:
            sv_v = sv
            out.site_virial = &sv_v[0, 0, 0]
        with self._lock:
            with nogil:
                compute_efs(self.model,
                            self.builder.build(n, &positions[0, 0], &cell[0, 0], cpbc,
                                               self.model.max_dist, 1e-8),
                            &types[0], out, n_threads, self.workspace)
        return out.energy, site_energy, forces, virial, sv

    def site(self, int zi, const double[:, ::1] dr, const int[::1] zj, bint grad=True,
             bint radial_grad=False):
        """One site: (V_i, dV/dr (n, 3), basis values (n_scalar,), dV/dc (C, C, K, R) or None)."""
        cdef int n = dr.shape[0]
        cdef SiteEvaluator[double]* ev = new SiteEvaluator[double](self.model)
        cdef SiteOutputs[double] so
        g = np.zeros((n, 3))
        moments = np.zeros(self.model.n_scalar())
        rg = np.zeros((self.model.C, self.model.C, self.model.K, self.model.R)) if radial_grad else None
        cdef double[:, ::1] g_v = g
        cdef double[::1] m_v = moments
        cdef double[:, :, :, ::1] rg_v
        cdef double energy
        if grad and n > 0:
            so.grad = &g_v[0, 0]
        if moments.shape[0] > 0:
            so.scalar_moments = &m_v[0]
        if radial_grad:
            rg_v = rg
            so.radial_grad = &rg_v[0, 0, 0, 0]
        cdef const double* dr_ptr = &dr[0, 0] if n > 0 else NULL
        cdef const int* zj_ptr = &zj[0] if n > 0 else NULL
        try:
            with nogil:
                energy = ev.evaluate(zi, n, dr_ptr, zj_ptr, so)
        finally:
            del ev
        return energy, g, moments, rg
