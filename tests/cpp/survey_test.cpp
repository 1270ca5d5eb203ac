// LRN, RMSNorm, FRN + TLU and L1-norm BatchNorm beyond the PyTorch fixtures and the finite-difference
// sweep: every validation error with its message, the parameters and state each layer has, the layer
// after an error, make_norm_module's defaults, identities with the other methods, the exact
// behaviour at the kinks (FRN's TLU ties, L1BN's sign), and that a wrong backward would be caught.
#include <cmath>
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

const std::vector<std::string> kMethods = {"lrn", "rmsnorm", "frn", "l1batchnorm"};

json base_options(const std::string& m) {
  if (m == "lrn") return {{"size", 3}};
  if (m == "rmsnorm") return {{"normalizedShape", {3, 5}}};
  return {{"channels", 3}};
}

json with(json options, const std::string& key, json value) {
  options[key] = std::move(value);
  return options;
}

// ---- options ----------------------------------------------------------------------------------

TEST(SurveyOptions, DefaultsRoundTrip) {
  const std::vector<std::pair<std::string, json>> want = {
      {"lrn", {{"size", 3}, {"alpha", 1e-4}, {"beta", 0.75}, {"k", 1.0}, {"alphaScaling", "size"}}},
      // PyTorch's eps=None: float32's machine epsilon.
      {"rmsnorm", {{"normalizedShape", {3, 5}}, {"eps", 1.1920928955078125e-07}, {"affine", true}}},
      {"frn", {{"channels", 3}, {"eps", 1e-6}, {"learnableEps", false}}},
      {"l1batchnorm", {{"channels", 3}, {"eps", 1e-5}, {"momentum", 0.1}, {"affine", true},
                       {"scaleSqrtPiOver2", true}}}};
  for (const auto& [m, full] : want) {
    SCOPED_TRACE(m);
    auto layer = make_layer(m, base_options(m));
    EXPECT_EQ(layer->method(), m);
    EXPECT_EQ(normlab::layer_options(*layer), full);
    EXPECT_EQ(normlab::layer_options(*make_layer(m, full)), full);
  }
  auto lrn = make_layer("lrn", {{"size", 5}, {"alphaScaling", "none"}, {"k", 2}, {"alpha", 1e-3}});
  EXPECT_EQ(normlab::layer_options(*lrn)["alphaScaling"], "none");
  EXPECT_EQ(normlab::layer_options(*lrn)["k"], 2.0);
}

TEST(SurveyOptions, UnknownOptionsListKnownOnes) {
  const std::vector<std::pair<std::string, std::string>> known = {
      {"lrn", "size, alpha, beta, k, alphaScaling"},
      {"rmsnorm", "normalizedShape, eps, affine"},
      {"frn", "channels, eps, learnableEps"},
      {"l1batchnorm", "channels, eps, momentum, affine, scaleSqrtPiOver2"}};
  for (const auto& [m, list] : known) {
    SCOPED_TRACE(m);
    EXPECT_NORMLAB_ERROR(make_layer(m, with(base_options(m), "num_features", 3)),
                         AllOf(StartsWith(m + ": unknown option 'num_features'"), HasSubstr("(known: " + list + ")")));
  }
  // PyTorch's spellings are not aliases; FRN has no affine switch (gamma, beta and tau always learn).
  EXPECT_NORMLAB_ERROR(make_layer("rmsnorm", with(base_options("rmsnorm"), "elementwiseAffine", false)),
                       HasSubstr("rmsnorm: unknown option 'elementwiseAffine'"));
  EXPECT_NORMLAB_ERROR(make_layer("frn", with(base_options("frn"), "affine", false)),
                       HasSubstr("frn: unknown option 'affine'"));
  EXPECT_NORMLAB_ERROR(make_layer("lrn", {{"size", 3}, {"channels", 3}}), HasSubstr("lrn: unknown option 'channels'"));
}

TEST(SurveyOptions, Lrn) {
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

TEST(SurveyOptions, RmsNorm) {
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

TEST(SurveyOptions, Frn) {
  EXPECT_NORMLAB_ERROR(make_layer("frn", json::object()), HasSubstr("frn: option channels is required"));
  EXPECT_NORMLAB_ERROR(make_layer("frn", {{"channels", 0}}), HasSubstr("frn: channels must be a positive integer, got 0"));
  EXPECT_NORMLAB_ERROR(make_layer("frn", {{"channels", 3}, {"eps", -1e-6}}),
                       HasSubstr("frn: eps must be a finite number > 0, got -1e-06"));
  EXPECT_NORMLAB_ERROR(make_layer("frn", {{"channels", 3}, {"eps", "NaN"}}),
                       HasSubstr("frn: eps must be a finite number > 0, got NaN"));
  EXPECT_NORMLAB_ERROR(make_layer("frn", {{"channels", 3}, {"learnableEps", 1}}),
                       HasSubstr("frn: option learnableEps must be true or false, got 1"));
}

TEST(SurveyOptions, L1BatchNorm) {
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

// ---- shapes -----------------------------------------------------------------------------------

TEST(SurveyShapes, Errors) {
  auto lrn = make_layer("lrn", {{"size", 3}});
  for (bool training : {true, false}) {
    EXPECT_NORMLAB_ERROR(forward(*lrn, std::vector<float>(6), {2, 3}, training),
                         HasSubstr("lrn: input shape [2,3] must have at least 3 dims [N,C,L,...]"));
  }
  // Any number of channels (LRN has no per-channel parameters).
  EXPECT_NO_THROW(forward(*lrn, std::vector<float>(14, 1.0f), {2, 7, 1}, true));

  auto rms = make_layer("rmsnorm", {{"normalizedShape", {3, 4}}});
  EXPECT_NORMLAB_ERROR(forward(*rms, std::vector<float>(30), {2, 3, 5}, true),
                       HasSubstr("rmsnorm: input shape [2,3,5] does not end with normalizedShape [3,4]"));
  EXPECT_NO_THROW(forward(*rms, std::vector<float>(12, 1.0f), {3, 4}, true));  // one row

  // FRN: the paper's 1x1 problem is an error unless eps is learned.
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

  // L1BN: one value per channel with batch statistics is the base class's error; inference is fine.
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

// ---- parameters and state ---------------------------------------------------------------------

std::vector<std::string> names_of(const NormLayer& layer) {
  std::vector<std::string> out;
  for (const normlab::Param& p : layer.params()) out.push_back(p.name);
  return out;
}

TEST(SurveyParams, NamesInitialValuesAndErrors) {
  using V = std::vector<std::string>;
  EXPECT_EQ(names_of(*make_layer("lrn", {{"size", 3}})), V{});
  EXPECT_EQ(names_of(*make_layer("rmsnorm", {{"normalizedShape", {3, 5}}})), V{"gamma"});
  EXPECT_EQ(names_of(*make_layer("rmsnorm", {{"normalizedShape", {3, 5}}, {"affine", false}})), V{});
  EXPECT_EQ(names_of(*make_layer("frn", {{"channels", 3}})), (V{"gamma", "beta", "tau"}));
  EXPECT_EQ(names_of(*make_layer("l1batchnorm", {{"channels", 3}})), (V{"gamma", "beta"}));
  EXPECT_EQ(names_of(*make_layer("l1batchnorm", {{"channels", 3}, {"affine", false}})), V{});

  auto frn = make_layer("frn", {{"channels", 3}, {"learnableEps", true}});
  EXPECT_EQ(names_of(*frn), (V{"gamma", "beta", "tau", "eps"}));
  EXPECT_EQ(param_value(*frn, "gamma"), std::vector<float>(3, 1.0f));
  EXPECT_EQ(param_value(*frn, "beta"), std::vector<float>(3, 0.0f));
  EXPECT_EQ(param_value(*frn, "tau"), std::vector<float>(3, 0.0f));
  EXPECT_EQ(param_value(*frn, "eps"), std::vector<float>{normlab::FilterResponseNorm::kLearnedEpsInit});
  EXPECT_NORMLAB_ERROR(set_param(*frn, "eps", {1, 2}), HasSubstr("frn: eps needs 1 values, got 2"));
  EXPECT_NORMLAB_ERROR(set_param(*frn, "tau", {0, std::numeric_limits<float>::quiet_NaN(), 0}),
                       HasSubstr("frn: tau[1] is not finite"));
  EXPECT_NORMLAB_ERROR(set_param(*frn, "weight", {1, 1, 1}),
                       HasSubstr("frn: no parameter 'weight' (known: gamma, beta, tau, eps)"));
  auto rms = make_layer("rmsnorm", {{"normalizedShape", {3, 5}}});
  EXPECT_EQ(param_value(*rms, "gamma"), std::vector<float>(15, 1.0f));
  EXPECT_NORMLAB_ERROR(set_param(*rms, "beta", std::vector<float>(15, 0)),
                       HasSubstr("rmsnorm: no parameter 'beta' (known: gamma)"));
  EXPECT_NORMLAB_ERROR(set_param(*make_layer("lrn", {{"size", 3}}), "gamma", {1}),
                       HasSubstr("lrn: no parameter 'gamma' (it has none)"));
  // Normalization parameters are never weight-decayed inside models.
  auto module = normlab::make_norm_module("frn", {{"learnableEps", true}}, {1, 4});
  for (const normlab::Param* p : module->parameters()) EXPECT_FALSE(p->decay) << p->name;
}

TEST(SurveyState, L1BatchNorm) {
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
  for (const std::string m : {"lrn", "rmsnorm", "frn"}) {
    auto layer = make_layer(m, base_options(m));
    EXPECT_TRUE(layer->state().empty()) << m;
    EXPECT_NORMLAB_ERROR(set_state(*layer, "runningMean", {0, 0, 0}),
                         HasSubstr(std::string(m) + ": no state 'runningMean' (it has none)"));
  }
  // Inference uses the running statistics: y = gamma*(x - runningMean)/(runningDev + eps) + beta.
  set_state(*l1, "runningMean", {1.0f, -2.0f});
  set_state(*l1, "runningDev", {0.5f, 4.0f});
  set_param(*l1, "gamma", {2.0f, -1.0f});
  set_param(*l1, "beta", {0.25f, 3.0f});
  const std::vector<float> y = forward(*l1, {2, 0, 1, 2}, {1, 2, 2}, false);
  const std::vector<double> want = {2 * (2 - 1) / (0.5 + 1e-5) + 0.25, 2 * (0 - 1) / (0.5 + 1e-5) + 0.25,
                                    -1 * (1 + 2) / (4 + 1e-5) + 3, -1 * (2 + 2) / (4 + 1e-5) + 3};
  EXPECT_CLOSE("inference y", y, want, 1e-6, 1e-6);

  // AdaBN: the population statistics of a whole set replace the running ones; the stateless
  // methods have none to adapt.
  const std::vector<float> all = {1, 5, 3, -1, 5, 3, 1, -5};  // channel 0: 1, 5, 5, 3; 1: 3, -1, 1, -5
  auto l1k1 = make_layer("l1batchnorm", {{"channels", 2}, {"scaleSqrtPiOver2", false}});
  ASSERT_TRUE(l1k1->set_population_statistics(all.data(), {2, 2, 2}));
  EXPECT_EQ(state_value(*l1k1, "runningMean"), (std::vector<float>{3.5f, -0.5f}));
  EXPECT_EQ(state_value(*l1k1, "runningDev"), (std::vector<float>{1.5f, 2.5f}));
  ASSERT_TRUE(l1->set_population_statistics(all.data(), {2, 2, 2}));
  EXPECT_FLOAT_EQ(state_value(*l1, "runningDev")[0], static_cast<float>(1.5 * std::sqrt(std::acos(-1.0) / 2)));
  for (const std::string m : {"lrn", "rmsnorm", "frn"}) {
    std::vector<float> x(90, 1.0f);
    EXPECT_FALSE(make_layer(m, base_options(m))->set_population_statistics(x.data(), {2, 3, 3, 5})) << m;
  }
}

// A rejected forward leaves the previous training cache and the running state as they were.
TEST(SurveyAfterErrors, FailedForwardKeepsCacheAndState) {
  const std::vector<std::pair<std::string, Shape>> bad = {
      {"lrn", {2, 3}}, {"rmsnorm", {2, 3, 5, 3}}, {"frn", {2, 4, 3, 5}}, {"l1batchnorm", {2, 4, 3, 5}}};
  for (const auto& [m, b] : bad) {
    SCOPED_TRACE(m);
    Rng rng(99);
    const Shape s{2, 3, 3, 5};
    const std::vector<float> x = rng.normals(numel(s), 0.3, 1.5), dy = rng.normals(numel(s), 0.2, 1.0);
    auto ref = make_layer(m, base_options(m));
    forward(*ref, x, s, true);
    const std::vector<float> dx_ref = backward(*ref, dy);
    auto layer = make_layer(m, base_options(m));
    forward(*layer, x, s, true);
    const auto state_before = layer->state();
    EXPECT_NORMLAB_ERROR(forward(*layer, std::vector<float>(numel(b), 1.0f), b, true), HasSubstr(m + ": input shape"));
    EXPECT_EQ(layer->cached_shape(), s);
    for (size_t i = 0; i < state_before.size(); ++i) EXPECT_EQ(layer->state()[i].value, state_before[i].value);
    EXPECT_TRUE(check_identical("dx after a failed forward", backward(*layer, dy), dx_ref));
    for (size_t i = 0; i < layer->params().size(); ++i) {
      EXPECT_TRUE(check_identical("d" + layer->params()[i].name, layer->params()[i].grad, ref->params()[i].grad));
    }
  }
}

// ---- make_norm_module -------------------------------------------------------------------------

TEST(SurveyModules, ShapeOptionsFilledIn) {
  auto frn = normlab::make_norm_module("frn", json::object(), {4, 6, 3, 3});
  EXPECT_EQ(normlab::layer_options(frn->layer())["channels"], 6);
  auto l1 = normlab::make_norm_module("l1batchnorm", nullptr, {4, 7});
  EXPECT_EQ(normlab::layer_options(l1->layer())["channels"], 7);
  auto rms_cnn = normlab::make_norm_module("rmsnorm", json::object(), {4, 6, 3, 3});
  EXPECT_EQ(normlab::layer_options(rms_cnn->layer())["normalizedShape"], json({6, 3, 3}));
  auto rms_mlp = normlab::make_norm_module("rmsnorm", json::object(), {8, 20});
  EXPECT_EQ(normlab::layer_options(rms_mlp->layer())["normalizedShape"], json({20}));
  auto lrn = normlab::make_norm_module("lrn", {{"size", 5}}, {4, 6, 3, 3});
  EXPECT_EQ(normlab::layer_options(lrn->layer())["size"], 5);
  // Given options win; the layer's own errors come through.
  EXPECT_EQ(normlab::layer_options(normlab::make_norm_module("frn", {{"eps", 1e-3}}, {2, 6, 3, 3})->layer())["eps"], 1e-3);
  EXPECT_NORMLAB_ERROR(normlab::make_norm_module("lrn", json::object(), {4, 6, 3, 3}),
                       HasSubstr("lrn: option size is required"));
  EXPECT_NORMLAB_ERROR(normlab::make_norm_module("lrn", {{"size", 3}}, {1, 128}),
                       HasSubstr("lrn: input shape [1,128] must have at least 3 dims"));
  EXPECT_NORMLAB_ERROR(normlab::make_norm_module("frn", json::object(), {1, 128}),
                       HasSubstr("frn: input shape [1,128] has one value per sample and channel"));
  EXPECT_NO_THROW(normlab::make_norm_module("frn", {{"learnableEps", true}}, {1, 128}));
}

// ---- identities with other methods ------------------------------------------------------------

std::vector<float> zero_mean_rows(Rng& rng, int64_t rows, int64_t len, double scale) {
  std::vector<float> x = rng.normals(static_cast<size_t>(rows * len), 0.0, scale);
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0;
    for (int64_t i = 0; i < len; ++i) m += x[r * len + i];
    m /= static_cast<double>(len);
    for (int64_t i = 0; i < len; ++i) x[r * len + i] = static_cast<float>(x[r * len + i] - m);
  }
  return x;
}

// RMSNorm is LayerNorm without the re-centering: on rows with mean 0 their outputs agree, and so do
// their gradients when LN's extra term, -rstd*mean(dy*gamma) per row, is 0.
TEST(SurveyCross, RmsNormIsLayerNormOnZeroMeanRows) {
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

// FRN with tau far below y (TLU inactive) on (n, c) rows with mean 0 is InstanceNorm.
TEST(SurveyCross, FrnIsInstanceNormOnZeroMeanRowsWithoutTlu) {
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

// L1BN without the sqrt(pi/2) factor on channels of two values {m - a, m + a} (mean absolute
// deviation = standard deviation = a) is BatchNorm, up to where eps goes (a + eps vs
// sqrt(a^2 + eps)); with eps tiny they agree to float rounding.
TEST(SurveyCross, L1BatchNormIsBatchNormOnTwoValuedChannels) {
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

// LRN: alpha = 0 is x / k^beta; alphaScaling 'none' with alpha is 'size' with alpha*size.
TEST(SurveyCross, LrnScalings) {
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

// ---- the kinks --------------------------------------------------------------------------------

// At y == tau exactly the TLU's gradient is split like torch.maximum's: half to y, half to tau.
TEST(SurveyKinks, FrnTluTiesSplitTheGradient) {
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

// L1BN's backward includes mu's dependence inside s = k*mean|x - mu| (the mean(sign) term). With an
// odd number of values per channel mean(sign) != 0, and leaving the term out fails the
// finite-difference check's tolerance by far; the full backward passes it (survey_gradcheck_test).
TEST(SurveyKinks, L1BatchNormSignTermIsNeeded) {
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

// NaN in the input propagates (as in PyTorch), in every method.
TEST(SurveyKinks, NanPropagates) {
  for (const std::string& m : kMethods) {
    SCOPED_TRACE(m);
    auto layer = make_layer(m, base_options(m));
    std::vector<float> x(numel({2, 3, 3, 5}), 0.5f);
    x[7] = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> y = forward(*layer, x, {2, 3, 3, 5}, true);
    EXPECT_TRUE(std::isnan(y[7]));
  }
}

}  // namespace
}  // namespace normlab_test
