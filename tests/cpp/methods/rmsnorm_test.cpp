// RMSNorm beyond the PyTorch fixtures and the finite-difference sweep (gradcheck_test.cpp): its
// options with every validation error and message, its shapes and parameters, make_norm_module's
// normalizedShape, and that it is LayerNorm without the re-centering.
#include <string>
#include <vector>

#include "normlab/nn/norm_module.h"
#include "test_util.h"

namespace normlab_test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(RmsNorm, OptionDefaultsRoundTrip) {
  // PyTorch's eps=None: float32's machine epsilon.
  const json full = {{"normalizedShape", {3, 5}}, {"eps", 1.1920928955078125e-07}, {"affine", true}};
  auto layer = make_layer("rmsnorm", {{"normalizedShape", {3, 5}}});
  EXPECT_EQ(layer->method(), "rmsnorm");
  EXPECT_EQ(normlab::layer_options(*layer), full);
  EXPECT_EQ(normlab::layer_options(*make_layer("rmsnorm", full)), full);
}

TEST(RmsNorm, UnknownOptionsListKnownOnes) {
  EXPECT_NORMLAB_ERROR(make_layer("rmsnorm", {{"normalizedShape", {3, 5}}, {"num_features", 3}}),
                       AllOf(StartsWith("rmsnorm: unknown option 'num_features'"),
                             HasSubstr("(known: normalizedShape, eps, affine)")));
  // PyTorch's spellings are not aliases.
  EXPECT_NORMLAB_ERROR(make_layer("rmsnorm", {{"normalizedShape", {3, 5}}, {"elementwiseAffine", false}}),
                       HasSubstr("rmsnorm: unknown option 'elementwiseAffine'"));
}

TEST(RmsNorm, OptionErrors) {
  EXPECT_NORMLAB_ERROR(make_layer("rmsnorm", json::object()), HasSubstr("rmsnorm: option normalizedShape is required"));
  EXPECT_NORMLAB_ERROR(make_layer("rmsnorm", {{"normalizedShape", json::array()}}),
                       HasSubstr("rmsnorm: option normalizedShape must be a non-empty array of positive integers, got []"));
  EXPECT_NORMLAB_ERROR(make_layer("rmsnorm", {{"normalizedShape", {3, 0}}}),
                       HasSubstr("rmsnorm: option normalizedShape: shape dim 1 must be a positive integer, got 0"));
  EXPECT_NORMLAB_ERROR(make_layer("rmsnorm", {{"normalizedShape", {3}}, {"eps", 0}}),
                       HasSubstr("rmsnorm: eps must be a finite number > 0, got 0"));
  EXPECT_NORMLAB_ERROR(make_layer("rmsnorm", {{"normalizedShape", {3}}, {"affine", "no"}}),
                       HasSubstr("rmsnorm: option affine must be true or false, got \"no\""));
}

TEST(RmsNorm, ShapeErrors) {
  auto rms = make_layer("rmsnorm", {{"normalizedShape", {3, 4}}});
  EXPECT_NORMLAB_ERROR(forward(*rms, std::vector<float>(30), {2, 3, 5}, true),
                       HasSubstr("rmsnorm: input shape [2,3,5] does not end with normalizedShape [3,4]"));
  EXPECT_NO_THROW(forward(*rms, std::vector<float>(12, 1.0f), {3, 4}, true));  // one row
}

TEST(RmsNorm, ParametersNamesInitialValuesAndErrors) {
  using V = std::vector<std::string>;
  EXPECT_EQ(param_names(*make_layer("rmsnorm", {{"normalizedShape", {3, 5}}})), V{"gamma"});
  EXPECT_EQ(param_names(*make_layer("rmsnorm", {{"normalizedShape", {3, 5}}, {"affine", false}})), V{});
  auto rms = make_layer("rmsnorm", {{"normalizedShape", {3, 5}}});
  EXPECT_EQ(param_value(*rms, "gamma"), std::vector<float>(15, 1.0f));
  EXPECT_NORMLAB_ERROR(set_param(*rms, "beta", std::vector<float>(15, 0)),
                       HasSubstr("rmsnorm: no parameter 'beta' (known: gamma)"));
}

TEST(RmsNorm, MakeNormModuleFillsNormalizedShape) {
  auto rms_cnn = normlab::make_norm_module("rmsnorm", json::object(), {4, 6, 3, 3});
  EXPECT_EQ(normlab::layer_options(rms_cnn->layer())["normalizedShape"], json({6, 3, 3}));
  auto rms_mlp = normlab::make_norm_module("rmsnorm", json::object(), {8, 20});
  EXPECT_EQ(normlab::layer_options(rms_mlp->layer())["normalizedShape"], json({20}));
}

// RMSNorm is LayerNorm without the re-centering: on rows with mean 0 their outputs agree, and so do
// their gradients when LN's extra term, -rstd*mean(dy*gamma) per row, is 0.
TEST(RmsNorm, IsLayerNormOnZeroMeanRows) {
  Rng rng(11);
  const Shape s{4, 3, 5};
  const std::vector<float> x = zero_mean_rows(rng, 4, 15, 1.7);
  auto rms = make_layer("rmsnorm", {{"normalizedShape", {3, 5}}, {"eps", 1e-5}});
  auto ln = make_layer("layernorm", {{"normalizedShape", {3, 5}}, {"eps", 1e-5}});
  const std::vector<float> gamma = rng.normals(15, 1.0, 0.5);
  set_param(*rms, "gamma", gamma);
  set_param(*ln, "gamma", gamma);
  EXPECT_CLOSE("y", forward(*rms, x, s, true), forward(*ln, x, s, true), 1e-5, 1e-5);
  std::vector<float> dy = rng.normals(60);
  for (int64_t r = 0; r < 4; ++r) {  // make sum_i dy*gamma = 0 in every row
    double sum = 0;
    for (int64_t i = 0; i < 15; ++i) sum += dy[r * 15 + i] * gamma[i];
    dy[r * 15] -= static_cast<float>(sum / gamma[0]);
  }
  EXPECT_CLOSE("dx", backward(*rms, dy), backward(*ln, dy), 1e-5, 1e-5);
  EXPECT_CLOSE("dgamma", param_grad(*rms, "gamma"), param_grad(*ln, "gamma"), 1e-5, 1e-5);
}

}  // namespace
}  // namespace normlab_test
