// Generalized BatchNorm beyond the PyTorch fixtures and the finite-difference sweep
// (gradcheck_test.cpp): identities with BatchNorm (mean/std) and between its pairs
// (quantile/superquantile at 0.5 vs median/MAD), its statistics by hand, deterministic ties, NaN,
// running statistics and inference, options with every validation error and message, AdaBN,
// make_norm_module's channels, and the comparison runner's labels and ids.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "normlab/nn/norm_module.h"
#include "normlab/norm/generalizedbatchnorm.h"
#include "test_util.h"

namespace normlab_test {
namespace {

using ::testing::HasSubstr;

json gbn(const std::string& center, json extra = json::object()) {
  json o = {{"channels", 3}, {"center", center}};
  for (const auto& item : extra.items()) o[item.key()] = item.value();
  return o;
}

// mean/std is BatchNorm's normalization: with an eps negligible against the variance (1e-10
// here, for both layers) outputs, dx, dgamma and dbeta agree to float32 precision.
TEST(GeneralizedBatchNorm, MeanStdIsBatchNormWhereEpsPlacementAgrees) {
  for (const Shape& s : std::vector<Shape>{{8, 3}, {2, 3, 5}, {2, 3, 3, 5}}) {
    SCOPED_TRACE(normlab::to_string(s));
    auto g = make_layer("generalizedbatchnorm", gbn("mean", {{"eps", 1e-10}}));
    auto b = make_layer("batchnorm", {{"channels", 3}, {"eps", 1e-10}});
    const std::vector<float> gamma = {1.5f, -0.7f, 0.9f}, beta = {0.1f, 0.2f, -0.3f};
    for (auto* l : {g.get(), b.get()}) {
      set_param(*l, "gamma", gamma);
      set_param(*l, "beta", beta);
    }
    const std::vector<float> x = channel_input(s, 1), dy = channel_input(s, 2);
    EXPECT_CLOSE("y", forward(*g, x, s, true), forward(*b, x, s, true), 1e-5, 1e-5);
    EXPECT_CLOSE("dx", backward(*g, dy), backward(*b, dy), 1e-5, 1e-4);
    EXPECT_CLOSE("dgamma", param_grad(*g, "gamma"), param_grad(*b, "gamma"), 1e-5, 1e-4);
    EXPECT_CLOSE("dbeta", param_grad(*g, "beta"), param_grad(*b, "beta"), 1e-5, 1e-5);
    // The running center is BatchNorm's running mean (the deviation is a std, BN keeps a variance).
    EXPECT_CLOSE("runningCenter", state_value(*g, "runningCenter"), state_value(*b, "runningMean"), 1e-6, 1e-6);
  }
}

// Where they do not agree: the paper's (x - mu)/(sigma + eps) against BN's (x - mu)/sqrt(var + eps).
TEST(GeneralizedBatchNorm, EpsIsAddedToTheDeviation) {
  const Shape s = {4, 1};
  const std::vector<float> x = {0, 1, 2, 5};  // mean 2, biased variance 3.5
  auto g = make_layer("generalizedbatchnorm", {{"channels", 1}, {"eps", 0.5}});
  auto b = make_layer("batchnorm", {{"channels", 1}, {"eps", 0.5}});
  const std::vector<float> yg = forward(*g, x, s, true), yb = forward(*b, x, s, true);
  const double sd = std::sqrt(3.5);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(yg[i], (x[i] - 2) / (sd + 0.5), 1e-6);
    EXPECT_NEAR(yb[i], (x[i] - 2) / std::sqrt(3.5 + 0.5), 1e-6);
  }
}

// At level 1/2 the quantile quadrangle's error is E|X|: the superquantile deviation is the mean
// absolute deviation from the (lower) median, for even and odd M, forward and backward.
TEST(GeneralizedBatchNorm, QuantileSuperquantileAtOneHalfIsMedianMad) {
  for (const Shape& s : std::vector<Shape>{{6, 3}, {2, 3, 5}, {3, 3, 3}}) {
    SCOPED_TRACE(normlab::to_string(s));
    auto q = make_layer("generalizedbatchnorm", gbn("quantile", {{"level", 0.5}}));
    auto m = make_layer("generalizedbatchnorm", gbn("median"));
    const std::vector<float> x = channel_input(s, 3), dy = channel_input(s, 4);
    EXPECT_CLOSE("y", forward(*q, x, s, true), forward(*m, x, s, true), 1e-6, 1e-6);
    EXPECT_CLOSE("dx", backward(*q, dy), backward(*m, dy), 1e-6, 1e-5);
    EXPECT_CLOSE("runningDeviation", state_value(*q, "runningDeviation"),
                 state_value(*m, "runningDeviation"), 1e-7, 1e-6);
  }
}

// The statistics themselves on a small example, against the paper's definitions.
TEST(GeneralizedBatchNorm, StatisticsByHand) {
  // One channel, M = 5: sorted 1 2 4 8 10, mean 5.
  const std::vector<float> x = {8, 1, 10, 4, 2};
  double s, d;
  int64_t sel;
  normlab::gbn_statistics(&s, &d, &sel, x.data(), normlab::GbnPair::kMedianMad, 0.5, 5, 1, 1);
  EXPECT_EQ(s, 4);
  EXPECT_EQ(sel, 3);
  EXPECT_DOUBLE_EQ(d, (4 + 3 + 6 + 0 + 2) / 5.0);
  normlab::gbn_statistics(&s, &d, &sel, x.data(), normlab::GbnPair::kMeanStd, 0.5, 5, 1, 1);
  EXPECT_DOUBLE_EQ(s, 5);
  EXPECT_DOUBLE_EQ(d, std::sqrt((9 + 16 + 25 + 1 + 9) / 5.0));
  // alpha = 0.7: q = x_(ceil(3.5)) = x_(4) = 8; the upper 30% of the distribution is half of the
  // atom at 8 (weight 0.1 of 0.2) and all of 10 (0.2): qbar = (0.1*8 + 0.2*10)/0.3 = 9.333...
  normlab::gbn_statistics(&s, &d, &sel, x.data(), normlab::GbnPair::kQuantileSuperquantile, 0.7, 5, 1, 1);
  EXPECT_EQ(s, 8);
  EXPECT_EQ(sel, 0);
  EXPECT_NEAR(d, (0.1 * 8 + 0.2 * 10) / 0.3 - 5, 1e-12);
  // alpha = 0.6: alpha*M = 3 is whole, q = x_(3) = 4, qbar = mean of the top 2 = 9.
  normlab::gbn_statistics(&s, &d, &sel, x.data(), normlab::GbnPair::kQuantileSuperquantile, 0.6, 5, 1, 1);
  EXPECT_EQ(s, 4);
  EXPECT_NEAR(d, 9 - 5, 1e-12);
  // Even M: the lower median (torch.median's), x_(M/2).
  const std::vector<float> x4 = {3, 1, 4, 2};
  normlab::gbn_statistics(&s, &d, &sel, x4.data(), normlab::GbnPair::kMedianMad, 0.5, 4, 1, 1);
  EXPECT_EQ(s, 2);
  EXPECT_DOUBLE_EQ(d, (1 + 1 + 2 + 0) / 4.0);
}

// Ties are broken by position (n, then s): the selected element is deterministic, and the
// gradient of the center goes to it alone.
TEST(GeneralizedBatchNorm, TiesAreBrokenByPosition) {
  // One channel, M = 4, all equal: D = 0, y = beta, and dx_i = gamma/eps * (dy_i - [i = sel] sum dy).
  const Shape s = {4, 1};
  const std::vector<float> x = {2, 2, 2, 2}, dy = {0.1f, 0.2f, 0.3f, 0.4f};
  for (const char* center : {"median", "quantile"}) {
    SCOPED_TRACE(center);
    auto l = make_layer("generalizedbatchnorm",
                        {{"channels", 1}, {"center", center}, {"level", 0.5}, {"eps", 0.5}});
    EXPECT_EQ(forward(*l, x, s, true), std::vector<float>(4, 0.0f));
    const std::vector<float> dx = backward(*l, dy);
    // The lower median of 4 is rank 2, the element at index 1 among the tied ones.
    const std::vector<float> want = {0.2f, 2 * (0.2f - 1.0f), 0.6f, 0.8f};
    EXPECT_CLOSE("dx", dx, want, 1e-6, 1e-6);
    EXPECT_TRUE(check_identical("dx again", backward(*l, dy), dx));
  }
  // Partial ties: values 1 1 3 3 3 5, median rank 3 is the first 3 (index 2 of them).
  double c, d;
  int64_t sel;
  const std::vector<float> x6 = {3, 1, 3, 5, 1, 3};
  normlab::gbn_statistics(&c, &d, &sel, x6.data(), normlab::GbnPair::kMedianMad, 0.5, 6, 1, 1);
  EXPECT_EQ(c, 3);
  EXPECT_EQ(sel, 0);
}

TEST(GeneralizedBatchNorm, NaNPropagates) {
  const Shape s = {4, 2};
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};
  x[2] = std::numeric_limits<float>::quiet_NaN();  // channel 0
  for (const char* center : {"mean", "median", "quantile"}) {
    SCOPED_TRACE(center);
    auto l = make_layer("generalizedbatchnorm", {{"channels", 2}, {"center", center}});
    const std::vector<float> y = forward(*l, x, s, true);
    for (int n = 0; n < 4; ++n) {
      EXPECT_TRUE(std::isnan(y[n * 2])) << n;
      EXPECT_FALSE(std::isnan(y[n * 2 + 1])) << n;
    }
    const std::vector<float> dx = backward(*l, std::vector<float>(8, 1.0f));
    EXPECT_FALSE(std::isnan(dx[1]));
  }
}

// Running estimates: BN's momentum update of S and D; inference with them. With momentum 1 the
// running values are the last batch's, so inference on that batch reproduces the training output.
TEST(GeneralizedBatchNorm, RunningEstimatesAndInference) {
  const Shape s = {2, 3, 5};
  const std::vector<float> x = channel_input(s, 5);
  for (const char* center : {"mean", "median", "quantile"}) {
    SCOPED_TRACE(center);
    auto l = make_layer("generalizedbatchnorm", gbn(center, {{"momentum", 1.0}, {"level", 0.3}}));
    const std::vector<float> y = forward(*l, x, s, true);
    EXPECT_CLOSE("inference with momentum 1", forward(*l, x, s, false), y, 1e-6, 1e-6);

    auto m = make_layer("generalizedbatchnorm", gbn(center, {{"momentum", 0.25}, {"level", 0.3}}));
    std::vector<double> c(3), d(3);
    std::vector<int64_t> sel(3);
    auto* g = dynamic_cast<normlab::GeneralizedBatchNorm*>(m.get());
    normlab::gbn_statistics(c.data(), d.data(), sel.data(), x.data(), g->pair(), 0.3, 2, 3, 5);
    forward(*m, x, s, true);
    forward(*m, x, s, true);
    std::vector<double> wc(3), wd(3);
    for (int k = 0; k < 3; ++k) {
      wc[k] = (1 - 0.75 * 0.75) * c[k];             // from 0, two steps
      wd[k] = 0.75 * 0.75 * 1 + (1 - 0.75 * 0.75) * d[k];  // from 1
    }
    EXPECT_CLOSE("runningCenter", state_value(*m, "runningCenter"), wc, 1e-6, 1e-5);
    EXPECT_CLOSE("runningDeviation", state_value(*m, "runningDeviation"), wd, 1e-6, 1e-5);
    // Inference is the per-channel affine map of the running values, and needs no batch.
    const std::vector<float> one = {1.0f, 2.0f, -1.0f, 0.5f, 0.25f, 3.0f, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const std::vector<float> y1 = forward(*m, one, {1, 3, 5}, false);
    const std::vector<float> rc = state_value(*m, "runningCenter"), rd = state_value(*m, "runningDeviation");
    EXPECT_NEAR(y1[0], (1.0 - rc[0]) / (rd[0] + 1e-5), 1e-5);
    EXPECT_NEAR(y1[5], (3.0 - rc[1]) / (rd[1] + 1e-5), 1e-5);
  }
}

TEST(GeneralizedBatchNorm, Options) {
  // Defaults, and either of center/deviation brings its partner.
  EXPECT_EQ(normlab::layer_options(*make_layer("generalizedbatchnorm", {{"channels", 3}})),
            (json{{"channels", 3}, {"center", "mean"}, {"deviation", "std"}, {"level", 0.5},
                  {"eps", 1e-5}, {"momentum", 0.1}, {"affine", true}}));
  EXPECT_EQ(normlab::layer_options(*make_layer("generalizedbatchnorm", {{"channels", 3}, {"deviation", "mad"}}))["center"], "median");
  EXPECT_EQ(normlab::layer_options(*make_layer("generalizedbatchnorm", {{"channels", 3}, {"center", "quantile"}}))["deviation"], "superquantile");
  EXPECT_EQ(normlab::layer_options(*make_layer("generalizedbatchnorm", {{"channels", 3}, {"center", nullptr}}))["center"], "mean");
  // Options round-trip through layer_options.
  const json o = {{"channels", 2}, {"center", "quantile"}, {"deviation", "superquantile"},
                  {"level", 0.8}, {"eps", 1e-3}, {"momentum", 0.3}, {"affine", false}};
  EXPECT_EQ(normlab::layer_options(*make_layer("generalizedbatchnorm", o)), o);
  // Parameters and state.
  auto l = make_layer("generalizedbatchnorm", {{"channels", 3}});
  ASSERT_EQ(l->params().size(), 2u);
  EXPECT_EQ(l->params()[0].name, "gamma");
  ASSERT_EQ(l->state().size(), 2u);
  EXPECT_EQ(state_value(*l, "runningCenter"), std::vector<float>(3, 0.0f));
  EXPECT_EQ(state_value(*l, "runningDeviation"), std::vector<float>(3, 1.0f));
  EXPECT_TRUE(make_layer("generalizedbatchnorm", {{"channels", 3}, {"affine", false}})->params().empty());
}

TEST(GeneralizedBatchNorm, ValidationMessages) {
  const std::string m = "generalizedbatchnorm: ";
  EXPECT_NORMLAB_ERROR(make_layer("generalizedbatchnorm", {{"channels", 3}, {"center", "mode"}}),
                       HasSubstr(m + "unknown center 'mode' (known: mean, median, quantile)"));
  EXPECT_NORMLAB_ERROR(make_layer("generalizedbatchnorm", {{"channels", 3}, {"deviation", "var"}}),
                       HasSubstr(m + "unknown deviation 'var' (known: std, mad, superquantile)"));
  EXPECT_NORMLAB_ERROR(
      make_layer("generalizedbatchnorm", {{"channels", 3}, {"center", "mean"}, {"deviation", "mad"}}),
      HasSubstr(m + "center 'mean' does not pair with deviation 'mad' (the paper's pairs: "
                "mean/std, median/mad, quantile/superquantile)"));
  EXPECT_NORMLAB_ERROR(
      make_layer("generalizedbatchnorm", {{"channels", 3}, {"center", "median"}, {"deviation", "superquantile"}}),
      HasSubstr(m + "center 'median' does not pair with deviation 'superquantile'"));
  EXPECT_NORMLAB_ERROR(make_layer("generalizedbatchnorm", {{"channels", 3}, {"center", 3}}),
                       HasSubstr(m + "option center must be a string, got 3"));
  for (const json& bad : {json(0), json(1), json(-0.5), json(1.5), json("NaN"), json("Infinity")}) {
    SCOPED_TRACE(bad.dump());
    EXPECT_NORMLAB_ERROR(make_layer("generalizedbatchnorm", gbn("quantile", {{"level", bad}})),
                         HasSubstr(m + "level must be a number in (0, 1), got "));
  }
  EXPECT_NORMLAB_ERROR(make_layer("generalizedbatchnorm", gbn("quantile", {{"level", 1}})),
                       HasSubstr(m + "level must be a number in (0, 1), got 1"));
  EXPECT_NORMLAB_ERROR(make_layer("generalizedbatchnorm", gbn("quantile", {{"level", "0.5"}})),
                       HasSubstr(m + "option level must be a number, got \"0.5\""));
  EXPECT_NORMLAB_ERROR(make_layer("generalizedbatchnorm", gbn("mean", {{"momentum", nullptr}})),
                       HasSubstr(m + "momentum must be in [0, 1], got null"));
  EXPECT_NORMLAB_ERROR(make_layer("generalizedbatchnorm", gbn("mean", {{"momentum", 2}})),
                       HasSubstr(m + "momentum must be in [0, 1], got 2"));
  EXPECT_NORMLAB_ERROR(make_layer("generalizedbatchnorm", gbn("mean", {{"alpha", 0.5}})),
                       HasSubstr(m + "unknown option 'alpha' (known: channels, center, deviation, "
                                 "level, eps, momentum, affine)"));
  EXPECT_NORMLAB_ERROR(make_layer("generalizedbatchnorm", {{"channels", 0}}),
                       HasSubstr(m + "channels must be a positive integer, got 0"));
  // Shapes: rank >= 2, channels, more than one value per channel in training.
  auto l = make_layer("generalizedbatchnorm", {{"channels", 3}});
  EXPECT_NORMLAB_ERROR(forward(*l, std::vector<float>(3, 1.0f), {3}, true),
                       HasSubstr(m + "input shape [3] must have at least 2 dims [N,C,...]"));
  EXPECT_NORMLAB_ERROR(forward(*l, std::vector<float>(8, 1.0f), {2, 4}, true),
                       HasSubstr(m + "input shape [2,4] has 4 channels (dim 1), layer has 3"));
  EXPECT_NORMLAB_ERROR(forward(*l, std::vector<float>(3, 1.0f), {1, 3}, true),
                       HasSubstr(m + "expected more than 1 value per channel when using batch statistics"));
  EXPECT_NO_THROW(forward(*l, std::vector<float>(3, 1.0f), {1, 3}, false));
  // State domain.
  EXPECT_NORMLAB_ERROR(set_state(*l, "runningDeviation", {1, -1, 1}),
                       HasSubstr(m + "runningDeviation[1] must be >= 0, got -1"));
  EXPECT_NO_THROW(set_state(*l, "runningCenter", {-5, 0, 5}));
}

TEST(GeneralizedBatchNorm, PopulationStatistics) {
  const Shape s = {4, 3, 5};
  const std::vector<float> x = channel_input(s, 6);
  auto l = make_layer("generalizedbatchnorm", gbn("quantile", {{"level", 0.8}}));
  ASSERT_TRUE(l->set_population_statistics(x.data(), s));
  std::vector<double> c(3), d(3);
  std::vector<int64_t> sel(3);
  normlab::gbn_statistics(c.data(), d.data(), sel.data(), x.data(),
                          normlab::GbnPair::kQuantileSuperquantile, 0.8, 4, 3, 5);
  EXPECT_CLOSE("runningCenter", state_value(*l, "runningCenter"), c, 0, 1e-7);
  EXPECT_CLOSE("runningDeviation", state_value(*l, "runningDeviation"), d, 1e-7, 1e-6);
}

TEST(GeneralizedBatchNorm, MakeNormModuleFillsChannels) {
  auto g = normlab::make_norm_module("generalizedbatchnorm", {{"center", "median"}}, {1, 16});
  EXPECT_EQ(normlab::layer_options(g->layer())["channels"], 16);
}

// Labels name the pair (and the level of a quantile); ids count only their own method ("sn" in
// between does not take "gbn-2").
TEST(GeneralizedBatchNorm, RunnerLabelsAndIds) {
  const json config = {
      {"methods",
       {"gbn", "sn",
        {{"method", "gbn"}, {"options", {{"deviation", "mad"}}}},
        {{"method", "generalizedbatchnorm"}, {"options", {{"center", "quantile"}, {"level", 0.3}}}}}}};
  expect_run_methods(config, {{"generalizedbatchnorm", "gbn", "Generalized BN (mean/std)"},
                              {"", "", ""},
                              {"", "gbn-2", "Generalized BN (median/MAD)"},
                              {"", "", "Generalized BN (quantile/superquantile, level 0.3)"}});
}

}  // namespace
}  // namespace normlab_test
