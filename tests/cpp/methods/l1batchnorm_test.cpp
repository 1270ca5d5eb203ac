// L1-norm BatchNorm beyond the PyTorch fixtures and the finite-difference sweep
// (gradcheck_test.cpp): its options with every validation error and message, its shapes,
// parameters and running state, inference and AdaBN, make_norm_module's channels, that it is
// BatchNorm on two-valued channels, and that its backward needs the sign term at the kink of |x - mu|.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "normlab/nn/norm_module.h"
#include "test_util.h"

namespace normlab_test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(L1BatchNorm, OptionDefaultsRoundTrip) {
  const json full = {{"channels", 3}, {"eps", 1e-5}, {"momentum", 0.1}, {"affine", true}, {"scaleSqrtPiOver2", true}};
  auto layer = make_layer("l1batchnorm", {{"channels", 3}});
  EXPECT_EQ(layer->method(), "l1batchnorm");
  EXPECT_EQ(normlab::layer_options(*layer), full);
  EXPECT_EQ(normlab::layer_options(*make_layer("l1batchnorm", full)), full);
}

TEST(L1BatchNorm, UnknownOptionsListKnownOnes) {
  EXPECT_NORMLAB_ERROR(make_layer("l1batchnorm", {{"channels", 3}, {"num_features", 3}}),
                       AllOf(StartsWith("l1batchnorm: unknown option 'num_features'"),
                             HasSubstr("(known: channels, eps, momentum, affine, scaleSqrtPiOver2)")));
}

TEST(L1BatchNorm, OptionErrors) {
  EXPECT_NORMLAB_ERROR(make_layer("l1batchnorm", {{"channels", 2.5}}),
                       HasSubstr("l1batchnorm: option channels must be an integer, got 2.5"));
  EXPECT_NORMLAB_ERROR(make_layer("l1batchnorm", {{"channels", -1}}),
                       HasSubstr("l1batchnorm: channels must be a positive integer, got -1"));
  EXPECT_NORMLAB_ERROR(make_layer("l1batchnorm", {{"channels", 3}, {"eps", 0}}),
                       HasSubstr("l1batchnorm: eps must be a finite number > 0, got 0"));
  EXPECT_NORMLAB_ERROR(make_layer("l1batchnorm", {{"channels", 3}, {"momentum", 1.5}}),
                       HasSubstr("l1batchnorm: momentum must be in [0, 1], got 1.5"));
  EXPECT_NORMLAB_ERROR(make_layer("l1batchnorm", {{"channels", 3}, {"momentum", "NaN"}}),
                       HasSubstr("l1batchnorm: momentum must be in [0, 1], got NaN"));
  EXPECT_NORMLAB_ERROR(make_layer("l1batchnorm", {{"channels", 3}, {"momentum", nullptr}}),
                       HasSubstr("l1batchnorm: momentum must be in [0, 1], got null"));
  EXPECT_NORMLAB_ERROR(make_layer("l1batchnorm", {{"channels", 3}, {"scaleSqrtPiOver2", "yes"}}),
                       HasSubstr("l1batchnorm: option scaleSqrtPiOver2 must be true or false, got \"yes\""));
}

// One value per channel with batch statistics is the base class's error; inference is fine.
TEST(L1BatchNorm, ShapeErrors) {
  auto l1 = make_layer("l1batchnorm", {{"channels", 3}});
  for (const Shape& s : {Shape{1, 3}, Shape{1, 3, 1, 1}}) {
    EXPECT_NORMLAB_ERROR(forward(*l1, std::vector<float>(3), s, true),
                         HasSubstr("l1batchnorm: expected more than 1 value per channel when using batch "
                                   "statistics, got input shape " + normlab::to_string(s)));
  }
  EXPECT_NO_THROW(forward(*l1, {1, 2, 3}, {1, 3}, false));
  EXPECT_NO_THROW(forward(*l1, std::vector<float>(6, 0.5f), {1, 3, 2}, true));
  EXPECT_NORMLAB_ERROR(forward(*l1, std::vector<float>(8), {2, 4}, true),
                       HasSubstr("l1batchnorm: input shape [2,4] has 4 channels (dim 1), layer has 3"));
}

TEST(L1BatchNorm, ParameterNames) {
  using V = std::vector<std::string>;
  EXPECT_EQ(param_names(*make_layer("l1batchnorm", {{"channels", 3}})), (V{"gamma", "beta"}));
  EXPECT_EQ(param_names(*make_layer("l1batchnorm", {{"channels", 3}, {"affine", false}})), V{});
}

TEST(L1BatchNorm, RunningStateInferenceAndAdaBn) {
  auto l1 = make_layer("l1batchnorm", {{"channels", 2}});
  EXPECT_EQ(state_value(*l1, "runningMean"), std::vector<float>(2, 0.0f));
  EXPECT_EQ(state_value(*l1, "runningDev"), std::vector<float>(2, 1.0f));
  EXPECT_NORMLAB_ERROR(set_state(*l1, "runningVar", {1, 1}),
                       HasSubstr("l1batchnorm: no state 'runningVar' (known: runningMean, runningDev)"));
  EXPECT_NORMLAB_ERROR(set_state(*l1, "runningDev", {1, -0.5f}),
                       HasSubstr("l1batchnorm: runningDev[1] must be >= 0, got -0.5"));
  EXPECT_NORMLAB_ERROR(set_state(*l1, "runningMean", {std::numeric_limits<float>::infinity(), 0}),
                       HasSubstr("l1batchnorm: runningMean[0] is not finite"));
  EXPECT_EQ(state_value(*l1, "runningDev"), std::vector<float>(2, 1.0f));
  // Inference uses the running statistics: y = gamma*(x - runningMean)/(runningDev + eps) + beta.
  set_state(*l1, "runningMean", {1.0f, -2.0f});
  set_state(*l1, "runningDev", {0.5f, 4.0f});
  set_param(*l1, "gamma", {2.0f, -1.0f});
  set_param(*l1, "beta", {0.25f, 3.0f});
  const std::vector<float> y = forward(*l1, {2, 0, 1, 2}, {1, 2, 2}, false);
  const std::vector<double> want = {2 * (2 - 1) / (0.5 + 1e-5) + 0.25, 2 * (0 - 1) / (0.5 + 1e-5) + 0.25,
                                    -1 * (1 + 2) / (4 + 1e-5) + 3, -1 * (2 + 2) / (4 + 1e-5) + 3};
  EXPECT_CLOSE("inference y", y, want, 1e-6, 1e-6);

  // AdaBN: the population statistics of a whole set replace the running ones (the stateless
  // methods have none to adapt: every_method_test.cpp).
  const std::vector<float> all = {1, 5, 3, -1, 5, 3, 1, -5};  // channel 0: 1, 5, 5, 3; 1: 3, -1, 1, -5
  auto l1k1 = make_layer("l1batchnorm", {{"channels", 2}, {"scaleSqrtPiOver2", false}});
  ASSERT_TRUE(l1k1->set_population_statistics(all.data(), {2, 2, 2}));
  EXPECT_EQ(state_value(*l1k1, "runningMean"), (std::vector<float>{3.5f, -0.5f}));
  EXPECT_EQ(state_value(*l1k1, "runningDev"), (std::vector<float>{1.5f, 2.5f}));
  ASSERT_TRUE(l1->set_population_statistics(all.data(), {2, 2, 2}));
  EXPECT_FLOAT_EQ(state_value(*l1, "runningDev")[0], static_cast<float>(1.5 * std::sqrt(std::acos(-1.0) / 2)));
}

TEST(L1BatchNorm, MakeNormModuleFillsChannels) {
  auto l1 = normlab::make_norm_module("l1batchnorm", nullptr, {4, 7});
  EXPECT_EQ(normlab::layer_options(l1->layer())["channels"], 7);
}

// L1BN without the sqrt(pi/2) factor on channels of two values {m - a, m + a} (mean absolute
// deviation = standard deviation = a) is BatchNorm, up to where eps goes (a + eps vs
// sqrt(a^2 + eps)); with eps tiny they agree to float rounding.
TEST(L1BatchNorm, IsBatchNormOnTwoValuedChannels) {
  const Shape s{2, 3, 2, 2};
  // Per channel: half the values m - a, half m + a.
  const float m[] = {0.5f, -1.0f, 3.0f}, a[] = {1.5f, 0.25f, 2.0f};
  std::vector<float> x(24);
  for (int64_t e = 0; e < 24; ++e) {
    const int64_t c = (e / 4) % 3;
    x[e] = m[c] + ((e % 2 == 0) == (e / 12 == 0) ? a[c] : -a[c]);
  }
  auto l1 = make_layer("l1batchnorm", {{"channels", 3}, {"scaleSqrtPiOver2", false}, {"eps", 1e-12}});
  auto bn = make_layer("batchnorm", {{"channels", 3}, {"eps", 1e-12}});
  EXPECT_CLOSE("y", forward(*l1, x, s, true), forward(*bn, x, s, true), 1e-5, 1e-5);
  EXPECT_CLOSE("runningMean", state_value(*l1, "runningMean"), state_value(*bn, "runningMean"), 1e-6, 1e-6);

  // With the factor, on many Gaussian values, L1BN's s estimates the standard deviation: within 3%.
  Rng rng(13);
  const Shape big{64, 3, 4, 4};
  const std::vector<float> g = rng.normals(static_cast<size_t>(numel(big)), 2.0, 3.0);
  auto l1k = make_layer("l1batchnorm", {{"channels", 3}, {"momentum", 1}});
  auto bnk = make_layer("batchnorm", {{"channels", 3}, {"momentum", 1}});
  forward(*l1k, g, big, true);
  forward(*bnk, g, big, true);
  const std::vector<float> dev = state_value(*l1k, "runningDev"), var = state_value(*bnk, "runningVar");
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(dev[c] / std::sqrt(var[c]), 1.0, 0.03) << c;
}

// L1BN's backward includes mu's dependence inside s = k*mean|x - mu| (the mean(sign) term). With an
// odd number of values per channel mean(sign) != 0, and leaving the term out fails the
// finite-difference check's tolerance by far; the full backward passes it (gradcheck_test.cpp).
TEST(L1BatchNorm, SignTermIsNeeded) {
  const Shape s{3, 1, 3};  // 9 values: mean(sign) is a multiple of 1/9, never 0
  std::vector<float> x = {0.1f, 2.3f, -1.7f, 0.9f, 3.1f, -0.4f, 1.6f, -2.2f, 0.35f};
  const std::vector<float> w = {0.9f, -0.3f, 1.4f, 0.2f, 1.1f, -0.8f, 0.6f, 1.7f, 0.5f};
  auto l1 = make_layer("l1batchnorm", {{"channels", 1}});
  set_param(*l1, "gamma", {1.3f});
  auto loss = [&](const std::vector<float>& xx) {
    const std::vector<float> y = forward(*l1, xx, s, true);
    double L = 0;
    for (size_t i = 0; i < y.size(); ++i) L += static_cast<double>(w[i]) * y[i];
    return L;
  };
  std::vector<double> fd(9);
  for (size_t i = 0; i < 9; ++i) {
    const float base = x[i];
    auto g = [&](double h) {
      x[i] = static_cast<float>(base + h);
      const double lp = loss(x);
      x[i] = static_cast<float>(base - h);
      const double lm = loss(x);
      x[i] = base;
      return (lp - lm) / (2 * h);
    };
    fd[i] = (4 * g(1e-3) - g(2e-3)) / 3;
  }
  forward(*l1, x, s, true);
  const std::vector<float> dx = backward(*l1, w);
  EXPECT_CLOSE("dx", dx, fd, 2e-3, 2e-3);
  // Without the term: dx + r*k*mean(gh*xhat)*mean(sign), r = 1/(s + eps).
  double mean = 0;
  for (float v : x) mean += v;
  mean /= 9;
  double s_abs = 0, sg = 0;
  for (float v : x) {
    s_abs += std::fabs(v - mean);
    sg += v > mean ? 1 : -1;
  }
  const double k = std::sqrt(std::acos(-1.0) / 2), dev = k * s_abs / 9, r = 1 / (dev + 1e-5);
  double gh_xhat = 0;
  for (size_t i = 0; i < 9; ++i) gh_xhat += w[i] * 1.3 * (x[i] - mean) * r;
  std::vector<double> wrong(9);
  for (size_t i = 0; i < 9; ++i) wrong[i] = dx[i] - r * k * (gh_xhat / 9) * (sg / 9);
  EXPECT_GT(max_abs_diff(wrong, fd), 10 * 2e-3);
}

}  // namespace
}  // namespace normlab_test
