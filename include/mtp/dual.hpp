// Forward-mode dual numbers: value + one directional derivative ("tangent").
//
// Running SiteEvaluator<Dual> with neighbour displacements seeded with a tangent direction dr
// gives, in the tangent parts of its outputs, the derivative of every output along that
// direction; the fitting code uses it to get d/dtheta of (residual . forces) without forming the
// Jacobian of the forces with respect to the parameters.
#pragma once

#include <cmath>

namespace mtp {

struct Dual {
  double v = 0.0;  // value
  double d = 0.0;  // tangent
  Dual() = default;
  Dual(double value) : v(value), d(0.0) {}  // NOLINT: implicit from double, like a scalar
  Dual(double value, double tangent) : v(value), d(tangent) {}

  Dual& operator+=(const Dual& o) {
    v += o.v;
    d += o.d;
    return *this;
  }
  Dual& operator-=(const Dual& o) {
    v -= o.v;
    d -= o.d;
    return *this;
  }
  Dual& operator*=(const Dual& o) {
    d = d * o.v + v * o.d;
    v *= o.v;
    return *this;
  }
};

inline Dual operator+(const Dual& a, const Dual& b) { return {a.v + b.v, a.d + b.d}; }
inline Dual operator-(const Dual& a, const Dual& b) { return {a.v - b.v, a.d - b.d}; }
inline Dual operator-(const Dual& a) { return {-a.v, -a.d}; }
inline Dual operator*(const Dual& a, const Dual& b) { return {a.v * b.v, a.d * b.v + a.v * b.d}; }
inline Dual operator/(const Dual& a, const Dual& b) {
  const double inv = 1.0 / b.v;
  return {a.v * inv, (a.d - a.v * inv * b.d) * inv};
}
inline Dual operator+(double a, const Dual& b) { return {a + b.v, b.d}; }
inline Dual operator+(const Dual& a, double b) { return {a.v + b, a.d}; }
inline Dual operator-(double a, const Dual& b) { return {a - b.v, -b.d}; }
inline Dual operator-(const Dual& a, double b) { return {a.v - b, a.d}; }
inline Dual operator*(double a, const Dual& b) { return {a * b.v, a * b.d}; }
inline Dual operator*(const Dual& a, double b) { return {a.v * b, a.d * b}; }
inline Dual operator/(const Dual& a, double b) { return {a.v / b, a.d / b}; }
inline bool operator<(const Dual& a, double b) { return a.v < b; }
inline bool operator<(const Dual& a, const Dual& b) { return a.v < b.v; }
inline Dual sqrt(const Dual& a) {
  const double s = std::sqrt(a.v);
  return {s, a.d / (2.0 * s)};
}

}  // namespace mtp
