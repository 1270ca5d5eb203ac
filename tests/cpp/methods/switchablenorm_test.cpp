// Switchable Normalization beyond the PyTorch fixtures and the finite-difference sweep
// (gradcheck_test.cpp): with one-hot weights it is IN, LN or BN, forward and backward; inference
// uses running statistics only for its BN part; [N, C] inputs and the useIN/useBN subsets; options,
// parameters and every validation error with its message; AdaBN; make_norm_module's channels and
// useIN; and the comparison runner's labels and ids.
#include <string>
#include <vector>

#include "normlab/core/reduce.h"
#include "normlab/nn/norm_module.h"
#include "test_util.h"

namespace normlab_test {
namespace {

using ::testing::HasSubstr;

// Weights whose softmax is one-hot (logits 100, 0, 0: the others get e^-100) make SN exactly one
// normalizer, forward and backward; the same logits for mean and variance.
TEST(SwitchableNorm, OneHotWeightsAreInLnBn) {
  const Shape s = {2, 3, 3, 5};
  const std::vector<float> x = channel_input(s, 7), dy = channel_input(s, 8);
  const std::vector<std::pair<std::string, json>> refs = {
      {"instancenorm", {{"channels", 3}, {"affine", false}}},
      {"layernorm", {{"normalizedShape", {3, 3, 5}}, {"affine", false}}},
      {"batchnorm", {{"channels", 3}, {"affine", false}}}};
  for (size_t k = 0; k < 3; ++k) {
    SCOPED_TRACE(refs[k].first);
    auto sn = make_layer("switchablenorm", {{"channels", 3}, {"affine", false}});
    std::vector<float> logits(3, 0.0f);
    logits[k] = 100;
    set_param(*sn, "meanWeight", logits);
    set_param(*sn, "varWeight", logits);
    auto ref = make_layer(refs[k].first, refs[k].second);
    EXPECT_CLOSE("y", forward(*sn, x, s, true), forward(*ref, x, s, true), 1e-5, 1e-5);
    EXPECT_CLOSE("dx", backward(*sn, dy), backward(*ref, dy), 1e-5, 1e-4);
    // The softmax is saturated: no gradient reaches the logits.
    EXPECT_CLOSE("dmeanWeight", param_grad(*sn, "meanWeight"), std::vector<float>(3, 0.0f), 1e-12, 0);
  }
}

// Inference: IN and LN use the sample's own statistics, the BN part the running ones.
TEST(SwitchableNorm, InferenceUsesRunningStatisticsOnlyForBn) {
  const Shape s = {2, 3, 4};
  const std::vector<float> x = channel_input(s, 9);
  // IN one-hot: inference == training (no running statistics involved).
  auto in = make_layer("switchablenorm", {{"channels", 3}});
  set_param(*in, "meanWeight", {100, 0, 0});
  set_param(*in, "varWeight", {100, 0, 0});
  EXPECT_CLOSE("IN-only inference", forward(*in, x, s, false), forward(*in, x, s, true), 1e-6, 1e-6);
  // BN one-hot: inference == BatchNorm's with the same running statistics.
  auto sn = make_layer("switchablenorm", {{"channels", 3}});
  set_param(*sn, "meanWeight", {0, 0, 100});
  set_param(*sn, "varWeight", {0, 0, 100});
  auto bn = make_layer("batchnorm", {{"channels", 3}});
  for (auto* l : {sn.get(), bn.get()}) {
    set_param(*l, "gamma", {1.5f, 0.5f, -1});
    set_state(*l, "runningMean", {0.3f, -0.2f, 1});
    set_state(*l, "runningVar", {2, 0.5f, 1.5f});
  }
  EXPECT_CLOSE("BN-only inference", forward(*sn, x, s, false), forward(*bn, x, s, false), 1e-6, 1e-6);
  // Running update: (1 - m) * running + m * batch, with the batch's biased variance.
  auto r = make_layer("switchablenorm", {{"channels", 3}, {"momentum", 0.5}});
  forward(*r, x, s, true);
  std::vector<double> mean(3), var(3);
  normlab::moments(mean.data(), var.data(), x.data(), 2, 3, 4);
  std::vector<double> wm(3), wv(3);
  for (int c = 0; c < 3; ++c) {
    wm[c] = 0.5 * mean[c];
    wv[c] = 0.5 + 0.5 * var[c];
  }
  EXPECT_CLOSE("runningMean", state_value(*r, "runningMean"), wm, 1e-7, 1e-6);
  EXPECT_CLOSE("runningVar", state_value(*r, "runningVar"), wv, 1e-7, 1e-6);
}

TEST(SwitchableNorm, NcInputsNeedUseInFalse) {
  auto sn = make_layer("switchablenorm", {{"channels", 3}});
  const std::string msg = "switchablenorm: input shape [4,3] has 1 spatial element, too few for "
                          "instance statistics; use useIN: false";
  EXPECT_NORMLAB_ERROR(forward(*sn, std::vector<float>(12, 1.0f), {4, 3}, true), HasSubstr(msg));
  EXPECT_NORMLAB_ERROR(forward(*sn, std::vector<float>(12, 1.0f), {4, 3}, false), HasSubstr(msg));
  EXPECT_NORMLAB_ERROR(forward(*sn, std::vector<float>(12, 1.0f), {4, 3, 1, 1}, true),
                       HasSubstr("switchablenorm: input shape [4,3,1,1] has 1 spatial element"));
  // Without IN: LN and BN over [N, C]; one-hot BN is BatchNorm1d.
  auto nc = make_layer("switchablenorm", {{"channels", 3}, {"useIN", false}});
  EXPECT_EQ(param_value(*nc, "meanWeight").size(), 2u);
  set_param(*nc, "meanWeight", {0, 100});
  set_param(*nc, "varWeight", {0, 100});
  auto bn = make_layer("batchnorm", {{"channels", 3}});
  const Shape s = {6, 3};
  const std::vector<float> x = channel_input(s, 10);
  EXPECT_CLOSE("LN+BN one-hot BN", forward(*nc, x, s, true), forward(*bn, x, s, true), 1e-5, 1e-5);
  // Without BN: no running state, no batch dependence (a batch of one trains).
  auto nobn = make_layer("switchablenorm", {{"channels", 3}, {"useBN", false}});
  EXPECT_TRUE(nobn->state().empty());
  EXPECT_EQ(param_value(*nobn, "varWeight").size(), 2u);
  EXPECT_NO_THROW(forward(*nobn, channel_input({1, 3, 4}, 11), {1, 3, 4}, true));
  EXPECT_FALSE(nobn->set_population_statistics(x.data(), s));
  // LN only.
  auto ln = make_layer("switchablenorm", {{"channels", 3}, {"useIN", false}, {"useBN", false}});
  EXPECT_EQ(param_value(*ln, "meanWeight"), std::vector<float>{1.0f});
  EXPECT_NO_THROW(forward(*ln, std::vector<float>{1, 2, 4}, {1, 3}, true));
}

TEST(SwitchableNorm, OptionsParamsAndValidation) {
  const std::string m = "switchablenorm: ";
  EXPECT_EQ(normlab::layer_options(*make_layer("switchablenorm", {{"channels", 3}})),
            (json{{"channels", 3}, {"eps", 1e-5}, {"momentum", 0.1}, {"affine", true},
                  {"useIN", true}, {"useBN", true}}));
  auto l = make_layer("switchablenorm", {{"channels", 3}});
  std::vector<std::string> names;
  for (const auto& p : l->params()) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"gamma", "beta", "meanWeight", "varWeight"}));
  EXPECT_EQ(param_value(*l, "meanWeight"), std::vector<float>(3, 1.0f));  // equal weights
  EXPECT_EQ(state_value(*l, "runningVar"), std::vector<float>(3, 1.0f));
  auto plain = make_layer("switchablenorm", {{"channels", 3}, {"affine", false}});
  ASSERT_EQ(plain->params().size(), 2u);
  EXPECT_EQ(plain->params()[0].name, "meanWeight");
  EXPECT_NORMLAB_ERROR(set_param(*l, "weight", {1, 1, 1}),
                       HasSubstr(m + "no parameter 'weight' (known: gamma, beta, meanWeight, varWeight)"));
  EXPECT_NORMLAB_ERROR(set_param(*l, "meanWeight", {1, 1}), HasSubstr(m + "meanWeight needs 3 values, got 2"));
  EXPECT_NORMLAB_ERROR(set_state(*l, "runningVar", {1, -0.5f, 1}),
                       HasSubstr(m + "runningVar[1] must be >= 0, got -0.5"));
  EXPECT_NORMLAB_ERROR(make_layer("switchablenorm", {{"channels", 3}, {"useLN", false}}),
                       HasSubstr(m + "unknown option 'useLN' (known: channels, eps, momentum, affine, useIN, useBN)"));
  EXPECT_NORMLAB_ERROR(make_layer("switchablenorm", {{"channels", 3}, {"useIN", 0}}),
                       HasSubstr(m + "option useIN must be true or false, got 0"));
  EXPECT_NORMLAB_ERROR(make_layer("switchablenorm", {{"channels", 3}, {"momentum", -0.1}}),
                       HasSubstr(m + "momentum must be in [0, 1], got -0.1"));
  EXPECT_NORMLAB_ERROR(forward(*l, std::vector<float>(30, 1.0f), {2, 5, 3}, true),
                       HasSubstr(m + "input shape [2,5,3] has 5 channels (dim 1), layer has 3"));
  EXPECT_NORMLAB_ERROR(forward(*l, std::vector<float>(3, 1.0f), {1, 3, 1}, true),
                       HasSubstr(m + "input shape [1,3,1] has 1 spatial element"));
}

TEST(SwitchableNorm, PopulationStatistics) {
  const Shape s = {4, 3, 5};
  const std::vector<float> x = channel_input(s, 12);
  auto l = make_layer("switchablenorm", {{"channels", 3}});
  ASSERT_TRUE(l->set_population_statistics(x.data(), s));
  std::vector<double> mean(3), var(3);
  normlab::moments(mean.data(), var.data(), x.data(), 4, 3, 5);
  EXPECT_CLOSE("runningMean", state_value(*l, "runningMean"), mean, 1e-7, 1e-6);
  EXPECT_CLOSE("runningVar", state_value(*l, "runningVar"), var, 1e-7, 1e-6);
}

TEST(SwitchableNorm, MakeNormModuleFillsChannelsAndUseIn) {
  auto c = normlab::make_norm_module("switchablenorm", json::object(), {1, 8, 6, 6});
  EXPECT_EQ(normlab::layer_options(c->layer())["channels"], 8);
  EXPECT_EQ(normlab::layer_options(c->layer())["useIN"], true);
  auto m = normlab::make_norm_module("switchablenorm", json::object(), {1, 32});
  EXPECT_EQ(normlab::layer_options(m->layer())["useIN"], false);  // [N,C]: LN and BN only
  EXPECT_NORMLAB_ERROR(normlab::make_norm_module("switchablenorm", {{"useIN", true}}, {1, 32}),
                       HasSubstr("switchablenorm: input shape [1,32] has 1 spatial element"));
}

TEST(SwitchableNorm, RunnerLabelsAndIds) {
  const json config = {
      {"methods", {"sn", {{"method", "switchablenorm"}, {"options", {{"useBN", false}}}}}}};
  expect_run_methods(config, {{"switchablenorm", "sn", "Switchable Norm"},
                              {"", "", "Switchable Norm (no BN)"}});
}

}  // namespace
}  // namespace normlab_test
