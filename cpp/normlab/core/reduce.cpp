#include "normlab/core/reduce.h"

namespace normlab {

namespace {

// Sum of a contiguous run, with four independent accumulators so the compiler can vectorise it
// without reassociating a single chain.
inline double sum(const float* x, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += x[i];
    s1 += x[i + 1];
    s2 += x[i + 2];
    s3 += x[i + 3];
  }
  for (; i < n; ++i) s0 += x[i];
  return (s0 + s1) + (s2 + s3);
}

// Sum of (x - m)^2 over a contiguous run.
inline double sum_sq_dev(const float* x, int64_t n, double m) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const double d0 = x[i] - m, d1 = x[i + 1] - m, d2 = x[i + 2] - m, d3 = x[i + 3] - m;
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; i < n; ++i) {
    const double d = x[i] - m;
    s0 += d * d;
  }
  return (s0 + s1) + (s2 + s3);
}

}  // namespace

void moments(double* mean, double* var, const float* x, int64_t A, int64_t B, int64_t I) {
  const double count = static_cast<double>(A) * static_cast<double>(I);
  for (int64_t b = 0; b < B; ++b) {
    double s = 0;
    for (int64_t a = 0; a < A; ++a) s += sum(x + (a * B + b) * I, I);
    const double m = s / count;
    double q = 0;
    for (int64_t a = 0; a < A; ++a) q += sum_sq_dev(x + (a * B + b) * I, I, m);
    mean[b] = m;
    var[b] = q / count;
  }
}

}  // namespace normlab
