// Energy, forces and virial of a whole configuration (used by pyfit; LAMMPS drives
// SiteEvaluator itself from its own neighbour lists).
#pragma once

#include <vector>

#include "model.hpp"
#include "neighbours.hpp"
#include "site.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace mtp {

struct EFSOutput {
  double energy = 0.0;
  double* site_energy = nullptr;  // n (required)
  double* forces = nullptr;       // n x 3 (required)
  double* virial = nullptr;       // 9 (required): -sum_ij g_ij,a r_ij,b = MLIP PlusStress (eV)
  double* site_virial = nullptr;  // n x 9, optional: the part of the virial from atom i's site
};

// Buffers reused between calls.
struct EFSWorkspace {
  std::vector<double> grad;
  std::vector<int> zj;
};

// Evaluates every atom of a neighbour list. types[i] must be in [0, model.C).
inline void compute_efs(const Model& model, const NeighbourList& nl, const int* types,
                        EFSOutput& out, int n_threads, EFSWorkspace& ws) {
  const int n = nl.n_atoms();
  const size_t n_pairs = nl.index.size();
  std::vector<double>& grad = ws.grad;
  std::vector<int>& zj = ws.zj;
  grad.resize(3 * n_pairs);
  zj.resize(n_pairs);
  for (size_t p = 0; p < n_pairs; ++p) zj[p] = types[nl.index[p]];

#ifdef _OPENMP
#pragma omp parallel num_threads(n_threads > 0 ? n_threads : 1)
#endif
  {
    SiteEvaluator<double> site(model);
    SiteOutputs<double> so;
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 16)
#endif
    for (int i = 0; i < n; ++i) {
      const int begin = nl.offsets[i];
      so.grad = grad.data() + 3 * static_cast<size_t>(begin);
      out.site_energy[i] = site.evaluate(types[i], nl.offsets[i + 1] - begin,
                                         nl.dr.data() + 3 * static_cast<size_t>(begin),
                                         zj.data() + begin, so);
    }
  }
  (void)n_threads;

  double energy = 0.0;
  for (int i = 0; i < 3 * n; ++i) out.forces[i] = 0.0;
  for (int k = 0; k < 9; ++k) out.virial[k] = 0.0;
  for (int i = 0; i < n; ++i) {
    energy += out.site_energy[i];
    double* sv = out.site_virial ? out.site_virial + 9 * static_cast<size_t>(i) : nullptr;
    if (sv)
      for (int k = 0; k < 9; ++k) sv[k] = 0.0;
    for (int p = nl.offsets[i]; p < nl.offsets[i + 1]; ++p) {
      const double* g = &grad[3 * static_cast<size_t>(p)];
      const double* r = &nl.dr[3 * static_cast<size_t>(p)];
      const int j = nl.index[p];
      for (int d = 0; d < 3; ++d) {
        out.forces[3 * i + d] += g[d];
        out.forces[3 * j + d] -= g[d];
      }
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) {
          const double v = -g[a] * r[b];
          out.virial[3 * a + b] += v;
          if (sv) sv[3 * a + b] += v;
        }
    }
  }
  out.energy = energy;
}

inline void compute_efs(const Model& model, const NeighbourList& nl, const int* types,
                        EFSOutput& out, int n_threads = 1) {
  EFSWorkspace ws;
  compute_efs(model, nl, types, out, n_threads, ws);
}

}  // namespace mtp
