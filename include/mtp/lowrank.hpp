// Contraction of low-rank radial factors (docs/lowrank-format.md) to the dense radial tensor
// c[z_i, z_j, mu, b] of the kernel (flat index ((z_i*C + z_j)*K + mu)*R + b). Header-only,
// no dependencies; used when a factored file is loaded (include/mtp/mtp_file.hpp). Every sum
// runs over its bond index in ascending order.
#pragma once

#include <cstddef>
#include <vector>

namespace mtp {

// M = U V^T with U (m x r) and V (n x r) row-major. For both unfoldings of the format ("pairs":
// rows z_i*C + z_j, columns mu*R + b; "pairs_funcs": rows (z_i*C + z_j)*K + mu, columns b) the
// flat index row*n + col of M is the dense layout.
inline std::vector<double> contract_mf(const std::vector<double>& U, const std::vector<double>& V,
                                       size_t m, size_t n, int r) {
  std::vector<double> c(m * n, 0.0);
  for (size_t a = 0; a < m; ++a)
    for (size_t b = 0; b < n; ++b) {
      double s = 0.0;
      for (int k = 0; k < r; ++k) s += U[a * r + k] * V[b * r + k];
      c[a * n + b] = s;
    }
  return c;
}

// Tensor train with cores k = 0..3 of shape (rk[k], n_k, rk[k+1]), n = (C, C, K, R),
// rk = {1, r1, r2, r3, 1}, element [a, i, b] at (a*n_k + i)*rk[k+1] + b:
// c[i,j,mu,b] = sum core1[0,i,:] core2[:,j,:] core3[:,mu,:] core4[:,b,0], contracted left to right.
inline std::vector<double> contract_tt(const std::vector<double> core[4], int C, int K, int R,
                                       const long rk[5]) {
  std::vector<double> t12(size_t(C) * C * rk[2], 0.0), t123(size_t(C) * C * K * rk[3], 0.0);
  for (int i = 0; i < C; ++i)
    for (int j = 0; j < C; ++j)
      for (long b = 0; b < rk[2]; ++b) {
        double s = 0.0;
        for (long a = 0; a < rk[1]; ++a) s += core[0][i * rk[1] + a] * core[1][(a * C + j) * rk[2] + b];
        t12[(size_t(i) * C + j) * rk[2] + b] = s;
      }
  for (size_t ij = 0; ij < size_t(C) * C; ++ij)
    for (int mu = 0; mu < K; ++mu)
      for (long c3 = 0; c3 < rk[3]; ++c3) {
        double s = 0.0;
        for (long b = 0; b < rk[2]; ++b) s += t12[ij * rk[2] + b] * core[2][(b * K + mu) * rk[3] + c3];
        t123[(ij * K + mu) * rk[3] + c3] = s;
      }
  std::vector<double> c(size_t(C) * C * K * R, 0.0);
  for (size_t ijm = 0; ijm < size_t(C) * C * K; ++ijm)
    for (int b = 0; b < R; ++b) {
      double s = 0.0;
      for (long c3 = 0; c3 < rk[3]; ++c3) s += t123[ijm * rk[3] + c3] * core[3][c3 * R + b];
      c[ijm * R + b] = s;
    }
  return c;
}

}  // namespace mtp
