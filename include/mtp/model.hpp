// Dense MTP model in the form the kernel evaluates.
//
// Header-only, C++17, no Python and no LAMMPS includes: this file is shared by the Cython
// extension of pyfit and by the LAMMPS pair style mtp/lowrank, so that fitting and MD evaluate
// exactly the same arithmetic.
//
// Layout conventions (the same as MLIP's .mtp files):
//   radial[((zi * C + zj) * K + mu) * R + b]  radial coefficient c[z_i, z_j, mu, b]
//   basic moment m = {mu, a, b, c}: sum_j f_mu(r_ij) ux^a uy^b uz^c
//   times entry t = {i, j, k, out}: moment[out] += k * moment[i] * moment[j], in order
//   site energy V_i = species[z_i] + sum_alpha moment_coeffs[alpha] * moment[mapping[alpha]]
#pragma once

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <vector>

namespace mtp {

// Angular monomials ux^a uy^b uz^c for all a + b + c <= max_nu, ordered by degree.
struct MonomialTable {
  int max_nu = 0;
  std::vector<std::array<int, 3>> exps;  // (a, b, c) per monomial
  std::vector<int> degree;               // a + b + c
  std::vector<int> parent;               // monomial this one is parent * u[parent_dir]; -1 for 1
  std::vector<int> parent_dir;
  std::vector<std::array<int, 3>> lower;  // index of (a-1,b,c), (a,b-1,c), (a,b,c-1); -1 if absent
  // Flat list of the non-zero terms of grad_u mono_p = sum_t coef_t * mono[lower_t] e_dir_t,
  // terms of monomial p at dterm_begin[p] .. dterm_begin[p+1]-1.
  std::vector<int> dterm_begin, dterm_lower, dterm_dir;
  std::vector<double> dterm_coef, degree_d;

  int index_of(int a, int b, int c) const {
    const int n = a + b + c;
    // Monomials of degree n start after all those of lower degree: n (n+1) (n+2) / 6.
    const int start = n * (n + 1) * (n + 2) / 6;
    // Within a degree, ordered by decreasing a then decreasing b.
    const int rest = n - a;  // b + c
    const int before_a = (n - a) * (n - a + 1) / 2;  // all with larger a
    return start + before_a + (rest - b);
  }

  void build(int nu_max) {
    max_nu = nu_max;
    exps.clear();
    for (int n = 0; n <= nu_max; ++n)
      for (int a = n; a >= 0; --a)
        for (int b = n - a; b >= 0; --b) exps.push_back({a, b, n - a - b});
    const int count = static_cast<int>(exps.size());
    degree.assign(count, 0);
    parent.assign(count, -1);
    parent_dir.assign(count, 0);
    lower.assign(count, {-1, -1, -1});
    for (int p = 0; p < count; ++p) {
      const auto& e = exps[p];
      degree[p] = e[0] + e[1] + e[2];
      for (int d = 0; d < 3; ++d) {
        if (e[d] > 0) {
          std::array<int, 3> l = e;
          --l[d];
          lower[p][d] = index_of(l[0], l[1], l[2]);
        }
      }
      for (int d = 0; d < 3; ++d) {
        if (e[d] > 0) {
          parent[p] = lower[p][d];
          parent_dir[p] = d;
          break;
        }
      }
    }
    dterm_begin.assign(1, 0);
    dterm_lower.clear();
    dterm_dir.clear();
    dterm_coef.clear();
    degree_d.assign(count, 0.0);
    for (int p = 0; p < count; ++p) {
      degree_d[p] = degree[p];
      for (int d = 0; d < 3; ++d)
        if (lower[p][d] >= 0) {
          dterm_lower.push_back(lower[p][d]);
          dterm_dir.push_back(d);
          dterm_coef.push_back(exps[p][d]);
        }
      dterm_begin.push_back(static_cast<int>(dterm_lower.size()));
    }
  }
  int size() const { return static_cast<int>(exps.size()); }
};

struct Model {
  // Hyper-parameters.
  int C = 0;  // species count
  int K = 0;  // radial functions
  int R = 0;  // radial basis size
  double min_dist = 0.0;
  double max_dist = 0.0;
  double scaling = 1.0;

  // Basis.
  int n_moments = 0;
  std::vector<int> basic_mu;    // per basic moment
  std::vector<int> basic_mono;  // per basic moment: monomial index
  // Contractions grouped into blocks of consecutive entries with the same output:
  // block b writes moment block_out[b] from terms block_begin[b] .. block_begin[b+1]-1.
  struct Term {
    int i, j, k;
  };
  std::vector<Term> terms;
  std::vector<int> block_out, block_begin;
  std::vector<int> mapping;  // scalar moments
  MonomialTable monos;

  // Parameters.
  std::vector<double> radial;   // C*C*K*R
  std::vector<double> species;  // C
  std::vector<double> moment;   // n_scalar

  int n_basic() const { return static_cast<int>(basic_mu.size()); }
  int n_times() const { return static_cast<int>(terms.size()); }
  int n_blocks() const { return static_cast<int>(block_out.size()); }
  int n_scalar() const { return static_cast<int>(mapping.size()); }
  int n_radial() const { return C * C * K * R; }

  // Builds the basis from MLIP-style arrays. Throws std::invalid_argument on inconsistent
  // input; callers (Python, LAMMPS) validate first and report file/line, this is the last guard.
  void set_basis(int n_moments_, int n_basic_, const int* basic /* n_basic x 4 */,
                 int n_times_, const int* times /* n_times x 4 */, int n_scalar_,
                 const int* mapping_) {
    n_moments = n_moments_;
    basic_mu.resize(n_basic_);
    basic_mono.resize(n_basic_);
    int nu_max = 0;
    for (int m = 0; m < n_basic_; ++m) {
      const int* e = basic + 4 * m;
      if (e[0] < 0 || e[0] >= K || e[1] < 0 || e[2] < 0 || e[3] < 0)
        throw std::invalid_argument("alpha_index_basic entry " + std::to_string(m) +
                                    " out of range");
      nu_max = std::max(nu_max, e[1] + e[2] + e[3]);
    }
    monos.build(nu_max);
    for (int m = 0; m < n_basic_; ++m) {
      const int* e = basic + 4 * m;
      basic_mu[m] = e[0];
      basic_mono[m] = monos.index_of(e[1], e[2], e[3]);
    }
    terms.resize(n_times_);
    block_out.clear();
    block_begin.clear();
    for (int t = 0; t < n_times_; ++t) {
      const int* e = times + 4 * t;
      if (e[0] < 0 || e[1] < 0 || e[0] >= n_moments || e[1] >= n_moments || e[3] < n_basic_ ||
          e[3] >= n_moments)
        throw std::invalid_argument("alpha_index_times entry " + std::to_string(t) +
                                    " out of range");
      terms[t] = {e[0], e[1], e[2]};
      if (block_out.empty() || block_out.back() != e[3]) {
        block_out.push_back(e[3]);
        block_begin.push_back(t);
      }
    }
    block_begin.push_back(n_times_);
    mapping.assign(mapping_, mapping_ + n_scalar_);
    for (int a = 0; a < n_scalar_; ++a)
      if (mapping[a] < 0 || mapping[a] >= n_moments)
        throw std::invalid_argument("alpha_moment_mapping entry " + std::to_string(a) +
                                    " out of range");
  }
};

}  // namespace mtp
