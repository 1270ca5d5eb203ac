#include "normlab/nn/loss.h"

#include <algorithm>
#include <cmath>

#include "normlab/core/error.h"

namespace normlab {

namespace {

void check_labels(const char* who, const int32_t* labels, int64_t N, int64_t K) {
  if (N < 1) fail(who, ": batch size must be >= 1, got ", N);
  if (K < 1) fail(who, ": number of classes must be >= 1, got ", K);
  for (int64_t n = 0; n < N; ++n) {
    if (labels[n] < 0 || labels[n] >= K) {
      fail(who, ": labels[", n, "] = ", labels[n], " is out of range [0, ", K, ")");
    }
  }
}

}  // namespace

double softmax_cross_entropy(float* dlogits, float* probs, const float* logits,
                             const int32_t* labels, int64_t N, int64_t K) {
  check_labels("softmax_cross_entropy", labels, N, K);
  double total = 0;
  const double inv_n = 1.0 / static_cast<double>(N);
  for (int64_t n = 0; n < N; ++n) {
    const float* z = logits + n * K;
    double m = z[0];
    for (int64_t k = 1; k < K; ++k) m = std::fmax(m, static_cast<double>(z[k]));
    double sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += std::exp(static_cast<double>(z[k]) - m);
    const double lse = m + std::log(sum);
    total += lse - static_cast<double>(z[labels[n]]);
    for (int64_t k = 0; k < K; ++k) {
      const double p = std::exp(static_cast<double>(z[k]) - lse);
      if (probs != nullptr) probs[n * K + k] = static_cast<float>(p);
      if (dlogits != nullptr) {
        dlogits[n * K + k] = static_cast<float>((p - (k == labels[n] ? 1.0 : 0.0)) * inv_n);
      }
    }
  }
  return total * inv_n;
}

double mse(float* dpred, const float* pred, const float* target, int64_t n) {
  if (n < 1) fail("mse: number of elements must be >= 1, got ", n);
  double total = 0;
  const double scale = 2.0 / static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(pred[i]) - static_cast<double>(target[i]);
    total += d * d;
    if (dpred != nullptr) dpred[i] = static_cast<float>(scale * d);
  }
  return total / static_cast<double>(n);
}

int64_t count_correct(const float* logits, const int32_t* labels, int64_t N, int64_t K) {
  check_labels("count_correct", labels, N, K);
  int64_t correct = 0;
  for (int64_t n = 0; n < N; ++n) {
    const float* z = logits + n * K;
    int64_t best = 0;
    for (int64_t k = 1; k < K; ++k) {
      if (z[k] > z[best]) best = k;
    }
    correct += best == labels[n] ? 1 : 0;
  }
  return correct;
}

void softmax(float* probs, const float* logits, int64_t N, int64_t K) {
  for (int64_t i = 0; i < N; ++i) {
    const float* z = logits + i * K;
    float* p = probs + i * K;
    const float top = *std::max_element(z, z + K);
    double sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += (p[k] = std::exp(z[k] - top));
    for (int64_t k = 0; k < K; ++k) p[k] = static_cast<float>(p[k] / sum);
  }
}

}  // namespace normlab
