// Site energy of one atom and its derivatives: the only place the MTP math is written.
//
// SiteEvaluator<T> is templated on the scalar type of the geometry so that the fitting code can
// run it with forward-mode dual numbers (derivatives of forces with respect to parameters
// without forming Jacobians); T = double is the evaluation path used by pyfit and LAMMPS.
//
// Data layout: every per-neighbour quantity is stored structure-of-arrays, x_[k * n + j] for
// neighbour j, so that each step below is a loop over neighbours on contiguous memory (it
// pipelines and vectorises; there is no per-flop index load).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "model.hpp"

namespace mtp {

// Outputs requested from SiteEvaluator::evaluate. Null pointers mean "not needed".
template <class T>
struct SiteOutputs {
  T* grad = nullptr;            // n_neigh x 3: dV_i / d r_ij
  T* scalar_moments = nullptr;  // n_scalar: basis values B_alpha (dV_i / d moment_coeffs)
  T* radial_grad = nullptr;     // C*C*K*R accumulated (+=): dV_i / d c[z_i, z_j, mu, b]
};

namespace detail {
// sum_j a[j] * b[j] with four partial sums (a fixed, deterministic order).
template <class T>
inline T dot(const T* a, const T* b, int n) {
  T s0 = T(0), s1 = T(0), s2 = T(0), s3 = T(0);
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    s0 += a[j] * b[j];
    s1 += a[j + 1] * b[j + 1];
    s2 += a[j + 2] * b[j + 2];
    s3 += a[j + 3] * b[j + 3];
  }
  for (; j < n; ++j) s0 += a[j] * b[j];
  return (s0 + s1) + (s2 + s3);
}
}  // namespace detail

template <class T>
class SiteEvaluator {
 public:
  explicit SiteEvaluator(const Model& model) : m_(model) { build_tables(); }

  // Site energy of an atom of species zi with n neighbours at displacements dr (n x 3,
  // r_ij = x_j - x_i) of species zj. Every neighbour must satisfy 0 < |r_ij|; neighbours at
  // |r_ij| >= max_dist contribute nothing. Returns V_i (including species_coeffs[zi]).
  T evaluate(int zi, int n, const T* dr, const int* zj, const SiteOutputs<T>& out) {
    const Model& m = m_;
    const int K = m.K, R = m.R, nb = m.n_basic(), nm = m.monos.size();
    resize(n);
    T* ux = &unit_[0];
    T* uy = &unit_[n];
    T* uz = &unit_[2 * n];

    // 1. Geometry.
    for (int j = 0; j < n; ++j) {
      const T x = dr[3 * j], y = dr[3 * j + 1], z = dr[3 * j + 2];
      using std::sqrt;
      const T r = sqrt(x * x + y * y + z * z);
      const T inv_r = T(1) / r;
      dist_[j] = r;
      inv_r_[j] = inv_r;
      ux[j] = x * inv_r;
      uy[j] = y * inv_r;
      uz[j] = z * inv_r;
    }
    // 2. Radial basis Q_b and dQ_b/dr, b-major.
    radial_basis(n);
    // 3. Radial functions f_mu = sum_b c[zi, zj, mu, b] Q_b (and f'_mu), mu-major.
    std::fill(f_.begin(), f_.begin() + static_cast<size_t>(K) * n, T(0));
    std::fill(fd_.begin(), fd_.begin() + static_cast<size_t>(K) * n, T(0));
    const size_t KR = static_cast<size_t>(K) * R;
    const double* c_i = &m.radial[static_cast<size_t>(zi) * m.C * KR];
    for (int mu = 0; mu < K; ++mu) {
      T* f = &f_[static_cast<size_t>(mu) * n];
      T* fd = &fd_[static_cast<size_t>(mu) * n];
      for (int b = 0; b < R; ++b) {
        const T* q = &q_[static_cast<size_t>(b) * n];
        const T* qd = &qd_[static_cast<size_t>(b) * n];
        const double* c = c_i + mu * R + b;  // + zj * KR
        if (m.C == 1) {
          const double cc = c[0];
          for (int j = 0; j < n; ++j) {
            f[j] += cc * q[j];
            fd[j] += cc * qd[j];
          }
        } else {
          for (int j = 0; j < n; ++j) {
            const double cc = c[zj[j] * KR];
            f[j] += cc * q[j];
            fd[j] += cc * qd[j];
          }
        }
      }
    }
    // 4. Angular monomials ux^a uy^b uz^c, monomial-major.
    std::fill(mono_.begin(), mono_.begin() + n, T(1));
    for (int p = 1; p < nm; ++p) {
      const T* parent = &mono_[static_cast<size_t>(m.monos.parent[p]) * n];
      const T* u = &unit_[static_cast<size_t>(m.monos.parent_dir[p]) * n];
      T* mp = &mono_[static_cast<size_t>(p) * n];
      for (int j = 0; j < n; ++j) mp[j] = parent[j] * u[j];
    }
    // 5. Basic moments.
    for (int b = 0; b < nb; ++b)
      moments_[b] = detail::dot(&f_[static_cast<size_t>(m.basic_mu[b]) * n],
                                &mono_[static_cast<size_t>(m.basic_mono[b]) * n], n);
    std::fill(moments_.begin() + nb, moments_.end(), T(0));

    // 6. Contractions, moment[out] += k * moment[i] * moment[j] in file order; consecutive
    //    entries with the same output are summed in a register (same order of additions).
    const int nblk = m.n_blocks();
    const Model::Term* terms = m.terms.data();
    const int* bb = m.block_begin.data();
    const int* bo = m.block_out.data();
    T* mom = moments_.data();
    for (int blk = 0; blk < nblk; ++blk) {
      T acc = mom[bo[blk]];
      for (int t = bb[blk]; t < bb[blk + 1]; ++t)
        acc += static_cast<double>(terms[t].k) * mom[terms[t].i] * mom[terms[t].j];
      mom[bo[blk]] = acc;
    }

    T energy = T(m.species[zi]);
    const int ns = m.n_scalar();
    for (int a = 0; a < ns; ++a) energy += m.moment[a] * mom[m.mapping[a]];
    if (out.scalar_moments)
      for (int a = 0; a < ns; ++a) out.scalar_moments[a] = mom[m.mapping[a]];
    if (!out.grad && !out.radial_grad) return energy;

    // 7. Reverse pass through the contractions.
    T* adj = adj_.data();
    std::fill(adj_.begin(), adj_.end(), T(0));
    for (int a = 0; a < ns; ++a) adj[m.mapping[a]] += m.moment[a];
    for (int blk = nblk - 1; blk >= 0; --blk) {
      const T w0 = adj[bo[blk]];
      for (int t = bb[blk + 1] - 1; t >= bb[blk]; --t) {
        const T w = static_cast<double>(terms[t].k) * w0;
        adj[terms[t].i] += w * mom[terms[t].j];
        adj[terms[t].j] += w * mom[terms[t].i];
      }
    }

    // 8. Radial coefficient gradient: dV/dc[zi, zj, mu, b] = sum_j S_mu(j) Q_b(j),
    //    S_mu(j) = sum_{basic on mu} adj * mono.
    if (out.radial_grad) {
      std::fill(s_.begin(), s_.begin() + static_cast<size_t>(K) * n, T(0));
      for (int b = 0; b < nb; ++b) {
        const T a = adj[b];
        T* s = &s_[static_cast<size_t>(m.basic_mu[b]) * n];
        const T* mp = &mono_[static_cast<size_t>(m.basic_mono[b]) * n];
        for (int j = 0; j < n; ++j) s[j] += a * mp[j];
      }
      for (int j = 0; j < n; ++j) {
        T* rg = out.radial_grad + (static_cast<size_t>(zi) * m.C + zj[j]) * KR;
        for (int mu = 0; mu < K; ++mu) {
          const T smu = s_[static_cast<size_t>(mu) * n + j];
          for (int b = 0; b < R; ++b) rg[mu * R + b] += smu * q_[static_cast<size_t>(b) * n + j];
        }
      }
    }
    if (!out.grad) return energy;

    // 9. Gradient with respect to r_ij. With A_p = sum_{basic on p} adj f_mu and
    //    B_p = sum_{basic on p} adj f'_mu:
    //    g = u (sum_p B_p mono_p - sum_p deg_p A_p mono_p / r) + (sum_p A_p grad_u mono_p) / r.
    for (int p : used_monos_) {
      std::fill(&ap_[static_cast<size_t>(p) * n], &ap_[static_cast<size_t>(p) * n] + n, T(0));
      std::fill(&bp_[static_cast<size_t>(p) * n], &bp_[static_cast<size_t>(p) * n] + n, T(0));
    }
    for (int b = 0; b < nb; ++b) {
      const T a = adj[b];
      const size_t p = static_cast<size_t>(m.basic_mono[b]) * n;
      const size_t mu = static_cast<size_t>(m.basic_mu[b]) * n;
      T* ap = &ap_[p];
      T* bp = &bp_[p];
      const T* f = &f_[mu];
      const T* fd = &fd_[mu];
      for (int j = 0; j < n; ++j) {
        ap[j] += a * f[j];
        bp[j] += a * fd[j];
      }
    }
    T* along = &acc_[0];
    T* deg_part = &acc_[n];
    T* gx = &acc_[2 * n];
    T* gy = &acc_[3 * n];
    T* gz = &acc_[4 * n];
    std::fill(acc_.begin(), acc_.begin() + 5 * static_cast<size_t>(n), T(0));
    for (int p : used_monos_) {
      const T* mp = &mono_[static_cast<size_t>(p) * n];
      const T* ap = &ap_[static_cast<size_t>(p) * n];
      const T* bp = &bp_[static_cast<size_t>(p) * n];
      const double deg = m.monos.degree_d[p];
      for (int j = 0; j < n; ++j) {
        along[j] += bp[j] * mp[j];
        deg_part[j] += deg * (ap[j] * mp[j]);
      }
    }
    T* gdir[3] = {gx, gy, gz};
    for (int d = 0; d < 3; ++d) {
      T* g = gdir[d];
      for (const auto& term : dterms_[d]) {
        const T* ap = &ap_[static_cast<size_t>(term.p) * n];
        const T* lo = &mono_[static_cast<size_t>(term.lower) * n];
        const double c = term.coef;
        for (int j = 0; j < n; ++j) g[j] += c * (ap[j] * lo[j]);
      }
    }
    for (int j = 0; j < n; ++j) {
      const T inv_r = inv_r_[j];
      const T a = along[j] - deg_part[j] * inv_r;
      out.grad[3 * j] = ux[j] * a + gx[j] * inv_r;
      out.grad[3 * j + 1] = uy[j] * a + gy[j] * inv_r;
      out.grad[3 * j + 2] = uz[j] * a + gz[j] * inv_r;
    }
    return energy;
  }

  // For the linear least-squares fit of the moment coefficients: the basis values B_alpha of
  // this site (n_scalar) and their gradients dB_alpha / dr_ij into G (n_scalar x n x 3).
  // One reverse sweep through the contractions per alpha (skipping zero adjoints), then
  // G_alpha = sum_b (dB_alpha / d basic_b) D_b with D_b = d basic_b / dr_ij.
  void basis_gradients(int zi, int n, const T* dr, const int* zj, T* B, T* G) {
    const Model& m = m_;
    const int nb = m.n_basic(), ns = m.n_scalar();
    SiteOutputs<T> values;
    values.scalar_moments = B;
    evaluate(zi, n, dr, zj, values);  // forward only: fills f_, fd_, mono_, unit_, moments_
    const size_t n3 = 3 * static_cast<size_t>(n);
    dbasic_.resize(static_cast<size_t>(nb) * n3);
    const T* ux = &unit_[0];
    const T* uy = &unit_[n];
    const T* uz = &unit_[2 * n];
    for (int b = 0; b < nb; ++b) {
      const int p = m.basic_mono[b];
      const T* f = &f_[static_cast<size_t>(m.basic_mu[b]) * n];
      const T* fd = &fd_[static_cast<size_t>(m.basic_mu[b]) * n];
      const T* mp = &mono_[static_cast<size_t>(p) * n];
      const double deg = m.monos.degree_d[p];
      T* D = &dbasic_[b * n3];
      for (int j = 0; j < n; ++j) {
        const T along = fd[j] * mp[j] - deg * f[j] * mp[j] * inv_r_[j];
        const T* u[3] = {ux, uy, uz};
        for (int d = 0; d < 3; ++d) {
          const int lo = m.monos.lower[p][d];
          const T gu = lo >= 0 ? m.monos.exps[p][d] * mono_[static_cast<size_t>(lo) * n + j] : T(0);
          D[3 * j + d] = u[d][j] * along + f[j] * gu * inv_r_[j];
        }
      }
    }
    std::fill(G, G + static_cast<size_t>(ns) * n3, T(0));
    const int nblk = m.n_blocks();
    const Model::Term* terms = m.terms.data();
    const int* bb = m.block_begin.data();
    const int* bo = m.block_out.data();
    const T* mom = moments_.data();
    T* adj = adj_.data();
    for (int a = 0; a < ns; ++a) {
      std::fill(adj_.begin(), adj_.end(), T(0));
      adj[m.mapping[a]] = T(1);
      for (int blk = nblk - 1; blk >= 0; --blk) {
        const T w0 = adj[bo[blk]];
        if (w0 == T(0)) continue;
        for (int t = bb[blk + 1] - 1; t >= bb[blk]; --t) {
          const T w = static_cast<double>(terms[t].k) * w0;
          adj[terms[t].i] += w * mom[terms[t].j];
          adj[terms[t].j] += w * mom[terms[t].i];
        }
      }
      T* g = G + a * n3;
      for (int b = 0; b < nb; ++b) {
        const T w = adj[b];
        if (w == T(0)) continue;
        const T* D = &dbasic_[b * n3];
        for (size_t k = 0; k < n3; ++k) g[k] += w * D[k];
      }
    }
  }

 private:
  struct DTerm {
    int p, lower;
    double coef;
  };

  // Chebyshev radial basis Q_b(r) = scaling T_b(xi) (max_dist - r)^2 and dQ_b/dr,
  // xi = (2 r - min_dist - max_dist) / (max_dist - min_dist), into q_[b * n + j]. The factor
  // (max_dist - r) is clamped at 0, so neighbours beyond the cutoff give exactly 0 (values and
  // derivatives) without a branch.
  void radial_basis(int n) {
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
      const T r = dist_[j];
      xi[j] = (2.0 * r - (m.min_dist + m.max_dist)) * inv_w;
      d[j] = r < m.max_dist ? T(m.max_dist - r) : T(0);
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
      T* q = &q_[static_cast<size_t>(b) * n];
      T* qd = &qd_[static_cast<size_t>(b) * n];
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

  // Monomials that carry a basic moment, and the non-zero terms of grad_u mono_p per direction.
  void build_tables() {
    const Model& m = m_;
    std::vector<char> used(m.monos.size(), 0);
    for (int b = 0; b < m.n_basic(); ++b) used[m.basic_mono[b]] = 1;
    for (int p = 0; p < m.monos.size(); ++p) {
      if (!used[p]) continue;
      used_monos_.push_back(p);
      for (int d = 0; d < 3; ++d)
        if (m.monos.lower[p][d] >= 0)
          dterms_[d].push_back({p, m.monos.lower[p][d], static_cast<double>(m.monos.exps[p][d])});
    }
  }

  void resize(int n) {
    if (n <= capacity_ && !moments_.empty()) return;
    const Model& m = m_;
    const size_t c = static_cast<size_t>(std::max(n, capacity_));
    const size_t nm = m.monos.size();
    capacity_ = static_cast<int>(c);
    dist_.resize(c);
    inv_r_.resize(c);
    unit_.resize(3 * c);
    tmp_.resize(6 * c);
    acc_.resize(5 * c);
    f_.resize(m.K * c);
    fd_.resize(m.K * c);
    s_.resize(m.K * c);
    q_.resize(m.R * c);
    qd_.resize(m.R * c);
    mono_.resize(nm * c);
    ap_.resize(nm * c);
    bp_.resize(nm * c);
    moments_.resize(m.n_moments);
    adj_.resize(m.n_moments);
  }

  const Model& m_;
  int capacity_ = 0;
  std::vector<int> used_monos_;
  std::vector<DTerm> dterms_[3];
  std::vector<T> dist_, inv_r_, unit_, tmp_, acc_, f_, fd_, s_, q_, qd_, mono_, ap_, bp_;
  std::vector<T> moments_, adj_, dbasic_;
};

}  // namespace mtp
