// Reading potential files into the kernel's dense Model: MLIP `.mtp` (format 1.1.0, trained)
// and `MTP-LOWRANK` version 1 (docs/lowrank-format.md; `mf` and `tt` radial forms, contracted
// to the dense radial tensor once, at load).
//
// Header-only, C++17, no LAMMPS and no Python includes. Used by the LAMMPS pair style
// mtp/lowrank; its semantics follow pyfit's Python readers (pyfit/io/mtp_file.py): keys in any
// order, tabs or spaces, `{...}` lists with any spacing that may continue over several lines,
// every problem reported as mtp::FileError "FILE:LINE: what was found, what was expected".
#pragma once

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "basis_check.hpp"
#include "lowrank.hpp"
#include "model.hpp"

namespace mtp {

class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PotentialFile {
  Model model;                              // dense: radial tensor (C, C, K, R) contracted
  std::vector<std::string> species_names;   // empty when the file has none (MLIP .mtp)
  std::string format;                       // "MTP" or "MTP-LOWRANK"
  std::string radial_form;                  // "dense", "mf" or "tt"
  std::string fit_method;                   // MTP-LOWRANK's optional fit_method ("" if absent)
  std::string potential_name;
  long stored_radial_params = 0;            // radial numbers stored in the file (factors)
};

namespace file_detail {

inline std::string trim(const std::string& s) {
  const char* ws = " \t\r\n\v\f";
  const size_t a = s.find_first_not_of(ws);
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(ws) - a + 1);
}

struct Item {
  int n = 0;  // 1-based line number of the key
  std::string value;
  std::vector<std::pair<int, std::string>> block;  // data lines following a block key
};

class Parser {
 public:
  Parser(std::string path, const std::string& text) : path_(std::move(path)) {
    std::istringstream in(text);
    std::string ln;
    int n = 0;
    while (std::getline(in, ln)) {
      ++n;
      ln = trim(ln);
      if (!ln.empty()) lines_.push_back({n, ln});
    }
    last_ = lines_.empty() ? 1 : lines_.back().first;
  }

  [[noreturn]] void error(int line, const std::string& msg) const {
    throw FileError(path_ + ":" + std::to_string(line) + ": " + msg);
  }

  PotentialFile parse() {
    if (lines_.empty()) error(1, "expected 'MTP' or 'MTP-LOWRANK' on the first line (empty file)");
    const std::string& head = lines_[0].second;
    if (head == "MTP") lowrank_ = false;
    else if (head == "MTP-LOWRANK") lowrank_ = true;
    else
      error(lines_[0].first, "expected 'MTP' (MLIP .mtp) or 'MTP-LOWRANK' on the first line, "
                             "found '" + head.substr(0, 60) + "'");
    read_items();
    return build();
  }

 private:
  std::string path_;
  std::vector<std::pair<int, std::string>> lines_;
  int last_ = 1;
  bool lowrank_ = false;
  std::map<std::string, Item> items_;

  bool known(const std::string& key) const {
    static const char* common[] = {
        "version", "potential_name", "potential_tag", "scaling", "species_count",
        "radial_basis_type", "min_dist", "max_dist", "radial_basis_size", "radial_funcs_count",
        "alpha_moments_count", "alpha_index_basic_count", "alpha_index_basic",
        "alpha_index_times_count", "alpha_index_times", "alpha_scalar_moments",
        "alpha_moment_mapping", "species_coeffs", "moment_coeffs"};
    static const char* mtp_only[] = {"radial_coeffs"};
    static const char* lowrank_only[] = {"species_names", "radial_form", "fit_method", "unfolding", "mf_rank",
                                         "mf_u", "mf_v", "tt_ranks", "tt_core_1", "tt_core_2",
                                         "tt_core_3", "tt_core_4"};
    for (const char* k : common)
      if (key == k) return true;
    if (!lowrank_) {
      for (const char* k : mtp_only)
        if (key == k) return true;
    } else {
      for (const char* k : lowrank_only)
        if (key == k) return true;
    }
    return false;
  }
  static bool is_block_key(const std::string& k) {
    return k == "radial_coeffs" || k == "mf_u" || k == "mf_v" || k.rfind("tt_core_", 0) == 0;
  }
  static bool is_label(const std::string& s) {  // "i-j" of radial_coeffs
    size_t d = s.find('-');
    if (d == 0 || d == std::string::npos) return false;
    std::string a = trim(s.substr(0, d)), b = trim(s.substr(d + 1));
    if (a.empty() || b.empty()) return false;
    for (char c : a + b)
      if (c < '0' || c > '9') return false;
    return true;
  }
  static int brace_balance(const std::string& s) {
    int b = 0;
    for (char c : s) b += (c == '{') - (c == '}');
    return b;
  }

  void read_items() {
    const char* fmt = lowrank_ ? "the MTP-LOWRANK format version 1" : "the MLIP .mtp format 1.1.0";
    size_t pos = 1;
    while (pos < lines_.size()) {
      const int n = lines_[pos].first;
      const std::string text = lines_[pos].second;
      ++pos;
      std::string key, value;
      if (text.find('=') == std::string::npos) {
        key = text;
        if (!is_block_key(key) || key.rfind("tt_core_", 0) == 0)
          error(n, "expected 'key = value'" + std::string(lowrank_ ? ", 'mf_u' or 'mf_v'"
                                                                   : " or 'radial_coeffs'") +
                       ", found '" + text.substr(0, 60) + "'");
      } else {
        key = trim(text.substr(0, text.find('=')));
        value = trim(text.substr(text.find('=') + 1));
        if (key == "radial_coeffs" || key == "mf_u" || key == "mf_v")
          error(n, "expected '" + key + "' alone on its line, found '" + text.substr(0, 60) + "'");
      }
      if (!known(key)) {
        std::string hint = (!lowrank_ && key == "species_names")
                               ? " (element names: use the MTP-LOWRANK format or give them to "
                                 "the program reading the file)"
                               : "";
        error(n, "unknown key '" + key + "' (not part of " + fmt + ")" + hint);
      }
      if (items_.count(key))
        error(n, "duplicate key '" + key + "' (first given on line " +
                     std::to_string(items_[key].n) + ")");
      Item item;
      item.n = n;
      while (!value.empty() && value[0] == '{' && brace_balance(value) > 0) {
        if (pos >= lines_.size())
          error(last_, "file ends too early (truncated?): expected the rest of the list '" + key +
                           "' started on line " + std::to_string(n));
        const std::string& more = lines_[pos].second;
        if (more.find('=') != std::string::npos || is_block_key(more))
          error(n, key + ": unbalanced braces: expected '}' to close the list before the next "
                         "key '" + more.substr(0, 40) + "'");
        value += " " + more;
        ++pos;
      }
      item.value = value;
      if (is_block_key(key))
        while (pos < lines_.size() &&
               (lines_[pos].second[0] == '{' || (key == "radial_coeffs" && is_label(lines_[pos].second))))
          item.block.push_back(lines_[pos++]);
      items_[key] = item;
    }
  }

  // ---------------------------------------------------------------- values
  const Item& need(const std::string& key) const {
    auto it = items_.find(key);
    if (it == items_.end())
      error(last_, "missing required key '" + key + "' (the file ends at line " +
                       std::to_string(last_) + "; truncated?)");
    return it->second;
  }
  bool has(const std::string& key) const { return items_.count(key) != 0; }

  static bool parse_int(const std::string& t, long& v) {
    if (t.empty()) return false;
    size_t i = (t[0] == '+' || t[0] == '-') ? 1 : 0;
    if (i == t.size()) return false;
    for (size_t k = i; k < t.size(); ++k)
      if (t[k] < '0' || t[k] > '9') return false;
    errno = 0;
    v = std::strtol(t.c_str(), nullptr, 10);
    return errno == 0 && v >= INT_MIN && v <= INT_MAX;
  }
  // 0 ok, 1 not a number, 2 not finite
  static int parse_double(const std::string& t, double& v) {
    if (t.empty()) return 1;
    bool digit = false;
    for (char c : t) {
      if (c >= '0' && c <= '9') digit = true;
      else if (c != '+' && c != '-' && c != '.' && c != 'e' && c != 'E') {
        std::string low;
        for (char d : t) low += static_cast<char>(std::tolower(static_cast<unsigned char>(d)));
        if (low.find("nan") != std::string::npos || low.find("inf") != std::string::npos) return 2;
        return 1;
      }
    }
    if (!digit || t[0] == 'e' || t[0] == 'E') return 1;
    char* end = nullptr;
    v = std::strtod(t.c_str(), &end);
    if (end != t.c_str() + t.size()) return 1;
    return std::isfinite(v) ? 0 : 2;
  }

  int get_int(const std::string& key, int low) const {
    const Item& it = need(key);
    long v = 0;
    if (!parse_int(it.value, v))
      error(it.n, "expected '" + key + " = <int>', found '" + key + " = " + it.value + "'");
    if (v < low)
      error(it.n, "expected " + key + " >= " + std::to_string(low) + ", found " + key + " = " +
                      it.value);
    return static_cast<int>(v);
  }
  double get_double(const std::string& key) const {
    const Item& it = need(key);
    double v = 0;
    int r = parse_double(it.value, v);
    if (r == 2) error(it.n, "expected a finite number for " + key + ", found '" + it.value + "'");
    if (r) error(it.n, "expected '" + key + " = <number>', found '" + key + " = " + it.value + "'");
    return v;
  }
  // Tokens of a flat list "{a, b, c}".
  std::vector<std::string> tokens(int n, const std::string& key, const std::string& text,
                                  const char* what) const {
    if (text.size() < 2 || text.front() != '{' || text.back() != '}' ||
        text.find_first_of("{}", 1) != text.size() - 1)
      error(n, "expected '" + key + " = {...}' (a list in braces), found '" + key + " = " +
                   text.substr(0, 60) + "'");
    std::vector<std::string> out;
    const std::string inner = trim(text.substr(1, text.size() - 2));
    if (inner.empty()) return out;
    std::string cur;
    std::istringstream in(inner);
    while (std::getline(in, cur, ',')) {
      cur = trim(cur);
      if (cur.empty())
        error(n, key + ": empty " + what + " " + std::to_string(out.size()) +
                     " (stray comma?) in '" + text.substr(0, 60) + "'");
      out.push_back(cur);
    }
    if (inner.back() == ',')
      error(n, key + ": empty " + what + " " + std::to_string(out.size()) + " (stray comma?)");
    return out;
  }
  std::vector<double> doubles(int n, const std::string& key, const std::string& text,
                              const char* what = "coefficient") const {
    std::vector<double> v;
    const auto toks = tokens(n, key, text, what);
    for (size_t i = 0; i < toks.size(); ++i) {
      double x = 0;
      int r = parse_double(toks[i], x);
      if (r == 2)
        error(n, key + ": " + what + " " + std::to_string(i) + ": expected a finite number, found '" +
                     toks[i] + "'");
      if (r)
        error(n, key + ": " + what + " " + std::to_string(i) + ": expected a number, found '" +
                     toks[i] + "'");
      v.push_back(x);
    }
    return v;
  }
  std::vector<int> ints(int n, const std::string& key, const std::string& text) const {
    std::vector<int> v;
    const auto toks = tokens(n, key, text, "entry");
    for (size_t i = 0; i < toks.size(); ++i) {
      long x = 0;
      if (!parse_int(toks[i], x))
        error(n, key + ": entry " + std::to_string(i) + ": expected an integer, found '" +
                     toks[i] + "'");
      v.push_back(static_cast<int>(x));
    }
    return v;
  }
  // "{{a, b, c, d}, {...}}" -> flat, 4 per entry.
  std::vector<int> groups(const std::string& key, const char* form) const {
    const Item& it = need(key);
    const std::string& t = it.value;
    if (t.size() < 2 || t.front() != '{' || t.back() != '}')
      error(it.n, "expected '" + key + " = {" + form + ", ...}', found '" + key + " = " +
                      t.substr(0, 60) + "'");
    std::string inner = trim(t.substr(1, t.size() - 2));
    std::vector<int> out;
    size_t p = 0;
    int e = 0;
    while (p < inner.size()) {
      if (e > 0) {
        if (inner[p] != ',') error(it.n, key + ": expected ',' before entry " + std::to_string(e));
        p = inner.find_first_not_of(" \t", p + 1);
        if (p == std::string::npos) error(it.n, key + ": entry " + std::to_string(e) + " missing after ','");
      }
      const size_t close = inner.find('}', p);
      if (inner[p] != '{' || close == std::string::npos)
        error(it.n, key + ": entry " + std::to_string(e) + ": expected " + form + ", found '" +
                        inner.substr(p, 40) + "'");
      const std::string part = inner.substr(p, close - p + 1);
      const std::vector<int> v = ints(it.n, key + " entry " + std::to_string(e), part);
      if (v.size() != 4)
        error(it.n, key + ": entry " + std::to_string(e) + ": expected " + form +
                        " (4 integers), found '" + part + "'");
      out.insert(out.end(), v.begin(), v.end());
      p = inner.find_first_not_of(" \t", close + 1);
      if (p == std::string::npos) break;
      ++e;
    }
    return out;
  }

  // ---------------------------------------------------------------- blocks
  // Data lines of a block as a (rows x cols) matrix.
  std::vector<double> matrix(const std::string& key, size_t rows, size_t cols,
                             const std::string& what) const {
    const Item& it = need(key);
    if (it.block.size() != rows)
      error(it.block.size() > rows ? it.block[rows].first : it.n,
            key + ": expected " + std::to_string(rows) + " lines of {" + std::to_string(cols) +
                " numbers} (" + what + "), found " + std::to_string(it.block.size()));
    std::vector<double> out;
    out.reserve(rows * cols);
    for (size_t r = 0; r < rows; ++r) {
      const auto row = doubles(it.block[r].first, key + " line " + std::to_string(r + 1), it.block[r].second);
      if (row.size() != cols)
        error(it.block[r].first, key + " line " + std::to_string(r + 1) + ": expected " +
                                     std::to_string(cols) + " numbers (" + what + "), found " +
                                     std::to_string(row.size()));
      out.insert(out.end(), row.begin(), row.end());
    }
    return out;
  }

  std::vector<double> dense_radial(int C, int K, int R) const {
    const Item& it = need("radial_coeffs");
    std::vector<double> out;
    size_t p = 0;
    for (int i = 0; i < C; ++i)
      for (int j = 0; j < C; ++j) {
        const std::string label = std::to_string(i) + "-" + std::to_string(j);
        if (p >= it.block.size())
          error(p ? it.block.back().first : it.n, "radial_coeffs: expected block '" + label +
                    "' (species_count = " + std::to_string(C) + " gives " + std::to_string(C * C) +
                    " blocks, 0-0 to " + std::to_string(C - 1) + "-" + std::to_string(C - 1) + ")");
        const auto& lab = it.block[p++];
        if (!is_label(lab.second)) {
          if (i + j > 0)
            error(lab.first, "radial_coeffs block has more than " + std::to_string(K) +
                                 " coefficient lines; expected " + std::to_string(K) +
                                 " (radial_funcs_count) then block '" + label + "'");
          error(lab.first, "expected radial_coeffs block label '" + label + "', found '" + lab.second + "'");
        }
        std::string want = lab.second;
        want.erase(std::remove_if(want.begin(), want.end(), ::isspace), want.end());
        if (want != label)
          error(lab.first, "radial_coeffs blocks out of order or species index >= species_count: "
                           "expected '" + label + "', found '" + lab.second + "'");
        for (int mu = 0; mu < K; ++mu) {
          if (p >= it.block.size() || it.block[p].second[0] != '{')
            error(p < it.block.size() ? it.block[p].first : lab.first,
                  "radial_coeffs block '" + label + "': expected " + std::to_string(K) +
                      " lines of {" + std::to_string(R) + " coefficients} (radial_funcs_count = " +
                      std::to_string(K) + "), found only " + std::to_string(mu));
          const auto row = doubles(it.block[p].first, "radial_coeffs block '" + label + "'", it.block[p].second);
          if (static_cast<int>(row.size()) != R)
            error(it.block[p].first, "radial_coeffs block '" + label + "' line " + std::to_string(mu + 1) +
                                         ": expected " + std::to_string(R) +
                                         " coefficients (radial_basis_size), found " + std::to_string(row.size()));
          out.insert(out.end(), row.begin(), row.end());
          ++p;
        }
      }
    if (p < it.block.size())
      error(it.block[p].first, is_label(it.block[p].second)
                                   ? "unexpected radial_coeffs block '" + it.block[p].second +
                                         "': species_count = " + std::to_string(C) + " gives " +
                                         std::to_string(C * C) + " blocks"
                                   : "radial_coeffs block '" + std::to_string(C - 1) + "-" +
                                         std::to_string(C - 1) + "' has more than " +
                                         std::to_string(K) + " coefficient lines");
    return out;
  }

  std::vector<double> mf_radial(int C, int K, int R, long& stored) const {
    std::string unfolding = has("unfolding") ? need("unfolding").value : "pairs";
    size_t m, n;
    if (unfolding == "pairs") m = size_t(C) * C, n = size_t(K) * R;
    else if (unfolding == "pairs_funcs") m = size_t(C) * C * K, n = size_t(R);
    else error(need("unfolding").n, "expected 'unfolding = pairs' or 'unfolding = pairs_funcs', found 'unfolding = " + unfolding + "'");
    const int r = get_int("mf_rank", 1);
    if (size_t(r) > std::min(m, n))
      error(need("mf_rank").n, "mf_rank = " + std::to_string(r) + " exceeds what the " + unfolding +
                                   " unfolding (" + std::to_string(m) + " x " + std::to_string(n) +
                                   ") allows; expected 1.." + std::to_string(std::min(m, n)));
    const std::string rows_u = "one line per row of the " + std::to_string(m) + " x " + std::to_string(n) + " unfolding, mf_rank numbers each";
    const auto U = matrix("mf_u", m, r, rows_u);
    const auto V = matrix("mf_v", n, r, "one line per column of the unfolding, mf_rank numbers each");
    stored = static_cast<long>((m + n) * r);
    return contract_mf(U, V, m, n, r);
  }

  std::vector<double> tt_radial(int C, int K, int R, long& stored) const {
    const Item& rk = need("tt_ranks");
    const std::vector<int> ranks = ints(rk.n, "tt_ranks", rk.value);
    if (ranks.size() != 3)
      error(rk.n, "expected 'tt_ranks = {r1, r2, r3}' (3 integers), found " + std::to_string(ranks.size()));
    const long dims[4] = {C, C, K, R};
    const long r[5] = {1, ranks[0], ranks[1], ranks[2], 1};
    // each unfolding's rank is at most its smaller side: r_k <= min(r_{k-1} n_k, n_{k+1} r_{k+1})
    for (int k = 1; k <= 3; ++k) {
      const long bound = std::min(r[k - 1] * dims[k - 1], dims[k] * r[k + 1]);
      if (r[k] < 1 || r[k] > bound)
        error(rk.n, "tt_ranks: r" + std::to_string(k) + " = " + std::to_string(r[k]) +
                        ": expected 1 <= r" + std::to_string(k) + " <= min(r" + std::to_string(k - 1) +
                        " * n" + std::to_string(k) + ", n" + std::to_string(k + 1) + " * r" +
                        std::to_string(k + 1) + ") = " + std::to_string(bound) +
                        " for (C, C, K, R) = (" + std::to_string(C) + ", " + std::to_string(C) + ", " +
                        std::to_string(K) + ", " + std::to_string(R) + ")");
    }
    std::vector<double> core[4];
    stored = 0;
    for (int k = 0; k < 4; ++k) {
      const std::string key = "tt_core_" + std::to_string(k + 1);
      const Item& it = need(key);
      const std::vector<int> shape = ints(it.n, key, it.value);
      const std::string expect = "{" + std::to_string(r[k]) + ", " + std::to_string(dims[k]) + ", " +
                                 std::to_string(r[k + 1]) + "}";
      if (shape.size() != 3 || shape[0] != r[k] || shape[1] != dims[k] || shape[2] != r[k + 1])
        error(it.n, "expected '" + key + " = " + expect + "' (r_prev, n, r_next from tt_ranks and "
                    "(species_count, species_count, radial_funcs_count, radial_basis_size)), found '" +
                    key + " = " + it.value + "'");
      core[k] = matrix(key, size_t(r[k] * dims[k]), size_t(r[k + 1]),
                       "core " + expect + ": line a*n+i holds core[a, i, :]");
      stored += static_cast<long>(core[k].size());
    }
    return contract_tt(core, C, K, R, r);
  }

  // ---------------------------------------------------------------- assembly
  PotentialFile build() const {
    PotentialFile pf;
    pf.format = lowrank_ ? "MTP-LOWRANK" : "MTP";
    const Item& ver = need("version");
    const char* want_ver = lowrank_ ? "1" : "1.1.0";
    if (ver.value != want_ver)
      error(ver.n, std::string("unsupported format: expected 'version = ") + want_ver + "', found 'version = " + ver.value + "'");
    if (has("potential_name")) pf.potential_name = need("potential_name").value;
    const Item& rbt = need("radial_basis_type");
    if (rbt.value != "RBChebyshev")
      error(rbt.n, "radial_basis_type = " + rbt.value + " is not supported; expected RBChebyshev");
    Model& m = pf.model;
    m.C = get_int("species_count", 1);
    m.R = get_int("radial_basis_size", 2);
    m.K = get_int("radial_funcs_count", 1);
    m.min_dist = get_double("min_dist");
    m.max_dist = get_double("max_dist");
    m.scaling = has("scaling") ? get_double("scaling") : 1.0;
    if (!(m.min_dist >= 0)) error(need("min_dist").n, "expected min_dist >= 0");
    if (!(m.min_dist < m.max_dist))
      error(need("max_dist").n, "expected min_dist < max_dist, found min_dist = " + need("min_dist").value +
                                    ", max_dist = " + need("max_dist").value);
    const int M = get_int("alpha_moments_count", 1);
    const std::vector<int> basic = groups("alpha_index_basic", "{mu, a, b, c}");
    const std::vector<int> times = groups("alpha_index_times", "{i, j, k, out}");
    const Item& mp = need("alpha_moment_mapping");
    const std::vector<int> mapping = ints(mp.n, "alpha_moment_mapping", mp.value);
    const int nb = int(basic.size() / 4), nt = int(times.size() / 4), ns = int(mapping.size());
    auto count_check = [&](const char* list, const char* count, int found) {
      const int want = get_int(count, 0);
      if (want != found)
        error(need(list).n, std::string(list) + " has " + std::to_string(found) + " entries but " + count +
                                " = " + std::to_string(want) + " (line " + std::to_string(need(count).n) +
                                "); expected " + std::to_string(want));
    };
    count_check("alpha_index_basic", "alpha_index_basic_count", nb);
    count_check("alpha_index_times", "alpha_index_times_count", nt);
    count_check("alpha_moment_mapping", "alpha_scalar_moments", ns);
    const BasisProblem bp = find_basis_problem(M, nb, nt, basic, times, mapping, m.K);
    if (!bp.key.empty()) error(need(bp.key).n, bp.message);

    if (!has("species_coeffs") || !has("moment_coeffs") || (!lowrank_ && !has("radial_coeffs")))
      error(last_, "the potential is untrained (no radial_coeffs / species_coeffs / moment_coeffs); "
                   "expected a trained potential");
    const Item& sc = need("species_coeffs");
    m.species = doubles(sc.n, "species_coeffs", sc.value);
    if (int(m.species.size()) != m.C)
      error(sc.n, "species_coeffs has " + std::to_string(m.species.size()) +
                      " coefficients; expected " + std::to_string(m.C) + " (species_count)");
    const Item& mc = need("moment_coeffs");
    m.moment = doubles(mc.n, "moment_coeffs", mc.value);
    if (int(m.moment.size()) != ns)
      error(mc.n, "moment_coeffs has " + std::to_string(m.moment.size()) +
                      " coefficients; expected " + std::to_string(ns) + " (alpha_scalar_moments)");

    if (!lowrank_) {
      pf.radial_form = "dense";
      m.radial = dense_radial(m.C, m.K, m.R);
      pf.stored_radial_params = static_cast<long>(m.radial.size());
    } else {
      const Item& form = need("radial_form");
      pf.radial_form = form.value;
      if (form.value == "mf") m.radial = mf_radial(m.C, m.K, m.R, pf.stored_radial_params);
      else if (form.value == "tt") m.radial = tt_radial(m.C, m.K, m.R, pf.stored_radial_params);
      else error(form.n, "expected 'radial_form = mf' or 'radial_form = tt', found 'radial_form = " + form.value + "'");
      for (const char* k : {"mf_rank", "mf_u", "mf_v", "unfolding", "tt_ranks", "tt_core_1", "tt_core_2", "tt_core_3", "tt_core_4"}) {
        const bool mine = (form.value == "mf") == (std::string(k).rfind("mf_", 0) == 0 || std::string(k) == "unfolding");
        if (has(k) && !mine)
          error(need(k).n, std::string("key '") + k + "' does not belong to radial_form = " + form.value);
      }
      if (has("fit_method")) {  // optional record of how the factors were fitted
        const Item& fm = need("fit_method");
        const bool ok = form.value == "mf"
                            ? (fm.value == "mf" || fm.value == "rmf" || fm.value == "mfra")
                            : fm.value == "tf";
        if (!ok)
          error(fm.n, std::string("expected 'fit_method = ") +
                          (form.value == "mf" ? "mf | rmf | mfra" : "tf") + "' for radial_form = " +
                          form.value + ", found 'fit_method = " + fm.value + "'");
        pf.fit_method = fm.value;
      }
      if (has("species_names")) {
        const Item& sn = need("species_names");
        pf.species_names = tokens(sn.n, "species_names", sn.value, "name");
        if (int(pf.species_names.size()) != m.C)
          error(sn.n, "species_names has " + std::to_string(pf.species_names.size()) +
                          " names; expected " + std::to_string(m.C) + " (species_count)");
        for (size_t a = 0; a < pf.species_names.size(); ++a) {
          const std::string& nm = pf.species_names[a];
          bool ok = std::isalpha(static_cast<unsigned char>(nm[0])) != 0;
          for (char ch : nm) ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
          if (!ok)
            error(sn.n, "species_names: '" + nm + "' is not an element symbol; expected a letter "
                        "followed by letters, digits or '_'");
          for (size_t b = 0; b < a; ++b)
            if (pf.species_names[a] == pf.species_names[b])
              error(sn.n, "species_names: '" + pf.species_names[a] + "' appears twice; expected distinct names");
        }
      }
    }
    try {
      m.set_basis(M, nb, basic.data(), nt, times.data(), ns, mapping.data());
    } catch (const std::invalid_argument& e) {
      error(need("alpha_index_basic").n, e.what());
    }
    return pf;
  }
};

}  // namespace file_detail

// Parses the text of a potential file; `path` is used in error messages only.
inline PotentialFile parse_potential(const std::string& text, const std::string& path) {
  return file_detail::Parser(path, text).parse();
}

// Reads the whole file (FileError if it cannot be opened or read).
inline std::string read_text_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw FileError(path + ": is a directory; expected a potential file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path + ": cannot open the potential file (missing or unreadable)");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw FileError(path + ": error while reading the potential file");
  return ss.str();
}

inline PotentialFile read_potential(const std::string& path) {
  return parse_potential(read_text_file(path), path);
}

}  // namespace mtp
