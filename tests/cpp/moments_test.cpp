// normlab::moments, the one reduction every layer shares: mean and biased variance over (a, i) of
// x viewed as (A, B, I), checked against a long-double two-pass reference on inputs with mean 1000
// and std 1, where float32 one-pass formulas lose every digit of the variance.
#include <cmath>
#include <vector>

#include "normlab/core/reduce.h"
#include "test_util.h"

namespace normlab_test {
namespace {

struct Ref {
  std::vector<long double> mean, var;
};

Ref reference(const std::vector<float>& x, int64_t A, int64_t B, int64_t I) {
  Ref r{std::vector<long double>(B, 0), std::vector<long double>(B, 0)};
  const long double count = static_cast<long double>(A) * I;
  for (int64_t b = 0; b < B; ++b) {
    long double s = 0;
    for (int64_t a = 0; a < A; ++a)
      for (int64_t i = 0; i < I; ++i) s += x[(a * B + b) * I + i];
    const long double m = s / count;
    long double q = 0;
    for (int64_t a = 0; a < A; ++a)
      for (int64_t i = 0; i < I; ++i) {
        const long double d = x[(a * B + b) * I + i] - m;
        q += d * d;
      }
    r.mean[b] = m;
    r.var[b] = q / count;
  }
  return r;
}

// x[a, b, i] = mean_b + std_b * N(0, 1), float32.
std::vector<float> make_input(Rng& rng, int64_t A, int64_t B, int64_t I,
                              const std::vector<double>& means, const std::vector<double>& stds) {
  std::vector<float> x(static_cast<size_t>(A * B * I));
  for (int64_t a = 0; a < A; ++a)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < I; ++i)
        x[(a * B + b) * I + i] = static_cast<float>(means[b] + stds[b] * rng.normal());
  return x;
}

struct Layout {
  int64_t A, B, I;
};

class MomentsAccuracy : public ::testing::TestWithParam<Layout> {};

// Mean 1000, std 1: the mean must be right to ~1e-12 relative and the variance to 1e-10 relative.
// (Achievable: double sums of O(1e3) float values keep ~1e-12 of the mean, and the second pass
// sums squared deviations that are O(1), so the variance is limited by double rounding, ~1e-14.)
TEST_P(MomentsAccuracy, Mean1000Std1MatchesLongDouble) {
  const Layout L = GetParam();
  Rng rng(0x5EED0000u + static_cast<uint64_t>(L.A * 1000003 + L.B * 1009 + L.I));
  std::vector<double> means(L.B), stds(L.B);
  for (int64_t b = 0; b < L.B; ++b) {
    means[b] = 1000.0 + 0.25 * b;   // distinct per b, so a mixed-up b index is caught
    stds[b] = 1.0 + 0.125 * b;
  }
  const std::vector<float> x = make_input(rng, L.A, L.B, L.I, means, stds);
  std::vector<double> mean(L.B, -1), var(L.B, -1);
  normlab::moments(mean.data(), var.data(), x.data(), L.A, L.B, L.I);
  const Ref ref = reference(x, L.A, L.B, L.I);
  EXPECT_CLOSE("mean", mean, ref.mean, 0.0, 1e-12);
  EXPECT_CLOSE("var", var, ref.var, 0.0, 1e-10);
  // And the statistics are the intended ones (biased variance, ~std^2), not just self-consistent.
  for (int64_t b = 0; b < L.B; ++b) {
    EXPECT_NEAR(mean[b], means[b], 5 * stds[b] / std::sqrt(double(L.A * L.I))) << "b=" << b;
    EXPECT_NEAR(var[b] / (stds[b] * stds[b]), 1.0, 0.5) << "b=" << b;
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, MomentsAccuracy,
                         ::testing::Values(Layout{1, 1, 4099}, Layout{1, 3, 1001},
                                           Layout{4, 3, 37}, Layout{7, 2, 1}, Layout{2, 5, 3},
                                           Layout{16, 1, 257}),
                         [](const ::testing::TestParamInfo<Layout>& info) {
                           return "A" + std::to_string(info.param.A) + "_B" +
                                  std::to_string(info.param.B) + "_I" + std::to_string(info.param.I);
                         });

// The accuracy bound above is not vacuous: the textbook one-pass float32 variance misses it by
// many orders of magnitude on the same data.
TEST(Moments, NaiveFloat32OnePassWouldFail) {
  Rng rng(42);
  const int64_t I = 4099;
  const std::vector<float> x = make_input(rng, 1, 1, I, {1000.0}, {1.0});
  float s = 0, q = 0;
  for (float v : x) {
    s += v;
    q += v * v;
  }
  const float m = s / I;
  const double naive_var = static_cast<double>(q / I - m * m);
  const Ref ref = reference(x, 1, 1, I);
  double mean = 0, var = 0;
  normlab::moments(&mean, &var, x.data(), 1, 1, I);
  const double ours_err = std::fabs(var - static_cast<double>(ref.var[0])) / static_cast<double>(ref.var[0]);
  const double naive_err = std::fabs(naive_var - static_cast<double>(ref.var[0])) / static_cast<double>(ref.var[0]);
  EXPECT_LT(ours_err, 1e-10);
  EXPECT_GT(naive_err, 1e-3) << "naive var " << naive_var << " ref " << static_cast<double>(ref.var[0]);
}

// Identical values: the variance is exactly 0 (never negative, which would make rsqrt NaN), and
// every layer maps a constant group to beta.
TEST(Moments, ConstantInputHasZeroVariance) {
  const float v = 1000.1f;
  std::vector<float> x(3 * 2 * 17, v);
  std::vector<double> mean(2), var(2);
  normlab::moments(mean.data(), var.data(), x.data(), 3, 2, 17);
  for (int b = 0; b < 2; ++b) {
    EXPECT_EQ(mean[b], static_cast<double>(v));
    EXPECT_EQ(var[b], 0.0);
  }
}

TEST(Moments, ConstantInputGivesBetaInEveryLayer) {
  const Shape s{2, 4, 3};
  const std::vector<float> x(static_cast<size_t>(numel(s)), -1234.5f);
  const std::vector<float> beta{0.5f, -0.25f, 2.0f, 0.0f};
  const std::vector<float> gamma{1.5f, 2.0f, -1.0f, 3.0f};
  const std::vector<std::pair<std::string, json>> layers = {
      {"batchnorm", {{"channels", 4}}},
      {"batchrenorm", {{"channels", 4}, {"rMax", 1}, {"dMax", 0}}},
      {"groupnorm", {{"channels", 4}, {"groups", 2}}},
      {"instancenorm", {{"channels", 4}}},
  };
  for (const auto& [method, options] : layers) {
    SCOPED_TRACE(method);
    auto layer = make_layer(method, options);
    set_param(*layer, "gamma", gamma);
    set_param(*layer, "beta", beta);
    const std::vector<float> y = forward(*layer, x, s, true);
    std::vector<float> want(y.size());
    for (size_t i = 0; i < want.size(); ++i) want[i] = beta[(i / 3) % 4];
    EXPECT_TRUE(check_identical("y", y, want));
    // dx is finite (0 * rstd terms, rstd = 1/sqrt(eps) is large but finite).
    const std::vector<float> dx = backward(*layer, std::vector<float>(y.size(), 1.0f));
    for (float d : dx) ASSERT_TRUE(std::isfinite(d));
  }
  auto ln = make_layer("layernorm", {{"normalizedShape", {4, 3}}});
  const std::vector<float> y = forward(*ln, x, s, true);
  for (float e : y) EXPECT_EQ(e, 0.0f);  // default beta is 0
}

}  // namespace
}  // namespace normlab_test
