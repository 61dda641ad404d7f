// Consistency of an MTP basis given as MLIP arrays (alpha_index_basic, alpha_index_times,
// alpha_moment_mapping): the checks of pyfit.model.MTPModel.find_problem, for the C++ reader.
#pragma once

#include <string>
#include <vector>

namespace mtp {

// The first problem as (key, message), or key == "" if the basis is consistent.
struct BasisProblem {
  std::string key, message;
};

inline BasisProblem find_basis_problem(int M, int nb, int nt, const std::vector<int>& basic,
                                     const std::vector<int>& times,
                                     const std::vector<int>& mapping, int K) {
  auto entry = [](const std::vector<int>& v, int e) {
    return "{" + std::to_string(v[4 * e]) + ", " + std::to_string(v[4 * e + 1]) + ", " +
           std::to_string(v[4 * e + 2]) + ", " + std::to_string(v[4 * e + 3]) + "}";
  };
  if (nb == 0) return {"alpha_index_basic", "alpha_index_basic: expected at least one basic moment, found none"};
  if (nb > M)
    return {"alpha_index_basic", "alpha_index_basic: " + std::to_string(nb) + " basic moments but alpha_moments_count = " +
                  std::to_string(M) + "; expected alpha_moments_count >= alpha_index_basic_count"};
  if (M > nb + nt)
    return {"alpha_moments_count", "expected at most " + std::to_string(nb + nt) +
                                             " moments (basic + contractions), found alpha_moments_count = " + std::to_string(M)};
  for (int e = 0; e < nb; ++e) {
    if (basic[4 * e] < 0 || basic[4 * e] >= K)
      return {"alpha_index_basic", "alpha_index_basic: entry " + std::to_string(e) + " " + entry(basic, e) +
                    ": expected mu in 0.." + std::to_string(K - 1) + " (radial_funcs_count = " + std::to_string(K) + ")"};
    if (basic[4 * e + 1] < 0 || basic[4 * e + 2] < 0 || basic[4 * e + 3] < 0)
      return {"alpha_index_basic", "alpha_index_basic: entry " + std::to_string(e) + " " + entry(basic, e) + ": expected powers a, b, c >= 0"};
  }
  std::vector<int> last_write(M, -1);
  for (int e = 0; e < nt; ++e) {
    const int* t = &times[4 * e];
    if (t[0] < 0 || t[1] < 0 || t[0] >= M || t[1] >= M)
      return {"alpha_index_times", "alpha_index_times: entry " + std::to_string(e) + " " + entry(times, e) +
                    ": expected moment indices i, j in 0.." + std::to_string(M - 1) + " (alpha_moments_count = " + std::to_string(M) + ")"};
    if (t[3] < nb || t[3] >= M)
      return {"alpha_index_times", "alpha_index_times: entry " + std::to_string(e) + " " + entry(times, e) + ": expected out in " +
                    std::to_string(nb) + ".." + std::to_string(M - 1) + " (basic moments are 0.." + std::to_string(nb - 1) + ")"};
    last_write[t[3]] = e;
  }
  std::vector<char> computed(M, 0);
  for (int b = 0; b < nb; ++b) computed[b] = 1;
  for (int e = 0; e < nt; ++e) {
    const int* t = &times[4 * e];
    for (int col = 0; col < 2; ++col)
      if (last_write[t[col]] >= e)
        return {"alpha_index_times", "alpha_index_times: entry " + std::to_string(e) + " " + entry(times, e) + " reads moment " +
                      std::to_string(t[col]) + " before its last contribution (entry " + std::to_string(last_write[t[col]]) +
                      "); expected contractions ordered so that every input is complete"};
    computed[t[3]] = 1;
  }
  if (mapping.empty()) return {"alpha_moment_mapping", "alpha_moment_mapping: expected at least one scalar moment, found none"};
  for (size_t a = 0; a < mapping.size(); ++a) {
    if (mapping[a] < 0 || mapping[a] >= M)
      return {"alpha_moment_mapping", "alpha_moment_mapping: entry " + std::to_string(a) + " = " + std::to_string(mapping[a]) +
                    ": expected a moment index in 0.." + std::to_string(M - 1)};
    if (!computed[mapping[a]])
      return {"alpha_index_times", "alpha_index_times: moment " + std::to_string(mapping[a]) +
                    " is used but never computed (no alpha_index_times entry has out = " + std::to_string(mapping[a]) + ")"};
  }
  for (int e = 0; e < nt; ++e)
    for (int col = 0; col < 2; ++col)
      if (!computed[times[4 * e + col]])
        return {"alpha_index_times", "alpha_index_times: moment " + std::to_string(times[4 * e + col]) +
                      " is used but never computed (no alpha_index_times entry has out = " +
                      std::to_string(times[4 * e + col]) + ")"};
return {};
}

}  // namespace mtp
