// Site energy of one atom and its derivatives: the only place the MTP math is written.
//
// SiteEvaluator<T> is templated on the scalar type of the geometry so that the fitting code can
// run it with forward-mode dual numbers (derivatives of forces with respect to parameters
// without forming Jacobians); T = double is the evaluation path used by pyfit and LAMMPS.
#pragma once

#include <cmath>
#include <vector>

#include "model.hpp"

namespace mtp {

// Outputs requested from SiteEvaluator::evaluate. Null pointers mean "not needed".
template <class T>
struct SiteOutputs {
  T* grad = nullptr;          // n_neigh x 3: dV_i / d r_ij
  T* scalar_moments = nullptr;  // n_scalar: basis values B_alpha (dV_i / d moment_coeffs)
  T* radial_grad = nullptr;   // C*C*K*R accumulated (+=): dV_i / d c[z_i, z_j, mu, b]
};

template <class T>
class SiteEvaluator {
 public:
  explicit SiteEvaluator(const Model& model) : m_(model) {}

  // Site energy of an atom of species zi with n neighbours at displacements dr (n x 3,
  // r_ij = x_j - x_i) of species zj. Every neighbour must satisfy 0 < |r_ij|; neighbours at
  // |r_ij| >= max_dist contribute nothing. Returns V_i (including species_coeffs[zi]).
  T evaluate(int zi, int n, const T* dr, const int* zj, const SiteOutputs<T>& out) {
    const Model& m = m_;
    const int K = m.K, R = m.R, nb = m.n_basic(), nm = m.monos.size();
    resize(n);
    std::fill(moments_.begin(), moments_.end(), T(0));

    // Forward pass 1: geometry.
    for (int j = 0; j < n; ++j) {
      T* u = &unit_[3 * j];
      const T x = dr[3 * j], y = dr[3 * j + 1], z = dr[3 * j + 2];
      using std::sqrt;
      const T r = sqrt(x * x + y * y + z * z);
      dist_[j] = r;
      active_[j] = (r < m.max_dist) ? 1 : 0;
      const T inv_r = T(1) / r;
      u[0] = x * inv_r;
      u[1] = y * inv_r;
      u[2] = z * inv_r;
    }
    // Forward pass 2: radial basis of all neighbours at once (independent across neighbours,
    // so the Chebyshev recurrence pipelines / vectorises), stored b-major: q_[b * n + j].
    radial_basis_batch(n);
    // Forward pass 3: radial functions, angular monomials, basic moments.
    for (int j = 0; j < n; ++j) {
      if (!active_[j]) continue;
      const T* u = &unit_[3 * j];
      T* f = &f_[K * j];
      T* fd = &fd_[K * j];
      const double* c = &m.radial[static_cast<size_t>(zi * m.C + zj[j]) * K * R];
      for (int mu = 0; mu < K; ++mu) {
        T s = T(0), sd = T(0);
        const double* cm = c + mu * R;
        for (int b = 0; b < R; ++b) {
          s += cm[b] * q_[b * n + j];
          sd += cm[b] * qd_[b * n + j];
        }
        f[mu] = s;
        fd[mu] = sd;
      }
      T* mono = &mono_[static_cast<size_t>(nm) * j];
      mono[0] = T(1);
      for (int p = 1; p < nm; ++p) mono[p] = mono[m.monos.parent[p]] * u[m.monos.parent_dir[p]];
      for (int b = 0; b < nb; ++b) moments_[b] += f[m.basic_mu[b]] * mono[m.basic_mono[b]];
    }

    // Contractions.
    const int nt = m.n_times();
    for (int t = 0; t < nt; ++t)
      moments_[m.times_out[t]] += m.times_k[t] * moments_[m.times_i[t]] * moments_[m.times_j[t]];

    T energy = T(m.species[zi]);
    const int ns = m.n_scalar();
    for (int a = 0; a < ns; ++a) energy += m.moment[a] * moments_[m.mapping[a]];
    if (out.scalar_moments)
      for (int a = 0; a < ns; ++a) out.scalar_moments[a] = moments_[m.mapping[a]];
    if (!out.grad && !out.radial_grad) return energy;

    // Reverse pass through the contractions.
    std::fill(adj_.begin(), adj_.end(), T(0));
    for (int a = 0; a < ns; ++a) adj_[m.mapping[a]] += m.moment[a];
    for (int t = nt - 1; t >= 0; --t) {
      const T w = m.times_k[t] * adj_[m.times_out[t]];
      adj_[m.times_i[t]] += w * moments_[m.times_j[t]];
      adj_[m.times_j[t]] += w * moments_[m.times_i[t]];
    }

    // Reverse pass through the basic moments, per neighbour.
    for (int j = 0; j < n; ++j) {
      T* g = out.grad ? out.grad + 3 * j : nullptr;
      if (!active_[j]) {
        if (g) g[0] = g[1] = g[2] = T(0);
        continue;
      }
      const T* mono = &mono_[static_cast<size_t>(nm) * j];
      const T* f = &f_[K * j];
      const T* fd = &fd_[K * j];
      if (out.radial_grad) {
        // dV/dc[zi, zj, mu, b] = sum_{basic with mu} adj * mono * Q_b
        std::fill(smu_.begin(), smu_.end(), T(0));
        for (int b = 0; b < nb; ++b) smu_[m.basic_mu[b]] += adj_[b] * mono[m.basic_mono[b]];
        T* rg = out.radial_grad + static_cast<size_t>(zi * m.C + zj[j]) * K * R;
        for (int mu = 0; mu < K; ++mu)
          for (int b = 0; b < R; ++b) rg[mu * R + b] += smu_[mu] * q_[b * n + j];
      }
      if (!g) continue;
      // A_p = sum_{basic on monomial p} adj * f_mu, B_p = ... adj * f'_mu.
      std::fill(ap_.begin(), ap_.end(), T(0));
      std::fill(bp_.begin(), bp_.end(), T(0));
      for (int b = 0; b < nb; ++b) {
        const int p = m.basic_mono[b];
        ap_[p] += adj_[b] * f[m.basic_mu[b]];
        bp_[p] += adj_[b] * fd[m.basic_mu[b]];
      }
      // d mono_p / d r_vec = (grad_u mono_p - deg_p mono_p u) / r
      T radial_part = T(0), degree_part = T(0);
      T gu[3] = {T(0), T(0), T(0)};
      for (int p = 0; p < nm; ++p) {
        const T a = ap_[p];
        radial_part += bp_[p] * mono[p];
        if (p == 0) continue;
        degree_part += a * (m.monos.degree[p] * mono[p]);
        const auto& e = m.monos.exps[p];
        const auto& lw = m.monos.lower[p];
        for (int d = 0; d < 3; ++d)
          if (lw[d] >= 0) gu[d] += a * (e[d] * mono[lw[d]]);
      }
      const T* u = &unit_[3 * j];
      const T inv_r = T(1) / dist_[j];
      const T along = radial_part - degree_part * inv_r;
      for (int d = 0; d < 3; ++d) g[d] = u[d] * along + gu[d] * inv_r;
    }
    return energy;
  }

  // Chebyshev radial basis Q_b(r) = scaling T_b(xi) (max_dist - r)^2 and dQ_b/dr for the n
  // current neighbours, xi = (2 r - min_dist - max_dist) / (max_dist - min_dist).
  // Output b-major: q_[b * n + j], qd_[b * n + j]. Neighbours beyond max_dist get 0.
  void radial_basis_batch(int n) {
    const Model& m = m_;
    const double inv_w = 1.0 / (m.max_dist - m.min_dist);
    const double dxi = 2.0 * inv_w;
    const double s = m.scaling;
    T* xi = &tmp_[0];
    T* d = &tmp_[n];
    T* t_prev = &tmp_[2 * n];
    T* t_cur = &tmp_[3 * n];
    T* td_prev = &tmp_[4 * n];
    T* td_cur = &tmp_[5 * n];
    for (int j = 0; j < n; ++j) {
      const T r = active_[j] ? dist_[j] : T(m.max_dist);
      xi[j] = (2.0 * r - (m.min_dist + m.max_dist)) * inv_w;
      d[j] = m.max_dist - r;
      t_prev[j] = T(1);
      t_cur[j] = xi[j];
      td_prev[j] = T(0);
      td_cur[j] = T(1);
      q_[j] = s * (d[j] * d[j]);
      qd_[j] = s * (-2.0 * d[j]);
    }
    if (m.R > 1)
      for (int j = 0; j < n; ++j) {
        q_[n + j] = s * (xi[j] * (d[j] * d[j]));
        qd_[n + j] = s * (dxi * (d[j] * d[j]) - 2.0 * xi[j] * d[j]);
      }
    for (int b = 2; b < m.R; ++b) {
      T* q = &q_[b * n];
      T* qd = &qd_[b * n];
      for (int j = 0; j < n; ++j) {
        const T t_next = 2.0 * xi[j] * t_cur[j] - t_prev[j];
        const T td_next = 2.0 * t_cur[j] + 2.0 * xi[j] * td_cur[j] - td_prev[j];
        t_prev[j] = t_cur[j];
        t_cur[j] = t_next;
        td_prev[j] = td_cur[j];
        td_cur[j] = td_next;
        const T d2 = d[j] * d[j];
        q[j] = s * (t_next * d2);
        qd[j] = s * (td_next * dxi * d2 - 2.0 * t_next * d[j]);
      }
    }
  }

 private:
  void resize(int n) {
    const Model& m = m_;
    const size_t nm = m.monos.size();
    if (static_cast<int>(dist_.size()) < n) {
      dist_.resize(n);
      active_.resize(n);
      unit_.resize(3 * n);
      f_.resize(static_cast<size_t>(m.K) * n);
      fd_.resize(static_cast<size_t>(m.K) * n);
      q_.resize(static_cast<size_t>(m.R) * n);
      qd_.resize(static_cast<size_t>(m.R) * n);
      tmp_.resize(6 * static_cast<size_t>(n));
      mono_.resize(nm * n);
    }
    if (moments_.size() != static_cast<size_t>(m.n_moments)) {
      moments_.resize(m.n_moments);
      adj_.resize(m.n_moments);
      ap_.resize(nm);
      bp_.resize(nm);
      smu_.resize(m.K);
    }
  }

  const Model& m_;
  std::vector<T> tmp_, dist_, unit_, f_, fd_, q_, qd_, mono_, moments_, adj_, ap_, bp_, smu_;
  std::vector<char> active_;
};

}  // namespace mtp
