// Filter Response Normalization with its TLU beyond the PyTorch fixtures and the finite-difference
// sweep (gradcheck_test.cpp): its options with every validation error and message, the 1x1
// problem of its paper as a shape error unless eps is learned, its parameters, make_norm_module's
// channels, that it is InstanceNorm on zero-mean rows without the TLU, and the TLU's kink.
#include <limits>
#include <string>
#include <vector>

#include "normlab/nn/norm_module.h"
#include "normlab/norm/frn.h"
#include "test_util.h"

namespace normlab_test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(Frn, OptionDefaultsRoundTrip) {
  const json full = {{"channels", 3}, {"eps", 1e-6}, {"learnableEps", false}};
  auto layer = make_layer("frn", {{"channels", 3}});
  EXPECT_EQ(layer->method(), "frn");
  EXPECT_EQ(normlab::layer_options(*layer), full);
  EXPECT_EQ(normlab::layer_options(*make_layer("frn", full)), full);
}

TEST(Frn, UnknownOptionsListKnownOnes) {
  EXPECT_NORMLAB_ERROR(make_layer("frn", {{"channels", 3}, {"num_features", 3}}),
                       AllOf(StartsWith("frn: unknown option 'num_features'"),
                             HasSubstr("(known: channels, eps, learnableEps)")));
  // FRN has no affine switch (gamma, beta and tau always learn).
  EXPECT_NORMLAB_ERROR(make_layer("frn", {{"channels", 3}, {"affine", false}}),
                       HasSubstr("frn: unknown option 'affine'"));
}

TEST(Frn, OptionErrors) {
  EXPECT_NORMLAB_ERROR(make_layer("frn", json::object()), HasSubstr("frn: option channels is required"));
  EXPECT_NORMLAB_ERROR(make_layer("frn", {{"channels", 0}}), HasSubstr("frn: channels must be a positive integer, got 0"));
  EXPECT_NORMLAB_ERROR(make_layer("frn", {{"channels", 3}, {"eps", -1e-6}}),
                       HasSubstr("frn: eps must be a finite number > 0, got -1e-06"));
  EXPECT_NORMLAB_ERROR(make_layer("frn", {{"channels", 3}, {"eps", "NaN"}}),
                       HasSubstr("frn: eps must be a finite number > 0, got NaN"));
  EXPECT_NORMLAB_ERROR(make_layer("frn", {{"channels", 3}, {"learnableEps", 1}}),
                       HasSubstr("frn: option learnableEps must be true or false, got 1"));
}

// The paper's 1x1 problem is an error unless eps is learned.
TEST(Frn, ShapeErrors) {
  auto frn = make_layer("frn", {{"channels", 3}});
  for (bool training : {true, false}) {
    for (const Shape& s : {Shape{2, 3}, Shape{2, 3, 1}, Shape{2, 3, 1, 1}}) {
      EXPECT_NORMLAB_ERROR(forward(*frn, std::vector<float>(6, 1.0f), s, training),
                           HasSubstr("frn: input shape " + normlab::to_string(s) +
                                     " has one value per sample and channel, where nu2 = x^2 and FRN is "
                                     "gamma*sign(x) + beta; use learnableEps: true"));
    }
  }
  EXPECT_NORMLAB_ERROR(forward(*frn, std::vector<float>(3), {3}, true),
                       HasSubstr("frn: input shape [3] must have at least 2 dims [N,C,...]"));
  EXPECT_NORMLAB_ERROR(forward(*frn, std::vector<float>(8), {2, 4}, true),
                       HasSubstr("frn: input shape [2,4] has 4 channels (dim 1), layer has 3"));
  auto frn_l = make_layer("frn", {{"channels", 3}, {"learnableEps", true}});
  EXPECT_NO_THROW(forward(*frn_l, std::vector<float>(6, 1.0f), {2, 3}, true));
  EXPECT_NO_THROW(forward(*frn_l, std::vector<float>(3, 1.0f), {1, 3, 1, 1}, true));  // no batch dependence
}

TEST(Frn, ParametersNamesInitialValuesAndErrors) {
  using V = std::vector<std::string>;
  EXPECT_EQ(param_names(*make_layer("frn", {{"channels", 3}})), (V{"gamma", "beta", "tau"}));
  auto frn = make_layer("frn", {{"channels", 3}, {"learnableEps", true}});
  EXPECT_EQ(param_names(*frn), (V{"gamma", "beta", "tau", "eps"}));
  EXPECT_EQ(param_value(*frn, "gamma"), std::vector<float>(3, 1.0f));
  EXPECT_EQ(param_value(*frn, "beta"), std::vector<float>(3, 0.0f));
  EXPECT_EQ(param_value(*frn, "tau"), std::vector<float>(3, 0.0f));
  EXPECT_EQ(param_value(*frn, "eps"), std::vector<float>{normlab::FilterResponseNorm::kLearnedEpsInit});
  EXPECT_NORMLAB_ERROR(set_param(*frn, "eps", {1, 2}), HasSubstr("frn: eps needs 1 values, got 2"));
  EXPECT_NORMLAB_ERROR(set_param(*frn, "tau", {0, std::numeric_limits<float>::quiet_NaN(), 0}),
                       HasSubstr("frn: tau[1] is not finite"));
  EXPECT_NORMLAB_ERROR(set_param(*frn, "weight", {1, 1, 1}),
                       HasSubstr("frn: no parameter 'weight' (known: gamma, beta, tau, eps)"));
  // Normalization parameters are never weight-decayed inside models.
  auto module = normlab::make_norm_module("frn", {{"learnableEps", true}}, {1, 4});
  for (const normlab::Param* p : module->parameters()) EXPECT_FALSE(p->decay) << p->name;
}

TEST(Frn, MakeNormModuleFillsChannels) {
  auto frn = normlab::make_norm_module("frn", json::object(), {4, 6, 3, 3});
  EXPECT_EQ(normlab::layer_options(frn->layer())["channels"], 6);
  // Given options win; the layer's own errors come through.
  EXPECT_EQ(normlab::layer_options(normlab::make_norm_module("frn", {{"eps", 1e-3}}, {2, 6, 3, 3})->layer())["eps"], 1e-3);
  EXPECT_NORMLAB_ERROR(normlab::make_norm_module("frn", json::object(), {1, 128}),
                       HasSubstr("frn: input shape [1,128] has one value per sample and channel"));
  EXPECT_NO_THROW(normlab::make_norm_module("frn", {{"learnableEps", true}}, {1, 128}));
}

// FRN with tau far below y (TLU inactive) on (n, c) rows with mean 0 is InstanceNorm.
TEST(Frn, IsInstanceNormOnZeroMeanRowsWithoutTlu) {
  Rng rng(12);
  const Shape s{2, 3, 3, 5};
  const std::vector<float> x = zero_mean_rows(rng, 6, 15, 1.3);
  auto frn = make_layer("frn", {{"channels", 3}, {"eps", 1e-5}});
  auto in = make_layer("instancenorm", {{"channels", 3}, {"eps", 1e-5}});
  const std::vector<float> gamma = {1.5f, -0.7f, 0.9f}, beta = {0.1f, -0.2f, 0.3f};
  for (NormLayer* l : {frn.get(), in.get()}) {
    set_param(*l, "gamma", gamma);
    set_param(*l, "beta", beta);
  }
  set_param(*frn, "tau", {-1e6f, -1e6f, -1e6f});
  EXPECT_CLOSE("y", forward(*frn, x, s, true), forward(*in, x, s, true), 1e-5, 1e-5);
  // Backward: IN's extra term is gamma*rstd*mean(dy) per row; a dy with zero row means removes it.
  const std::vector<float> dy = zero_mean_rows(rng, 6, 15, 1.0);
  EXPECT_CLOSE("dx", backward(*frn, dy), backward(*in, dy), 1e-5, 1e-5);
  EXPECT_CLOSE("dgamma", param_grad(*frn, "gamma"), param_grad(*in, "gamma"), 1e-5, 1e-5);
  EXPECT_CLOSE("dbeta", param_grad(*frn, "beta"), param_grad(*in, "beta"), 1e-5, 1e-5);
  EXPECT_EQ(param_grad(*frn, "tau"), std::vector<float>(3, 0.0f));
}

// At y == tau exactly the TLU's gradient is split like torch.maximum's: half to y, half to tau.
TEST(Frn, TluTiesSplitTheGradient) {
  auto frn = make_layer("frn", {{"channels", 1}});
  set_param(*frn, "beta", {0.5f});
  set_param(*frn, "tau", {0.5f});
  // x = 0 gives y = beta = tau exactly; the other values are above (x > 0) or below (x < 0).
  const std::vector<float> x = {0.0f, 2.0f, -1.0f, 1.0f};
  const std::vector<float> z = forward(*frn, x, {1, 1, 4}, true);
  EXPECT_EQ(z[0], 0.5f);
  EXPECT_EQ(z[2], 0.5f);
  EXPECT_GT(z[1], 0.5f);
  backward(*frn, {1.0f, 10.0f, 100.0f, 1000.0f});
  // dtau: half of dz at the tie, all of it where y < tau.
  EXPECT_EQ(param_grad(*frn, "tau"), std::vector<float>{0.5f + 100.0f});
  EXPECT_FLOAT_EQ(param_grad(*frn, "beta")[0], 0.5f + 10.0f + 1000.0f);
}

}  // namespace
}  // namespace normlab_test
