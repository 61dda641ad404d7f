// Radial-function step of the MTP site evaluation: dense coefficients vs contraction orders
// that work on low-rank factors directly. Build and run through bench/bench_radial.py.
//
// Per site with n neighbours, f_mu(r_j) = sum_b c[z_i, z_j, mu, b] Q_b(r_j) and its derivative:
//   dense        K*R       multiply-adds per neighbour (each of f, f')   (what the kernel does)
//   MF pairs     r*K*R + r*K: g_{k,mu}(j) = sum_b V[mu R + b, k] Q_b(j), f = sum_k U[zi zj, k] g
//   MF pairs_funcs / TT (rank r of the last bond)
//                r*R + r*K: h_k(j) = sum_b V[b, k] Q_b(j) (species independent),
//                           f_mu = sum_k W[zi, zj, mu, k] h_k(j) (W precomputed at load)
// The program times each order and the whole site (SiteEvaluator::evaluate with forces) on the
// 42 neighbours of fcc Cu (a = 3.62 Å, cutoff 5 Å).
//
// usage: bench_radial FILE.mtp C [ranks...]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "mtp/mtp_file.hpp"
#include "mtp/site.hpp"

using clk = std::chrono::steady_clock;

template <class F>
static double best_ns(F&& f, int reps) {
  double best = 1e300;
  for (int t = 0; t < 25; ++t) {
    const auto a = clk::now();
    for (int r = 0; r < reps; ++r) f();
    const double ns = std::chrono::duration<double, std::nano>(clk::now() - a).count() / reps;
    best = std::min(best, ns);
  }
  return best;
}

static volatile double sink;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s FILE.mtp C [ranks...]\n", argv[0]);
    return 2;
  }
  mtp::PotentialFile pf = mtp::read_potential(argv[1]);
  mtp::Model& m = pf.model;
  const int C = std::atoi(argv[2]);
  std::vector<int> ranks;
  for (int a = 3; a < argc; ++a) ranks.push_back(std::atoi(argv[a]));
  if (ranks.empty()) ranks = {1, 2, 3};
  // fcc neighbours within 5 Å
  std::vector<double> dr;
  const double a0 = 3.62;
  for (int i = -3; i <= 3; ++i)
    for (int j = -3; j <= 3; ++j)
      for (int k = -3; k <= 3; ++k)
        for (const auto& b : {std::array<double, 3>{0, 0, 0}, {0.5, 0.5, 0}, {0.5, 0, 0.5}, {0, 0.5, 0.5}}) {
          const double x = (i + b[0]) * a0, y = (j + b[1]) * a0, z = (k + b[2]) * a0;
          const double r2 = x * x + y * y + z * z;
          if (r2 > 1e-9 && r2 < 25.0) dr.insert(dr.end(), {x, y, z});
        }
  const int n = static_cast<int>(dr.size() / 3);
  std::mt19937 gen(1);
  std::normal_distribution<double> nd(0.0, 0.3);
  std::uniform_int_distribution<int> ud(0, C - 1);
  // C species: a radial tensor for C (the file's potential has its own C; only timing here)
  m.C = C;
  m.radial.resize(size_t(C) * C * m.K * m.R);
  for (double& v : m.radial) v = nd(gen);
  m.species.assign(C, 0.0);
  std::vector<int> zj(n);
  for (int& z : zj) z = ud(gen);
  const int K = m.K, R = m.R, zi = 0;

  mtp::SiteEvaluator<double> site(m);
  std::vector<double> grad(3 * size_t(n));
  mtp::SiteOutputs<double> so;
  so.grad = grad.data();
  const double t_site = best_ns([&] { sink = site.evaluate(zi, n, dr.data(), zj.data(), so); }, 300);

  std::vector<double> q(size_t(R) * n), qd(size_t(R) * n), f(size_t(K) * n), fd(size_t(K) * n);
  for (double& v : q) v = nd(gen);
  for (double& v : qd) v = nd(gen);
  const size_t KR = size_t(K) * R;
  const double* c_i = &m.radial[size_t(zi) * C * KR];
  auto dense = [&] {
    std::fill(f.begin(), f.end(), 0.0);
    std::fill(fd.begin(), fd.end(), 0.0);
    for (int mu = 0; mu < K; ++mu)
      for (int b = 0; b < R; ++b) {
        const double* c = c_i + mu * R + b;
        double* fm = &f[size_t(mu) * n];
        double* fdm = &fd[size_t(mu) * n];
        const double* qb = &q[size_t(b) * n];
        const double* qdb = &qd[size_t(b) * n];
        if (C == 1) {  // the kernel's loop (include/mtp/site.hpp, step 3)
          const double cc = c[0];
          for (int j = 0; j < n; ++j) {
            fm[j] += cc * qb[j];
            fdm[j] += cc * qdb[j];
          }
        } else {
          for (int j = 0; j < n; ++j) {
            const double cc = c[zj[j] * KR];
            fm[j] += cc * qb[j];
            fdm[j] += cc * qdb[j];
          }
        }
      }
    sink = f[0] + fd[n - 1];
  };
  const double t_dense = best_ns(dense, 3000);
  std::printf("K=%d R=%d C=%d n=%d site_ns=%.1f dense_ns=%.1f", K, R, C, n, t_site, t_dense);

  for (int r : ranks) {
    // MF pairs: V (K*R x r), U (C*C x r)
    std::vector<double> V(KR * r), U(size_t(C) * C * r), g(size_t(r) * K * n), gd(size_t(r) * K * n);
    for (double& v : V) v = nd(gen);
    for (double& v : U) v = nd(gen);
    auto mf_pairs = [&] {
      std::fill(g.begin(), g.end(), 0.0);
      std::fill(gd.begin(), gd.end(), 0.0);
      for (int k = 0; k < r; ++k)
        for (int mu = 0; mu < K; ++mu)
          for (int b = 0; b < R; ++b) {
            const double v = V[(size_t(mu) * R + b) * r + k];
            double* gm = &g[(size_t(k) * K + mu) * n];
            double* gdm = &gd[(size_t(k) * K + mu) * n];
            const double* qb = &q[size_t(b) * n];
            const double* qdb = &qd[size_t(b) * n];
            for (int j = 0; j < n; ++j) {
              gm[j] += v * qb[j];
              gdm[j] += v * qdb[j];
            }
          }
      for (int mu = 0; mu < K; ++mu) {
        double* fm = &f[size_t(mu) * n];
        double* fdm = &fd[size_t(mu) * n];
        for (int j = 0; j < n; ++j) {
          const double* u = &U[(size_t(zi) * C + zj[j]) * r];
          double s = 0, sd = 0;
          for (int k = 0; k < r; ++k) {
            s += u[k] * g[(size_t(k) * K + mu) * n + j];
            sd += u[k] * gd[(size_t(k) * K + mu) * n + j];
          }
          fm[j] = s;
          fdm[j] = sd;
        }
      }
      sink = f[0] + fd[n - 1];
    };
    // last-bond rank r (MF pairs_funcs, TT r3): h = V^T Q (r x n), f_mu = sum_k W[zi zj mu k] h_k
    std::vector<double> Vb(size_t(R) * r), W(size_t(C) * C * K * r), h(size_t(r) * n), hd(size_t(r) * n);
    for (double& v : Vb) v = nd(gen);
    for (double& v : W) v = nd(gen);
    auto last_bond = [&] {
      std::fill(h.begin(), h.end(), 0.0);
      std::fill(hd.begin(), hd.end(), 0.0);
      for (int k = 0; k < r; ++k)
        for (int b = 0; b < R; ++b) {
          const double v = Vb[size_t(b) * r + k];
          double* hk = &h[size_t(k) * n];
          double* hdk = &hd[size_t(k) * n];
          const double* qb = &q[size_t(b) * n];
          const double* qdb = &qd[size_t(b) * n];
          for (int j = 0; j < n; ++j) {
            hk[j] += v * qb[j];
            hdk[j] += v * qdb[j];
          }
        }
      std::fill(f.begin(), f.end(), 0.0);
      std::fill(fd.begin(), fd.end(), 0.0);
      for (int mu = 0; mu < K; ++mu)
        for (int k = 0; k < r; ++k) {
          double* fm = &f[size_t(mu) * n];
          double* fdm = &fd[size_t(mu) * n];
          const double* hk = &h[size_t(k) * n];
          const double* hdk = &hd[size_t(k) * n];
          const double* w = &W[(size_t(zi) * C * K + mu) * r + k];  // + zj * K * r
          for (int j = 0; j < n; ++j) {
            const double ww = w[size_t(zj[j]) * K * r];
            fm[j] += ww * hk[j];
            fdm[j] += ww * hdk[j];
          }
        }
      sink = f[0] + fd[n - 1];
    };
    std::printf(" r%d_mf_pairs_ns=%.1f r%d_last_bond_ns=%.1f", r, best_ns(mf_pairs, 3000), r,
                best_ns(last_bond, 3000));
  }
  std::printf("\n");
  return 0;
}
