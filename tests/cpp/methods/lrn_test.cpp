// Local Response Normalization beyond the PyTorch fixtures and the finite-difference sweep
// (gradcheck_test.cpp): its options with every validation error and message, its shapes, that it
// has no parameters, make_norm_module's use of it, and its two alpha scalings against each other.
#include <cmath>
#include <string>
#include <vector>

#include "normlab/nn/norm_module.h"
#include "test_util.h"

namespace normlab_test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(Lrn, OptionDefaultsRoundTrip) {
  const json full = {{"size", 3}, {"alpha", 1e-4}, {"beta", 0.75}, {"k", 1.0}, {"alphaScaling", "size"}};
  auto layer = make_layer("lrn", {{"size", 3}});
  EXPECT_EQ(layer->method(), "lrn");
  EXPECT_EQ(normlab::layer_options(*layer), full);
  EXPECT_EQ(normlab::layer_options(*make_layer("lrn", full)), full);
  auto lrn = make_layer("lrn", {{"size", 5}, {"alphaScaling", "none"}, {"k", 2}, {"alpha", 1e-3}});
  EXPECT_EQ(normlab::layer_options(*lrn)["alphaScaling"], "none");
  EXPECT_EQ(normlab::layer_options(*lrn)["k"], 2.0);
}

TEST(Lrn, UnknownOptionsListKnownOnes) {
  EXPECT_NORMLAB_ERROR(make_layer("lrn", {{"size", 3}, {"num_features", 3}}),
                       AllOf(StartsWith("lrn: unknown option 'num_features'"),
                             HasSubstr("(known: size, alpha, beta, k, alphaScaling)")));
  EXPECT_NORMLAB_ERROR(make_layer("lrn", {{"size", 3}, {"channels", 3}}), HasSubstr("lrn: unknown option 'channels'"));
}

TEST(Lrn, OptionErrors) {
  EXPECT_NORMLAB_ERROR(make_layer("lrn", json::object()), HasSubstr("lrn: option size is required"));
  EXPECT_NORMLAB_ERROR(make_layer("lrn", {{"size", 0}}), HasSubstr("lrn: size must be an integer >= 1, got 0"));
  EXPECT_NORMLAB_ERROR(make_layer("lrn", {{"size", -3}}), HasSubstr("lrn: size must be an integer >= 1, got -3"));
  EXPECT_NORMLAB_ERROR(make_layer("lrn", {{"size", 2.5}}), HasSubstr("lrn: option size must be an integer, got 2.5"));
  EXPECT_NORMLAB_ERROR(make_layer("lrn", {{"size", "5"}}), HasSubstr("lrn: option size must be a number, got \"5\""));
  EXPECT_NORMLAB_ERROR(make_layer("lrn", {{"size", 3}, {"alpha", -1e-4}}),
                       HasSubstr("lrn: alpha must be a finite number >= 0, got -0.0001"));
  EXPECT_NORMLAB_ERROR(make_layer("lrn", {{"size", 3}, {"alpha", "Infinity"}}),
                       HasSubstr("lrn: alpha must be a finite number >= 0, got Infinity"));
  EXPECT_NORMLAB_ERROR(make_layer("lrn", {{"size", 3}, {"beta", "NaN"}}),
                       HasSubstr("lrn: beta must be a finite number >= 0, got NaN"));
  EXPECT_NORMLAB_ERROR(make_layer("lrn", {{"size", 3}, {"beta", -0.5}}),
                       HasSubstr("lrn: beta must be a finite number >= 0, got -0.5"));
  EXPECT_NORMLAB_ERROR(make_layer("lrn", {{"size", 3}, {"k", 0}}), HasSubstr("lrn: k must be a finite number > 0, got 0"));
  EXPECT_NORMLAB_ERROR(make_layer("lrn", {{"size", 3}, {"k", true}}), HasSubstr("lrn: option k must be a number, got true"));
  EXPECT_NORMLAB_ERROR(make_layer("lrn", {{"size", 3}, {"alphaScaling", "tf"}}),
                       HasSubstr("lrn: option alphaScaling must be \"size\" (alpha/size, PyTorch) or \"none\" "
                                 "(alpha, the AlexNet paper and TensorFlow), got \"tf\""));
  EXPECT_NORMLAB_ERROR(make_layer("lrn", {{"size", 3}, {"alphaScaling", 1}}),
                       HasSubstr("lrn: option alphaScaling must be \"size\""));
  // The ends of the ranges are fine; null means the default.
  EXPECT_NO_THROW(make_layer("lrn", {{"size", 1}, {"alpha", 0}, {"beta", 0}, {"alphaScaling", nullptr}}));
}

TEST(Lrn, ShapeErrors) {
  auto lrn = make_layer("lrn", {{"size", 3}});
  for (bool training : {true, false}) {
    EXPECT_NORMLAB_ERROR(forward(*lrn, std::vector<float>(6), {2, 3}, training),
                         HasSubstr("lrn: input shape [2,3] must have at least 3 dims [N,C,L,...]"));
  }
  // Any number of channels (LRN has no per-channel parameters).
  EXPECT_NO_THROW(forward(*lrn, std::vector<float>(14, 1.0f), {2, 7, 1}, true));
}

TEST(Lrn, HasNoParameters) {
  EXPECT_EQ(param_names(*make_layer("lrn", {{"size", 3}})), std::vector<std::string>{});
  EXPECT_NORMLAB_ERROR(set_param(*make_layer("lrn", {{"size", 3}}), "gamma", {1}),
                       HasSubstr("lrn: no parameter 'gamma' (it has none)"));
}

TEST(Lrn, MakeNormModuleTakesSizeFromTheUser) {
  auto lrn = normlab::make_norm_module("lrn", {{"size", 5}}, {4, 6, 3, 3});
  EXPECT_EQ(normlab::layer_options(lrn->layer())["size"], 5);
  EXPECT_NORMLAB_ERROR(normlab::make_norm_module("lrn", json::object(), {4, 6, 3, 3}),
                       HasSubstr("lrn: option size is required"));
  EXPECT_NORMLAB_ERROR(normlab::make_norm_module("lrn", {{"size", 3}}, {1, 128}),
                       HasSubstr("lrn: input shape [1,128] must have at least 3 dims"));
}

// alpha = 0 is x / k^beta; alphaScaling 'none' with alpha is 'size' with alpha*size.
TEST(Lrn, Scalings) {
  Rng rng(14);
  const Shape s{2, 5, 3};
  const std::vector<float> x = rng.normals(30, 0.0, 2.0);
  auto plain = make_layer("lrn", {{"size", 3}, {"alpha", 0}, {"k", 2}, {"beta", 0.5}});
  std::vector<double> want(x.begin(), x.end());
  for (double& v : want) v /= std::sqrt(2.0);
  EXPECT_CLOSE("alpha 0", forward(*plain, x, s, true), want, 1e-6, 1e-6);
  auto none = make_layer("lrn", {{"size", 3}, {"alpha", 0.3}, {"alphaScaling", "none"}});
  auto size = make_layer("lrn", {{"size", 3}, {"alpha", 0.9}});
  EXPECT_CLOSE("none vs size", forward(*none, x, s, true), forward(*size, x, s, true), 1e-6, 1e-6);
  const std::vector<float> dy = rng.normals(30);
  EXPECT_CLOSE("dx", backward(*none, dy), backward(*size, dy), 1e-6, 1e-6);
}

}  // namespace
}  // namespace normlab_test
