// Folding normalization layers into the Linear / Conv2d before them (fold.h): hand-computed folded
// weights for a 2->2 Linear, and, for an MLP and a CNN trained a few steps, inference outputs of the
// folded model against the unfolded one within atol 1e-5 + rtol 1e-4 (elementwise on the logits).
// The trained cases use eps = 0.1 so that an eps put in the wrong place shows well above that
// tolerance, and a momentum of 0.5 so that the running statistics move far from their start.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "normlab/core/error.h"
#include "normlab/core/rng.h"
#include "normlab/nn/conv2d.h"
#include "normlab/nn/fold.h"
#include "normlab/nn/linear.h"
#include "normlab/nn/loss.h"
#include "normlab/nn/model.h"
#include "normlab/nn/norm_module.h"
#include "normlab/nn/optim.h"
#include "normlab/run/runner.h"
#include "test_util.h"

namespace {

using nlohmann::json;
using normlab::Conv2d;
using normlab::FoldResult;
using normlab::Linear;
using normlab::Model;
using normlab::NormModule;
using normlab::Shape;
using normlab::Tensor;
using ::testing::HasSubstr;

constexpr double kAtol = 1e-5;
constexpr double kRtol = 1e-4;

// ---- hand-computed: a 2->2 Linear followed by a normalization with set parameters and state ----

// W = [[1, 2], [3, 4]], b = [0.5, -1]; gamma = [2, 3], beta = [0.5, -1], centre = [1, -2], and
// state chosen so that each method's deviation term is [1, 2]: scale = gamma / deviation = [2, 1.5].
//   W' = [[1*2, 2*2], [3*1.5, 4*1.5]] = [[2, 4], [4.5, 6]]
//   b' = [(0.5 - 1)*2 + 0.5, (-1 + 2)*1.5 - 1] = [-0.5, 0.5]
// Without bias: b' = [(0 - 1)*2 + 0.5, (0 + 2)*1.5 - 1] = [-1.5, 2]. All exact in float.
struct HandCase {
  std::string method;
  json options;  // eps = 0.25: misplacing it changes the deviation term
  std::string centre_name, deviation_name;
  std::vector<float> deviation_state;  // gives the deviation term [1, 2]
};

std::vector<HandCase> hand_cases() {
  return {
      // sqrt(0.75 + 0.25) = 1, sqrt(3.75 + 0.25) = 2
      {"batchnorm", {{"eps", 0.25}}, "runningMean", "runningVar", {0.75f, 3.75f}},
      // runningStd is the deviation itself (eps is inside it)
      {"batchrenorm", {{"eps", 0.25}}, "runningMean", "runningStd", {1.0f, 2.0f}},
      // runningDev + eps
      {"l1batchnorm", {{"eps", 0.25}}, "runningMean", "runningDev", {0.75f, 1.75f}},
      // runningDeviation + eps
      {"generalizedbatchnorm", {{"eps", 0.25}}, "runningCenter", "runningDeviation", {0.75f, 1.75f}},
  };
}

// The hand case's normalization for inputs of `shape`, with gamma, beta, centre and deviation set.
std::unique_ptr<NormModule> hand_norm(const HandCase& c, const Shape& shape) {
  auto norm = normlab::make_norm_module(c.method, c.options, shape);
  const std::vector<float> gamma = {2, 3}, beta = {0.5f, -1}, centre = {1, -2};
  norm->layer().set_param("gamma", gamma.data(), 2);
  norm->layer().set_param("beta", beta.data(), 2);
  norm->layer().set_state(c.centre_name, centre.data(), 2);
  norm->layer().set_state(c.deviation_name, c.deviation_state.data(), 2);
  return norm;
}

// The BatchNorm hand case: eps 0.25, gamma [2, 3], beta [0.5, -1], mean [1, -2], var [0.75, 3.75].
const HandCase& batchnorm_hand_case() {
  static const HandCase c = hand_cases().front();
  return c;
}

Model hand_model(const HandCase& c, bool bias) {
  Model m;
  m.add(std::make_unique<Linear>(2, 2, std::vector<float>{1, 2, 3, 4},
                                 bias ? std::vector<float>{0.5f, -1.0f} : std::vector<float>{}));
  m.add(hand_norm(c, {1, 2}));
  return m;
}

class FoldHand : public ::testing::TestWithParam<HandCase> {};

TEST_P(FoldHand, LinearWeightsAndBiasElementByElement) {
  const HandCase& c = GetParam();
  for (bool bias : {true, false}) {
    SCOPED_TRACE(bias ? "with bias" : "without bias");
    Model m = hand_model(c, bias);
    FoldResult f = normlab::fold_norms(m);
    ASSERT_EQ(f.model.size(), 1u);
    ASSERT_EQ(f.folded.size(), 1u);
    EXPECT_EQ(f.folded[0].layer, 1u);
    EXPECT_EQ(f.folded[0].method, c.method);
    EXPECT_EQ(f.folded[0].note, "linear");
    EXPECT_TRUE(f.kept.empty());
    auto& lin = const_cast<Linear&>(dynamic_cast<const Linear&>(f.model.layer(0)));
    ASSERT_TRUE(lin.has_bias());
    const std::vector<float> w = {2, 4, 4.5f, 6};
    const std::vector<float> b = bias ? std::vector<float>{-0.5f, 0.5f} : std::vector<float>{-1.5f, 2};
    ASSERT_EQ(lin.weight().value.size(), 4u);
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(lin.weight().value[i], w[i]) << "weight[" << i << "]";
    for (size_t i = 0; i < 2; ++i) EXPECT_EQ(lin.bias().value[i], b[i]) << "bias[" << i << "]";

    // And the two models agree on inputs (the original still has its two layers).
    ASSERT_EQ(m.size(), 2u);
    Tensor x({3, 2});
    x.data = {0.5f, -1, 2, 3, -4, 0.25f};
    const std::vector<float> ref = m.forward(x, false).data;
    const std::vector<float> got = f.model.forward(x, false).data;
    for (size_t i = 0; i < ref.size(); ++i) {
      EXPECT_NEAR(got[i], ref[i], kAtol + kRtol * std::abs(ref[i])) << "output " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Methods, FoldHand, ::testing::ValuesIn(hand_cases()),
                         [](const auto& info) { return info.param.method; });

TEST(FoldHand, BatchnormAffineFalseUsesUnitGammaZeroBeta) {
  Model m;
  m.add(std::make_unique<Linear>(2, 2, std::vector<float>{1, 2, 3, 4}, std::vector<float>{0.5f, -1}));
  auto norm = normlab::make_norm_module("batchnorm", {{"eps", 0.25}, {"affine", false}}, {1, 2});
  const std::vector<float> mean = {1, -2}, var = {0.75f, 3.75f};
  norm->layer().set_state("runningMean", mean.data(), 2);
  norm->layer().set_state("runningVar", var.data(), 2);
  m.add(std::move(norm));
  FoldResult f = normlab::fold_norms(m);
  ASSERT_EQ(f.model.size(), 1u);
  auto& lin = const_cast<Linear&>(dynamic_cast<const Linear&>(f.model.layer(0)));
  // scale = [1, 0.5]: W' = [[1, 2], [1.5, 2]], b' = [(0.5 - 1)*1, (-1 + 2)*0.5] = [-0.5, 0.5]
  EXPECT_THAT(lin.weight().value, ::testing::ElementsAre(1.0f, 2.0f, 1.5f, 2.0f));
  EXPECT_THAT(lin.bias().value, ::testing::ElementsAre(-0.5f, 0.5f));
}

TEST(FoldHand, Conv2dPerOutputChannel) {
  // 1 -> 2 channels, 1x1 kernel: the conv is a per-pixel 2x1 linear map.
  Model m;
  m.add(std::make_unique<Conv2d>(1, 2, 1, 1, 0, std::vector<float>{1, 3}, std::vector<float>{0.5f, -1}));
  m.add(hand_norm(batchnorm_hand_case(), {1, 2, 2, 2}));
  FoldResult f = normlab::fold_norms(m);
  ASSERT_EQ(f.model.size(), 1u);
  EXPECT_EQ(f.folded.at(0).note, "conv2d");
  auto& conv = const_cast<Conv2d&>(dynamic_cast<const Conv2d&>(f.model.layer(0)));
  EXPECT_THAT(conv.weight().value, ::testing::ElementsAre(2.0f, 4.5f));
  EXPECT_THAT(conv.bias().value, ::testing::ElementsAre(-0.5f, 0.5f));
}

TEST(FoldKeeps, NormNotAfterLinearOrConv) {
  Model m;
  m.add(normlab::make_norm_module("batchnorm", {}, {1, 2}));
  m.add(std::make_unique<Linear>(2, 2, std::vector<float>{1, 2, 3, 4}, std::vector<float>{0, 0}));
  FoldResult f = normlab::fold_norms(m);
  EXPECT_EQ(f.model.size(), 2u);
  EXPECT_TRUE(f.folded.empty());
  ASSERT_EQ(f.kept.size(), 1u);
  EXPECT_EQ(f.kept[0].layer, 0u);
  EXPECT_THAT(f.kept[0].note, HasSubstr("not directly after a linear or conv2d"));
}

// Inference outputs of two models on the same input.
std::vector<float> outputs(Model& m, const Tensor& x) {
  const Tensor& y = m.forward(x, false);
  return std::vector<float>(y.ptr(), y.ptr() + y.numel());
}

TEST(FoldWeightModes, WeightNormFoldsItsEffectiveWeightCosineIsKept) {
  normlab::Rng rng(7);
  Tensor x({5, 3});
  for (float& v : x.data) v = static_cast<float>(rng.uniform(-2, 2));
  for (auto mode : {normlab::WeightMode::weight_norm, normlab::WeightMode::cosine}) {
    Model m;
    normlab::Rng init(3);
    auto lin = std::make_unique<Linear>(3, 2, init, true, mode);
    if (mode == normlab::WeightMode::weight_norm) {
      // g away from ||v||, so the effective weight differs from the stored v.
      const std::vector<float> g = {0.5f, 2.5f};
      for (normlab::Param* p : lin->parameters()) {
        if (p->name == "weight_g") p->value = g;
      }
    }
    m.add(std::move(lin));
    m.add(hand_norm(batchnorm_hand_case(), {1, 2}));
    FoldResult f = normlab::fold_norms(m);
    const std::vector<float> want = outputs(m, x), got = outputs(f.model, x);
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], kAtol + kRtol * std::fabs(want[i]));
    if (mode == normlab::WeightMode::weight_norm) {
      ASSERT_EQ(f.model.size(), 1u);
      EXPECT_EQ(f.folded.at(0).note, "linear");  // a plain layer with the effective weight
    } else {
      // A cosine layer's output is not linear in x: BatchNorm after it stays.
      EXPECT_EQ(f.model.size(), 2u);
      ASSERT_EQ(f.kept.size(), 1u);
      EXPECT_THAT(f.kept[0].note, HasSubstr("plain or weight-normalized"));
    }
  }
}

TEST(FoldKeeps, BatchnormWithoutRunningStats) {
  Model m;
  m.add(std::make_unique<Linear>(2, 2, std::vector<float>{1, 2, 3, 4}, std::vector<float>{0, 0}));
  m.add(normlab::make_norm_module("batchnorm", {{"trackRunningStats", false}}, {1, 2}));
  FoldResult f = normlab::fold_norms(m);
  EXPECT_EQ(f.model.size(), 2u);
  ASSERT_EQ(f.kept.size(), 1u);
  EXPECT_THAT(f.kept[0].note, HasSubstr("batch statistics"));
}

TEST(FoldValues, LinearAndConvFromValuesCheckLengths) {
  EXPECT_NORMLAB_ERROR(Linear(2, 2, std::vector<float>(3), {}), HasSubstr("needs 4 values, got 3"));
  EXPECT_NORMLAB_ERROR(Linear(2, 2, std::vector<float>(4), std::vector<float>(3)),
                       HasSubstr("bias needs 2 values"));
  EXPECT_NORMLAB_ERROR(Conv2d(1, 2, 3, 1, 1, std::vector<float>(17), {}),
                       HasSubstr("needs 18 values, got 17"));
  EXPECT_NORMLAB_ERROR(Conv2d(1, 2, 3, 0, 1, std::vector<float>(18), {}),
                       HasSubstr("stride must be a positive integer"));
}

// ---- trained models -------------------------------------------------------------------------

struct TrainedCase {
  std::string name;
  std::string method;
  json options;
  bool foldable;
};

std::vector<TrainedCase> trained_cases() {
  const json batch = {{"eps", 0.1}, {"momentum", 0.5}};
  json gbn_median = batch;
  gbn_median["center"] = "median";
  gbn_median["deviation"] = "mad";
  return {
      {"batchnorm", "batchnorm", batch, true},
      {"batchrenorm", "batchrenorm", batch, true},
      {"l1batchnorm", "l1batchnorm", batch, true},
      {"generalizedbatchnorm", "generalizedbatchnorm", batch, true},
      {"generalizedbatchnorm_median_mad", "generalizedbatchnorm", gbn_median, true},
      {"layernorm", "layernorm", {{"eps", 0.1}}, false},
      {"groupnorm", "groupnorm", {{"eps", 0.1}}, false},
      {"batchnorm_no_running_stats", "batchnorm", {{"eps", 0.1}, {"trackRunningStats", false}}, false},
  };
}

struct Arch {
  std::string name;
  normlab::ModelSpec spec;
  Shape sample;
};

std::vector<Arch> archs() {
  normlab::ModelSpec mlp;
  mlp.kind = "mlp";
  mlp.hidden = {16, 12};
  normlab::ModelSpec cnn;
  cnn.kind = "cnn";
  cnn.channels = {4, 6};
  return {{"mlp", mlp, {6}}, {"cnn", cnn, {2, 8, 8}}};
}

constexpr int32_t kClasses = 3;

Tensor random_batch(normlab::Rng& rng, int64_t n, const Shape& sample) {
  Shape shape = {n};
  shape.insert(shape.end(), sample.begin(), sample.end());
  Tensor x(shape);
  // Off-centre and wider than unit variance, so that the running statistics have work to do.
  for (float& v : x.data) v = static_cast<float>(0.7 + 1.8 * rng.normal());
  return x;
}

// Eight SGD steps (momentum 0.9) on random batches of 16 with random labels.
Model trained_model(const Arch& arch, const TrainedCase& c) {
  Model model = normlab::build_model(arch.spec, arch.sample, kClasses, c.method, c.options,
                                     normlab::Rng(7));
  normlab::OptimizerOptions o;
  o.kind = "sgd";
  o.lr = 0.1;
  o.momentum = 0.9;
  normlab::Optimizer opt(o, model.parameters());
  normlab::Rng rng(11);
  for (int step = 0; step < 8; ++step) {
    Tensor x = random_batch(rng, 16, arch.sample);
    std::vector<int32_t> labels(16);
    for (int32_t& l : labels) l = static_cast<int32_t>(rng.below(kClasses));
    const Tensor& logits = model.forward(x, true);
    Tensor dlogits(logits.shape);
    normlab::softmax_cross_entropy(dlogits.ptr(), nullptr, logits.ptr(), labels.data(), 16, kClasses);
    model.backward(dlogits);
    opt.step(o.lr);
  }
  return model;
}

// Largest |a - b| / (atol + rtol |a|) (<= 1: within tolerance), and the largest |a - b|.
std::pair<double, double> closeness(const std::vector<float>& ref, const std::vector<float>& got) {
  double ratio = 0, diff = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = std::abs(double{got[i]} - double{ref[i]});
    ratio = std::max(ratio, d / (kAtol + kRtol * std::abs(double{ref[i]})));
    diff = std::max(diff, d);
    if (std::isnan(d)) return {INFINITY, INFINITY};
  }
  return {ratio, diff};
}

class FoldTrained : public ::testing::TestWithParam<std::tuple<Arch, TrainedCase>> {};

TEST_P(FoldTrained, FoldedOutputsEqualUnfolded) {
  const Arch& arch = std::get<0>(GetParam());
  const TrainedCase& c = std::get<1>(GetParam());
  Model model = trained_model(arch, c);
  const size_t norms = model.norms().size();
  ASSERT_EQ(norms, arch.spec.kind == "cnn" ? arch.spec.channels.size() : arch.spec.hidden.size());

  // The trained state is far from the initial one (else a fold that ignored it would pass).
  if (c.foldable) {
    for (NormModule* n : model.norms()) {
      const auto& p = n->layer().params();
      const auto& s = n->layer().state();
      double gamma_moved = 0, centre_moved = 0, dev_moved = 0;
      for (float g : p.at(0).value) gamma_moved = std::max(gamma_moved, std::abs(g - 1.0));
      for (float v : s.at(0).value) centre_moved = std::max(centre_moved, std::abs(double{v}));
      for (float v : s.at(1).value) dev_moved = std::max(dev_moved, std::abs(v - 1.0));
      EXPECT_GT(gamma_moved, 1e-3) << n->kind();
      EXPECT_GT(centre_moved, 0.05) << n->kind();
      EXPECT_GT(dev_moved, 0.05) << n->kind();
    }
  }

  normlab::Rng rng(23);
  const Tensor x = random_batch(rng, 40, arch.sample);
  const std::vector<float> before = model.forward(x, false).data;
  FoldResult f = normlab::fold_norms(model);

  // Foldable: every normalization is gone; the others are all kept, with the layer count unchanged.
  if (c.foldable) {
    EXPECT_EQ(f.folded.size(), norms);
    EXPECT_TRUE(f.kept.empty());
    EXPECT_EQ(f.model.size(), model.size() - norms);
    EXPECT_TRUE(f.model.norms().empty());
    for (const auto& e : f.folded) EXPECT_EQ(e.note, arch.spec.kind == "cnn" ? "conv2d" : "linear");
  } else {
    EXPECT_TRUE(f.folded.empty());
    EXPECT_EQ(f.kept.size(), norms);
    EXPECT_EQ(f.model.size(), model.size());
    EXPECT_EQ(f.model.summary(), model.summary());
  }

  // The original is untouched: same layers, bit-identical inference outputs.
  const std::vector<float> ref = model.forward(x, false).data;
  EXPECT_EQ(ref, before);
  const std::vector<float> got = f.model.forward(x, false).data;
  ASSERT_EQ(got.size(), ref.size());
  const auto [ratio, diff] = closeness(ref, got);
  std::printf("[ fold     ] %s/%s: max |folded - unfolded| = %.3g (%.3g of the tolerance)\n",
              arch.name.c_str(), c.name.c_str(), diff, ratio);
  RecordProperty("max_abs_diff", std::to_string(diff));
  EXPECT_LE(ratio, 1.0) << "max |folded - unfolded| = " << diff << " beyond atol " << kAtol
                        << " + rtol " << kRtol;

  // And independent: training the original further leaves the folded model as it was.
  model.forward(x, true);
  for (normlab::Param* p : model.parameters()) {
    for (float& v : p->value) v *= 1.5f;
  }
  EXPECT_EQ(f.model.forward(x, false).data, got);
}

INSTANTIATE_TEST_SUITE_P(Models, FoldTrained,
                         ::testing::Combine(::testing::ValuesIn(archs()),
                                            ::testing::ValuesIn(trained_cases())),
                         [](const auto& info) {
                           return std::get<0>(info.param).name + "_" + std::get<1>(info.param).name;
                         });

// A wrong fold fails: with the eps of batchnorm put outside the square root (sqrt(var) + eps, a
// plausible slip), the outputs leave the tolerance in the trained models above. Guards the test's
// power, not the code.
TEST(FoldTrainedPower, MisplacedEpsLeavesTheTolerance) {
  const Arch arch = archs()[0];
  const TrainedCase c = trained_cases()[0];
  Model model = trained_model(arch, c);
  normlab::Rng rng(23);
  const Tensor x = random_batch(rng, 40, arch.sample);
  const std::vector<float> ref = model.forward(x, false).data;
  // Rewrite runningVar so that sqrt(var' + eps) = sqrt(var) + eps: the exact fold of a model with
  // that state is what a misplaced-eps fold of the real state would give.
  for (NormModule* n : model.norms()) {
    std::vector<float> var = n->layer().state().at(1).value;
    for (float& v : var) {
      const double d = std::sqrt(double{v}) + 0.1;
      v = static_cast<float>(d * d - 0.1);
    }
    n->layer().set_state("runningVar", var.data(), var.size());
  }
  FoldResult f = normlab::fold_norms(model);
  EXPECT_GT(closeness(ref, f.model.forward(x, false).data).first, 10.0);
}

// ---- through the runner ----------------------------------------------------------------------

TEST(FoldRunner, FoldedPredictionsAndSummary) {
  const normlab::RunConfig config = normlab::run_config_from_json(
      {{"dataset", {{"name", "moons"}, {"trainSize", 300}, {"testSize", 200}}},
       {"model", {{"kind", "mlp"}, {"hidden", {16, 16}}}},
       {"methods", {"bn", "l1bn", "gn"}},
       {"batchSize", 16},
       {"steps", 30},
       {"evalInterval", 30},
       {"seed", 4}});
  normlab::Runner runner(config, {});
  runner.step(30);
  std::vector<float> grid;
  for (int i = 0; i < 2 * 120; ++i) grid.push_back(static_cast<float>((i * 37) % 101) / 25.0f - 2.0f);
  for (const char* id : {"bn", "l1bn", "gn"}) {
    SCOPED_TRACE(id);
    const std::vector<float> plain = runner.predict(id, grid.data(), 120);
    const std::vector<float> folded = runner.predict(id, grid.data(), 120, true);
    EXPECT_LE(closeness(plain, folded).first, 1.0);
    EXPECT_EQ(runner.predict(id, grid.data(), 120), plain);  // the training model is unchanged
    const json s = runner.fold(id);
    EXPECT_LT(s.at("maxAbsDiff").get<double>(), 1e-4);
    const bool foldable = std::string(id) != "gn";
    EXPECT_EQ(s.at("folded").size(), foldable ? 2u : 0u);
    EXPECT_EQ(s.at("kept").size(), foldable ? 0u : 2u);
    EXPECT_EQ(s.at("layers").at("before"), 7);
    EXPECT_EQ(s.at("layers").at("after"), foldable ? 5 : 7);
    if (foldable) {
      EXPECT_EQ(s.at("summary").at("after"), "linear relu linear relu linear");
      EXPECT_EQ(s.at("folded")[1], json({{"layer", 4}, {"method", std::string(id) == "bn" ? "batchnorm" : "l1batchnorm"}, {"into", "linear"}}));
    } else {
      EXPECT_EQ(s.at("kept")[0], json({{"layer", 1}, {"method", "groupnorm"}, {"reason", "inference depends on the sample"}}));
    }
  }
  EXPECT_NORMLAB_ERROR(runner.fold("ln"), HasSubstr("runner: no method 'ln' (methods: bn, l1bn, gn)"));
}

}  // namespace
