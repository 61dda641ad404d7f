# Declarations of the header-only C++ kernel (include/mtp), shared by the Cython modules.
from libcpp cimport bool as cbool
from libcpp.vector cimport vector


cdef extern from "mtp/model.hpp" namespace "mtp" nogil:
    cdef cppclass Model:
        int C, K, R
        double min_dist, max_dist, scaling
        int n_moments
        vector[double] radial
        vector[double] species
        vector[double] moment
        void set_basis(int, int, const int*, int, const int*, int, const int*) except +
        int n_basic()
        int n_times()
        int n_scalar()
        int n_radial()


cdef extern from "mtp/neighbours.hpp" namespace "mtp" nogil:
    cdef cppclass NeighbourList:
        vector[int] offsets
        vector[int] index
        vector[double] dr
        int n_atoms()
    NeighbourList build_neighbours(int, const double*, const double*, const cbool*, double,
                                   double) except +
    cdef cppclass NeighbourBuilder:
        const NeighbourList& build(int, const double*, const double*, const cbool*, double,
                                   double) except +


cdef extern from "mtp/site.hpp" namespace "mtp" nogil:
    cdef cppclass SiteOutputs[T]:
        SiteOutputs()
        T* grad
        T* scalar_moments
        T* radial_grad
    cdef cppclass SiteEvaluator[T]:
        SiteEvaluator(const Model&)
        T evaluate(int, int, const T*, const int*, const SiteOutputs[T]&)
        void basis_gradients(int, int, const T*, const int*, T*, T*)


cdef extern from "mtp/compute.hpp" namespace "mtp" nogil:
    cdef cppclass EFSOutput:
        EFSOutput()
        double energy
        double* site_energy
        double* forces
        double* virial
        double* site_virial
    cdef cppclass EFSWorkspace:
        pass
    void compute_efs(const Model&, const NeighbourList&, const int*, EFSOutput&, int,
                     EFSWorkspace&)


cdef extern from "mtp/fit.hpp" namespace "mtp" nogil:
    cdef cppclass TrainConfig:
        int n
        vector[int] types
        NeighbourList nl
        vector[int] zj
        cbool has_energy, has_forces, has_stress
        double energy
        vector[double] forces
        double stress[6]
        double weight
    cdef cppclass LossWeights:
        double energy, forces, stress, force_norm
    cdef cppclass FitWorkspace:
        pass
    double predict(const Model&, const TrainConfig&, SiteEvaluator[double]&, FitWorkspace&,
                   double*, double*)
    double total_loss(const Model&, const vector[TrainConfig]&, const LossWeights&, int,
                      double*, size_t)
    void total_normal_equations(const Model&, const vector[TrainConfig]&, const LossWeights&,
                                int, double*, double*)
