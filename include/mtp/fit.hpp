// Loss, its analytic gradient with respect to every parameter, and the linear least-squares
// system for the linear (species + moment) coefficients, over a training set.
//
// Loss (per configuration c with weight w_c, N_c atoms; N_f = mean atoms per configuration):
//   L_c = w_c [ w_e ((E - E_ref) / N)^2 + w_f sum_i |F_i - F_ref,i|^2 / N_f
//               + w_s sum_{k in xx,yy,zz,yz,xz,xy} ((S_k - S_ref,k) / N)^2 ]
// with S = PlusStress (the virial, eV). The total is sum_c L_c / sum_c w_c.
//
// Gradient: the energy term uses dE/dtheta. The force and stress terms are the derivative with
// respect to theta of a directional derivative of E: with v_i = (2 w_c w_f / N_f) dF_i and
// M = (2 w_c w_s / N^2) dS (upper triangle, Voigt), they equal -d/dtheta D_delta E along the
// displacement delta r_ij = v_j - v_i + M r_ij. One pass of SiteEvaluator<Dual> seeded with
// that tangent gives it (forward mode over positions inside reverse mode over parameters).
#pragma once

#include <vector>

#include "dual.hpp"
#include "model.hpp"
#include "neighbours.hpp"
#include "site.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace mtp {

struct TrainConfig {
  int n = 0;
  std::vector<int> types;
  NeighbourList nl;
  std::vector<int> zj;  // species of each neighbour
  bool has_energy = false, has_forces = false, has_stress = false;
  double energy = 0.0;
  std::vector<double> forces;  // n x 3
  double stress[6] = {0, 0, 0, 0, 0, 0};  // PlusStress xx yy zz yz xz xy (eV)
  double weight = 1.0;
};

struct LossWeights {
  double energy = 1.0, forces = 0.01, stress = 0.001;
  double force_norm = 1.0;  // mean atoms per configuration
};

// Voigt index k -> (a, b)
constexpr int kVoigtA[6] = {0, 1, 2, 1, 0, 0};
constexpr int kVoigtB[6] = {0, 1, 2, 2, 2, 1};

struct FitWorkspace {
  std::vector<double> grad_pairs;  // 3 per pair
  std::vector<double> forces;
  std::vector<Dual> dr, radial, moments;
  std::vector<double> basis, basis_grad, rows;
};

// Energy, forces (n x 3) and PlusStress (Voigt 6) of one training configuration.
inline double predict(const Model& m, const TrainConfig& c, SiteEvaluator<double>& ev,
                      FitWorkspace& ws, double* forces, double* stress) {
  const NeighbourList& nl = c.nl;
  ws.grad_pairs.resize(3 * nl.index.size());
  SiteOutputs<double> so;
  double energy = 0.0;
  for (int k = 0; k < 3 * c.n; ++k) forces[k] = 0.0;
  double vir[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < c.n; ++i) {
    const int b = nl.offsets[i], nn = nl.offsets[i + 1] - b;
    so.grad = &ws.grad_pairs[3 * static_cast<size_t>(b)];
    energy += ev.evaluate(c.types[i], nn, &nl.dr[3 * static_cast<size_t>(b)], &c.zj[b], so);
    for (int p = b; p < b + nn; ++p) {
      const double* g = &ws.grad_pairs[3 * static_cast<size_t>(p)];
      const double* r = &nl.dr[3 * static_cast<size_t>(p)];
      const int j = nl.index[p];
      for (int d = 0; d < 3; ++d) {
        forces[3 * i + d] += g[d];
        forces[3 * j + d] -= g[d];
      }
      for (int a = 0; a < 3; ++a)
        for (int d = 0; d < 3; ++d) vir[3 * a + d] -= g[a] * r[d];
    }
  }
  for (int k = 0; k < 6; ++k) stress[k] = vir[3 * kVoigtA[k] + kVoigtB[k]];
  return energy;
}

// Loss of one configuration (times w_c, not yet divided by sum w_c); if grad is not null,
// adds dL_c/dtheta to grad (layout: radial C*C*K*R, species C, moment n_scalar).
inline double config_loss(const Model& m, const TrainConfig& c, const LossWeights& w,
                          SiteEvaluator<double>& ev, SiteEvaluator<Dual>& evd, FitWorkspace& ws,
                          double* grad) {
  const int n = c.n;
  ws.forces.resize(3 * static_cast<size_t>(n));
  double stress[6];
  const double energy = predict(m, c, ev, ws, ws.forces.data(), stress);
  const double inv_n = 1.0 / n;
  double loss = 0.0;
  const double de = c.has_energy ? (energy - c.energy) : 0.0;
  loss += w.energy * (de * inv_n) * (de * inv_n);
  double ds[6] = {0, 0, 0, 0, 0, 0};
  if (c.has_stress)
    for (int k = 0; k < 6; ++k) {
      ds[k] = stress[k] - c.stress[k];
      loss += w.stress * (ds[k] * inv_n) * (ds[k] * inv_n);
    }
  if (c.has_forces) {
    double sf = 0.0;
    for (int k = 0; k < 3 * n; ++k) {
      const double d = ws.forces[k] - c.forces[k];
      ws.forces[k] = d;  // keep the residual
      sf += d * d;
    }
    loss += w.forces * sf / w.force_norm;
  }
  loss *= c.weight;
  if (!grad) return loss;

  // Coefficients of the energy gradient and of the tangent direction.
  const double ce = c.has_energy ? 2.0 * c.weight * w.energy * de * inv_n * inv_n : 0.0;
  const double cf = c.has_forces ? 2.0 * c.weight * w.forces / w.force_norm : 0.0;
  const double cs = c.has_stress ? 2.0 * c.weight * w.stress * inv_n * inv_n : 0.0;
  double M[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  for (int k = 0; k < 6; ++k) M[3 * kVoigtA[k] + kVoigtB[k]] = cs * ds[k];
  if (ce == 0.0 && cf == 0.0 && cs == 0.0) return loss;

  const Model& mm = m;
  const size_t n_radial = mm.n_radial();
  const int C = mm.C, ns = mm.n_scalar();
  ws.radial.assign(n_radial, Dual(0.0));
  ws.moments.resize(ns);
  std::vector<double> moment_val(ns, 0.0), moment_tan(ns, 0.0);
  SiteOutputs<Dual> so;
  so.radial_grad = ws.radial.data();
  so.scalar_moments = ws.moments.data();
  const NeighbourList& nl = c.nl;
  for (int i = 0; i < n; ++i) {
    const int b = nl.offsets[i], nn = nl.offsets[i + 1] - b;
    std::vector<Dual>& dr = ws.dr;
    dr.resize(3 * static_cast<size_t>(nn));
    for (int p = 0; p < nn; ++p) {
      const double* r = &nl.dr[3 * static_cast<size_t>(b + p)];
      const int j = nl.index[b + p];
      for (int a = 0; a < 3; ++a) {
        double t = M[3 * a] * r[0] + M[3 * a + 1] * r[1] + M[3 * a + 2] * r[2];
        if (cf != 0.0) t += cf * (ws.forces[3 * j + a] - ws.forces[3 * i + a]);
        dr[3 * p + a] = Dual(r[a], t);
      }
    }
    evd.evaluate(c.types[i], nn, dr.data(), &c.zj[b], so);
    for (int a = 0; a < ns; ++a) {
      moment_val[a] += ws.moments[a].v;
      moment_tan[a] += ws.moments[a].d;
    }
    grad[n_radial + c.types[i]] += ce;  // dE/d species_coeffs[z] = number of atoms of z
  }
  for (size_t k = 0; k < n_radial; ++k) grad[k] += ce * ws.radial[k].v - ws.radial[k].d;
  double* gm = grad + n_radial + C;
  for (int a = 0; a < ns; ++a) gm[a] += ce * moment_val[a] - moment_tan[a];
  return loss;
}

// Adds this configuration's weighted normal equations A^T W A (n_lin x n_lin, row-major) and
// A^T W y for the linear parameters (species C, moment n_scalar) at fixed radial coefficients.
inline void config_normal_equations(const Model& m, const TrainConfig& c, const LossWeights& w,
                                    SiteEvaluator<double>& ev, FitWorkspace& ws, double* ata,
                                    double* aty) {
  const int n = c.n, C = m.C, ns = m.n_scalar(), nl_ = C + ns;
  const NeighbourList& nl = c.nl;
  // Rows: energy (1), stress (6), forces (3n); columns: species then moments.
  const size_t n_rows = 1 + 6 + 3 * static_cast<size_t>(n);
  ws.rows.assign(n_rows * nl_, 0.0);
  double* E = &ws.rows[0];
  double* S = &ws.rows[nl_];
  double* F = &ws.rows[7 * static_cast<size_t>(nl_)];
  ws.basis.resize(ns);
  for (int i = 0; i < n; ++i) {
    const int b = nl.offsets[i], nn = nl.offsets[i + 1] - b;
    ws.basis_grad.resize(static_cast<size_t>(ns) * 3 * nn);
    ev.basis_gradients(c.types[i], nn, &nl.dr[3 * static_cast<size_t>(b)], &c.zj[b], ws.basis.data(),
                       ws.basis_grad.data());
    E[c.types[i]] += 1.0;
    for (int a = 0; a < ns; ++a) {
      E[C + a] += ws.basis[a];
      const double* g = &ws.basis_grad[static_cast<size_t>(a) * 3 * nn];
      for (int p = 0; p < nn; ++p) {
        const int j = nl.index[b + p];
        const double* r = &nl.dr[3 * static_cast<size_t>(b + p)];
        for (int d = 0; d < 3; ++d) {
          F[(3 * static_cast<size_t>(i) + d) * nl_ + C + a] += g[3 * p + d];
          F[(3 * static_cast<size_t>(j) + d) * nl_ + C + a] -= g[3 * p + d];
        }
        for (int k = 0; k < 6; ++k) S[k * nl_ + C + a] -= g[3 * p + kVoigtA[k]] * r[kVoigtB[k]];
      }
    }
  }
  const double inv_n2 = 1.0 / (static_cast<double>(n) * n);
  auto add_row = [&](const double* row, double target, double weight) {
    if (weight == 0.0) return;
    for (int p = 0; p < nl_; ++p) {
      const double wp = weight * row[p];
      if (wp == 0.0) continue;
      aty[p] += wp * target;
      double* out = ata + static_cast<size_t>(p) * nl_;
      for (int q = 0; q < nl_; ++q) out[q] += wp * row[q];
    }
  };
  if (c.has_energy) add_row(E, c.energy, c.weight * w.energy * inv_n2);
  if (c.has_stress)
    for (int k = 0; k < 6; ++k) add_row(S + k * nl_, c.stress[k], c.weight * w.stress * inv_n2);
  if (c.has_forces)
    for (int k = 0; k < 3 * n; ++k)
      add_row(F + static_cast<size_t>(k) * nl_, c.forces[k], c.weight * w.forces / w.force_norm);
}

// Sum over configurations of config_loss (and its gradient into grad, if not null), in parallel
// over configurations. Configuration k always goes to thread k % n_threads and partial sums
// are added in thread order, so the result is deterministic for a given thread count.
inline double total_loss(const Model& m, const std::vector<TrainConfig>& configs,
                         const LossWeights& w, int n_threads, double* grad, size_t n_params) {
  const int nt = n_threads > 0 ? n_threads : 1;
  std::vector<std::vector<double>> grads(nt);
  std::vector<double> losses(nt, 0.0);
  const int nc = static_cast<int>(configs.size());
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
#endif
  {
#ifdef _OPENMP
    const int t = omp_get_thread_num();
#else
    const int t = 0;
#endif
    SiteEvaluator<double> ev(m);
    SiteEvaluator<Dual> evd(m);
    FitWorkspace ws;
    if (grad) grads[t].assign(n_params, 0.0);
    double* g = grad ? grads[t].data() : nullptr;
#ifdef _OPENMP
#pragma omp for schedule(static, 1)
#endif
    for (int k = 0; k < nc; ++k) losses[t] += config_loss(m, configs[k], w, ev, evd, ws, g);
  }
  double loss = 0.0;
  for (int t = 0; t < nt; ++t) {
    loss += losses[t];
    if (grad && !grads[t].empty())
      for (size_t p = 0; p < n_params; ++p) grad[p] += grads[t][p];
  }
  return loss;
}

// Sum over configurations of the normal equations (ata: n_lin x n_lin, aty: n_lin), parallel
// and deterministic like total_loss.
inline void total_normal_equations(const Model& m, const std::vector<TrainConfig>& configs,
                                   const LossWeights& w, int n_threads, double* ata, double* aty) {
  const int nt = n_threads > 0 ? n_threads : 1;
  const size_t nl = static_cast<size_t>(m.C + m.n_scalar());
  std::vector<std::vector<double>> atas(nt), atys(nt);
  const int nc = static_cast<int>(configs.size());
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
#endif
  {
#ifdef _OPENMP
    const int t = omp_get_thread_num();
#else
    const int t = 0;
#endif
    SiteEvaluator<double> ev(m);
    FitWorkspace ws;
    atas[t].assign(nl * nl, 0.0);
    atys[t].assign(nl, 0.0);
#ifdef _OPENMP
#pragma omp for schedule(static, 1)
#endif
    for (int k = 0; k < nc; ++k)
      config_normal_equations(m, configs[k], w, ev, ws, atas[t].data(), atys[t].data());
  }
  for (int t = 0; t < nt; ++t) {
    if (atas[t].empty()) continue;
    for (size_t p = 0; p < nl * nl; ++p) ata[p] += atas[t][p];
    for (size_t p = 0; p < nl; ++p) aty[p] += atys[t][p];
  }
}

}  // namespace mtp
