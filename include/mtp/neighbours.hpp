// Neighbour list for periodic, partly periodic and non-periodic cells, including cells shorter
// than the cutoff (many periodic images of the same atom). Linear in the number of atoms: the
// images within the cutoff of the cell are generated as ghosts and binned on a grid of
// cutoff-sized bins.
#pragma once

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace mtp {

struct NeighbourList {
  std::vector<int> offsets;  // n_atoms + 1; neighbours of i are offsets[i] .. offsets[i+1]-1
  std::vector<int> index;    // neighbour atom index (the real atom of a periodic image)
  std::vector<double> dr;    // 3 per neighbour: x_j (image) - x_i
  int n_atoms() const { return static_cast<int>(offsets.size()) - 1; }
};

namespace detail {
inline bool invert3(const double* a, double* inv) {
  const double det = a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) +
                     a[2] * (a[3] * a[7] - a[4] * a[6]);
  if (!(std::fabs(det) > 1e-12)) return false;
  const double id = 1.0 / det;
  inv[0] = (a[4] * a[8] - a[5] * a[7]) * id;
  inv[1] = (a[2] * a[7] - a[1] * a[8]) * id;
  inv[2] = (a[1] * a[5] - a[2] * a[4]) * id;
  inv[3] = (a[5] * a[6] - a[3] * a[8]) * id;
  inv[4] = (a[0] * a[8] - a[2] * a[6]) * id;
  inv[5] = (a[2] * a[3] - a[0] * a[5]) * id;
  inv[6] = (a[3] * a[7] - a[4] * a[6]) * id;
  inv[7] = (a[1] * a[6] - a[0] * a[7]) * id;
  inv[8] = (a[0] * a[4] - a[1] * a[3]) * id;
  return true;
}
}  // namespace detail

// Builds the list of all pairs (i, image of j) with 0 < |x_j - x_i| < cutoff.
// cell: 3x3, rows are lattice vectors (ignored when no direction is periodic; may be null then).
// Throws std::invalid_argument for a singular periodic cell or two atoms closer than min_sep.
// Keeps its buffers between calls (MD and repeated evaluation allocate nothing after the first).
class NeighbourBuilder {
 public:
  const NeighbourList& build(int n, const double* pos, const double* cell, const bool pbc[3],
                             double cutoff, double min_sep = 1e-8);
  const NeighbourList& list() const { return nl_; }

 private:
  NeighbourList nl_;
  std::vector<double> gpos, frac, wrapped, spos;
  std::vector<int> gatom, head, gbin, satom, self_slot, fill;
  std::vector<char> gself;
};

inline const NeighbourList& NeighbourBuilder::build(int n, const double* pos, const double* cell,
                                                    const bool pbc[3], double cutoff,
                                                    double min_sep) {
  NeighbourList& nl = nl_;
  nl.offsets.assign(n + 1, 0);
  nl.index.clear();
  nl.dr.clear();
  if (n == 0) return nl;
  const bool periodic = pbc[0] || pbc[1] || pbc[2];
  double inv[9];
  if (periodic && !detail::invert3(cell, inv))
    throw std::invalid_argument("the cell is singular (zero volume)");

  // Ghost atoms: every image whose fractional coordinates lie within the padded cell.
  gpos.clear();
  gatom.clear();
  gself.clear();  // 1 for the zero-shift copy of each atom
  int nimg[3] = {0, 0, 0};
  double pad[3] = {0, 0, 0};
  frac.assign(3 * static_cast<size_t>(n), 0.0);
  wrapped.assign(pos, pos + 3 * static_cast<size_t>(n));
  if (periodic) {
    for (int d = 0; d < 3; ++d) {
      if (!pbc[d]) continue;
      // distance between lattice planes of direction d = 1 / |column d of inv|
      const double norm = std::sqrt(inv[d] * inv[d] + inv[3 + d] * inv[3 + d] + inv[6 + d] * inv[6 + d]);
      pad[d] = cutoff * norm;  // padding in fractional units
      nimg[d] = static_cast<int>(std::ceil(pad[d])) + 1;
    }
    for (int i = 0; i < n; ++i) {
      // Wrap periodic directions by whole lattice vectors; other components stay exact.
      for (int d = 0; d < 3; ++d) {
        const double s = pos[3 * i] * inv[d] + pos[3 * i + 1] * inv[3 + d] + pos[3 * i + 2] * inv[6 + d];
        const double k = pbc[d] ? std::floor(s) : 0.0;
        frac[3 * i + d] = s - k;
        for (int e = 0; e < 3; ++e) wrapped[3 * i + e] -= k * cell[3 * d + e];
      }
    }
  }
  // Per atom, only the image shifts that land inside the padded cell.
  for (int i = 0; i < n; ++i) {
    int lo_s[3], hi_s[3];
    for (int d = 0; d < 3; ++d) {
      if (pbc[d]) {
        const double s = frac[3 * i + d];
        lo_s[d] = static_cast<int>(std::ceil(-pad[d] - s));
        hi_s[d] = static_cast<int>(std::floor(1.0 + pad[d] - s));
        lo_s[d] = std::max(lo_s[d], -nimg[d]);
        hi_s[d] = std::min(hi_s[d], nimg[d]);
      } else {
        lo_s[d] = hi_s[d] = 0;
      }
    }
    for (int a = lo_s[0]; a <= hi_s[0]; ++a)
      for (int b = lo_s[1]; b <= hi_s[1]; ++b)
        for (int c = lo_s[2]; c <= hi_s[2]; ++c) {
          for (int d = 0; d < 3; ++d)
            gpos.push_back(wrapped[3 * i + d] +
                           (periodic ? a * cell[d] + b * cell[3 + d] + c * cell[6 + d] : 0.0));
          gatom.push_back(i);
          gself.push_back((a == 0 && b == 0 && c == 0) ? 1 : 0);
        }
  }

  // Bin the ghosts.
  const int ng = static_cast<int>(gatom.size());
  double lo[3], hi[3];
  for (int d = 0; d < 3; ++d) {
    lo[d] = hi[d] = gpos[d];
  }
  for (int g = 0; g < ng; ++g)
    for (int d = 0; d < 3; ++d) {
      lo[d] = std::min(lo[d], gpos[3 * g + d]);
      hi[d] = std::max(hi[d], gpos[3 * g + d]);
    }
  int nbin[3];
  double bsize[3];
  const double max_bins_per_dim = std::cbrt(8.0 * ng + 64.0);
  // Bins of at least half the cutoff, searched +-2 bins: 42% fewer candidates than
  // cutoff-sized bins searched +-1.
  const double bmin = 0.5 * cutoff;
  for (int d = 0; d < 3; ++d) {
    const double extent = hi[d] - lo[d];
    int nb = static_cast<int>(std::floor(extent / bmin));
    nb = std::max(1, std::min(nb, static_cast<int>(max_bins_per_dim)));
    nbin[d] = nb;
    bsize[d] = std::max(extent / nb, bmin);
  }
  auto bin_of = [&](const double* p, int* bc) {
    for (int d = 0; d < 3; ++d) {
      int k = static_cast<int>((p[d] - lo[d]) / bsize[d]);
      bc[d] = std::min(std::max(k, 0), nbin[d] - 1);
    }
  };
  const int total_bins = nbin[0] * nbin[1] * nbin[2];
  head.assign(total_bins + 1, 0);
  gbin.resize(ng);
  for (int g = 0; g < ng; ++g) {
    int bc[3];
    bin_of(&gpos[3 * g], bc);
    gbin[g] = (bc[0] * nbin[1] + bc[1]) * nbin[2] + bc[2];
    ++head[gbin[g] + 1];
  }
  for (int k = 0; k < total_bins; ++k) head[k + 1] += head[k];
  // Ghosts stored contiguously in bin order, so that the search below streams through memory.
  spos.resize(3 * static_cast<size_t>(ng));
  satom.resize(ng);
  self_slot.assign(n, -1);
  {
    fill.assign(head.begin(), head.end() - 1);
    for (int g = 0; g < ng; ++g) {
      const int s = fill[gbin[g]]++;
      for (int d = 0; d < 3; ++d) spos[3 * s + d] = gpos[3 * g + d];
      satom[s] = gatom[g];
      if (gself[g]) self_slot[gatom[g]] = s;
    }
  }

  const double cut2 = cutoff * cutoff;
  const double sep2 = min_sep * min_sep;
  nl.index.reserve(static_cast<size_t>(n) * 48);
  nl.dr.reserve(static_cast<size_t>(n) * 48 * 3);
  const double* sp = spos.data();
  const int* hd = head.data();
  for (int i = 0; i < n; ++i) {
    const int si = self_slot[i];
    const double pi[3] = {sp[3 * si], sp[3 * si + 1], sp[3 * si + 2]};
    int bc[3];
    bin_of(pi, bc);
    for (int a = std::max(bc[0] - 2, 0); a <= std::min(bc[0] + 2, nbin[0] - 1); ++a)
      for (int b = std::max(bc[1] - 2, 0); b <= std::min(bc[1] + 2, nbin[1] - 1); ++b) {
        // Bins (a, b, c0..c1) are contiguous in memory: scan them as one range.
        const int c0 = std::max(bc[2] - 2, 0), c1 = std::min(bc[2] + 2, nbin[2] - 1);
        const int k0 = (a * nbin[1] + b) * nbin[2];
        const int q_end = hd[k0 + c1 + 1];
        for (int q = hd[k0 + c0]; q < q_end; ++q) {
          const double dx = sp[3 * q] - pi[0], dy = sp[3 * q + 1] - pi[1], dz = sp[3 * q + 2] - pi[2];
          const double r2 = dx * dx + dy * dy + dz * dz;
          if (r2 >= cut2 || q == si) continue;
          if (r2 < sep2)
            throw std::invalid_argument("atoms " + std::to_string(i) + " and " +
                                        std::to_string(satom[q]) +
                                        " (0-based, possibly a periodic image) are on top of each other");
          nl.index.push_back(satom[q]);
          nl.dr.push_back(dx);
          nl.dr.push_back(dy);
          nl.dr.push_back(dz);
        }
      }
    nl.offsets[i + 1] = static_cast<int>(nl.index.size());
  }
  return nl;
}

// One-off convenience wrapper.
inline NeighbourList build_neighbours(int n, const double* pos, const double* cell,
                                      const bool pbc[3], double cutoff, double min_sep = 1e-8) {
  NeighbourBuilder builder;
  return builder.build(n, pos, cell, pbc, cutoff, min_sep);
}

}  // namespace mtp
