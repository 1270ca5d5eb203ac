// Data normalization: each transform's defining property on correlated training data, the same
// statistics applied to other data, inverse round trips, and errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "normlab/core/error.h"
#include "normlab/core/rng.h"
#include "normlab/data/preprocess.h"

namespace {

using normlab::Preprocessor;
using ::testing::HasSubstr;

constexpr int64_t kN = 400, kF = 5;

// Correlated features with different scales and offsets: x = A z + b, z standard normal.
std::vector<float> correlated(uint64_t seed, int64_t n = kN) {
  normlab::Rng rng(seed);
  const double A[kF][kF] = {{3, 0, 0, 0, 0}, {2, 1, 0, 0, 0}, {0, 0.5, 0.2, 0, 0}, {1, 1, 1, 4, 0}, {0, 0, 0, 0, 0.01}};
  const double b[kF] = {10, -3, 0.5, 100, 7};
  std::vector<double> z(kF);
  std::vector<float> x(static_cast<size_t>(n * kF));
  for (int64_t i = 0; i < n; ++i) {
    for (double& v : z) v = rng.normal();
    for (int64_t j = 0; j < kF; ++j) {
      double v = b[j];
      for (int64_t k = 0; k < kF; ++k) v += A[j][k] * z[k];
      x[static_cast<size_t>(i * kF + j)] = static_cast<float>(v);
    }
  }
  return x;
}

// Mean (f) and biased covariance (f x f) of n samples, in double.
void stats(const std::vector<float>& y, int64_t n, std::vector<double>& mean, std::vector<double>& cov) {
  mean.assign(kF, 0);
  cov.assign(kF * kF, 0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < kF; ++j) mean[j] += y[i * kF + j] / static_cast<double>(n);
  }
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < kF; ++j) {
      for (int64_t k = 0; k < kF; ++k) {
        cov[j * kF + k] += (y[i * kF + j] - mean[j]) * (y[i * kF + k] - mean[k]) / static_cast<double>(n);
      }
    }
  }
}

class Whitening : public ::testing::TestWithParam<const char*> {};

TEST_P(Whitening, TrainingDataGetsZeroMeanAndIdentityCovariance) {
  const std::vector<float> x = correlated(1);
  Preprocessor p(GetParam(), 1e-9);
  p.fit(x.data(), kN, kF);
  std::vector<float> y(x.size());
  p.transform(y.data(), x.data(), kN);
  std::vector<double> mean, cov;
  stats(y, kN, mean, cov);
  for (int64_t j = 0; j < kF; ++j) {
    EXPECT_NEAR(mean[j], 0, 1e-4) << j;
    for (int64_t k = 0; k < kF; ++k) EXPECT_NEAR(cov[j * kF + k], j == k ? 1 : 0, 2e-3) << j << "," << k;
  }
  // The input itself is far from white (feature 3's variance is ~19, feature 4's 1e-4).
  std::vector<double> mx, cx;
  stats(x, kN, mx, cx);
  EXPECT_GT(std::fabs(cx[0 * kF + 1]), 1.0);
}

TEST_P(Whitening, InverseRoundTripsOtherData) {
  const std::vector<float> train = correlated(1), other = correlated(2, 50);
  Preprocessor p(GetParam(), 1e-5);
  p.fit(train.data(), kN, kF);
  std::vector<float> y(other.size()), back(other.size());
  p.transform(y.data(), other.data(), 50);
  p.inverse(back.data(), y.data(), 50);
  for (size_t i = 0; i < other.size(); ++i) EXPECT_NEAR(back[i], other[i], 2e-4 * (1 + std::fabs(other[i]))) << i;
}

INSTANTIATE_TEST_SUITE_P(Kinds, Whitening, ::testing::Values("pca", "zca"));

TEST(Whitening, ZcaStaysCloserToTheInputThanPca) {
  // ZCA is the whitening that minimizes E||y - x||^2 for standardized inputs (Kessy et al. 2018):
  // on inputs standardized first, its output is nearer the input than PCA's.
  std::vector<float> x = correlated(3);
  Preprocessor standardize("standardize");
  standardize.fit(x.data(), kN, kF);
  standardize.transform(x.data(), x.data(), kN);
  double dist[2] = {0, 0};
  const char* kinds[2] = {"zca", "pca"};
  for (int k = 0; k < 2; ++k) {
    Preprocessor p(kinds[k], 1e-6);
    p.fit(x.data(), kN, kF);
    std::vector<float> y(x.size());
    p.transform(y.data(), x.data(), kN);
    for (size_t i = 0; i < x.size(); ++i) dist[k] += (y[i] - x[i]) * (y[i] - x[i]);
  }
  EXPECT_LT(dist[0], dist[1]);
}

TEST(Preprocess, PcaComponentsComeByDecreasingVarianceWithFixedSigns) {
  const std::vector<float> x = correlated(4);
  Preprocessor a("pca", 1e-5), b("pca", 1e-5);
  a.fit(x.data(), kN, kF);
  b.fit(x.data(), kN, kF);
  std::vector<float> ya(x.size()), yb(x.size());
  a.transform(ya.data(), x.data(), kN);
  b.transform(yb.data(), x.data(), kN);
  EXPECT_EQ(ya, yb);
}

TEST(Preprocess, MinMaxAndStandardizeOnTrainingDataAndOtherData) {
  const std::vector<float> train = correlated(5), other = correlated(6, 50);
  Preprocessor mm("minmax"), st("standardize");
  mm.fit(train.data(), kN, kF);
  st.fit(train.data(), kN, kF);
  std::vector<float> y(train.size());
  mm.transform(y.data(), train.data(), kN);
  for (int64_t j = 0; j < kF; ++j) {
    float lo = 1e9f, hi = -1e9f;
    for (int64_t i = 0; i < kN; ++i) {
      lo = std::min(lo, y[i * kF + j]);
      hi = std::max(hi, y[i * kF + j]);
    }
    EXPECT_NEAR(lo, 0, 1e-6);
    EXPECT_NEAR(hi, 1, 1e-5);
  }
  st.transform(y.data(), train.data(), kN);
  std::vector<double> mean, cov;
  stats(y, kN, mean, cov);
  for (int64_t j = 0; j < kF; ++j) {
    EXPECT_NEAR(mean[j], 0, 1e-4);
    EXPECT_NEAR(cov[j * kF + j], 1, 1e-4);
  }
  // Other data gets the training statistics, not its own: its minmax range is not exactly [0, 1].
  std::vector<float> z(other.size()), back(other.size());
  mm.transform(z.data(), other.data(), 50);
  mm.inverse(back.data(), z.data(), 50);
  for (size_t i = 0; i < other.size(); ++i) EXPECT_NEAR(back[i], other[i], 1e-4 * (1 + std::fabs(other[i])));
}

TEST(Preprocess, ConstantFeaturesMapToZeroAndBack) {
  std::vector<float> x = {1, 5, 2, 5, 3, 5};  // 3 samples, feature 1 constant
  Preprocessor st("standardize");
  st.fit(x.data(), 3, 2);
  std::vector<float> y(6), back(6);
  st.transform(y.data(), x.data(), 3);
  EXPECT_EQ(y[1], 0.0f);
  st.inverse(back.data(), y.data(), 3);
  for (size_t i = 0; i < x.size(); i += 2) EXPECT_NEAR(back[i], x[i], 1e-6);
  for (size_t i = 1; i < x.size(); i += 2) EXPECT_EQ(back[i], 5.0f);  // the constant, exactly
}

TEST(Preprocess, Errors) {
  EXPECT_THROW(Preprocessor("whiten"), normlab::Error);
  try {
    Preprocessor("whiten");
  } catch (const normlab::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("preprocess: unknown kind 'whiten' (known: minmax, standardize, pca, zca)"));
  }
  EXPECT_THROW(Preprocessor("zca", 0), normlab::Error);
  Preprocessor p("zca");
  std::vector<float> x = correlated(7);
  float y[kF];
  EXPECT_THROW(p.transform(y, x.data(), 1), normlab::Error);  // before fit
  EXPECT_THROW(p.fit(x.data(), 1, kF), normlab::Error);        // one sample
  x[3] = NAN;
  EXPECT_THROW(p.fit(x.data(), kN, kF), normlab::Error);
}

}  // namespace
