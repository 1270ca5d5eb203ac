// Finite-difference gradient checks of LRN, RMSNorm, FRN + TLU and L1-norm BatchNorm: dx and the
// gradient of every parameter (gamma, beta, FRN's tau and learned eps), over a sweep of shapes and
// options. Same scheme as gradcheck_test.cpp: L = sum_i w_i * y_i with fixed random w (mean 0.5),
// central differences with h = 1e-2 and Richardson extrapolation,
//   |analytic - fd| <= 2e-3 + 2e-3 * |fd|.
//
// Two of these maps have kinks, where the derivative is not defined and finite differences straddle
// it: FRN's TLU max(y, tau) and L1BN's |x - mu|. The inputs are drawn away from them: every y is at
// least 0.1 from its tau, and every x at least 0.05 from its channel mean (a step of h moves y by
// about gamma*rstd*h and x - mu by about h, well inside those margins). The kinks themselves are
// tested exactly against PyTorch (fixtures: FRN's ties; tests/cpp/survey_test.cpp).
//
// Measured max |analytic - fd| over the sweep: 2.2e-4 (NORMLAB_TEST_VERBOSE=1 prints it per
// configuration and gradient). That a wrong backward fails this tolerance is shown in
// survey_test.cpp (L1BN without mu's dependence inside s, FRN's gradient without the rstd term).
#include <cmath>
#include <string>
#include <vector>

#include "test_util.h"

namespace normlab_test {
namespace {

constexpr double kH = 1e-2;
constexpr double kAtol = 2e-3;
constexpr double kRtol = 2e-3;

struct GradConfig {
  std::string name;
  std::string method;
  json options;
  Shape shape;
  double eps_l = 0;  // FRN learnableEps: the parameter's value
  uint64_t seed = 1;
};

void PrintTo(const GradConfig& c, std::ostream* os) { *os << c.name; }

std::vector<GradConfig> configs() {
  std::vector<GradConfig> out;
  uint64_t seed = 5000;
  auto add = [&](std::string name, std::string method, json options, Shape shape, double eps_l = 0) {
    out.push_back({std::move(name), std::move(method), std::move(options), std::move(shape), eps_l, ++seed});
  };

  // LRN: odd and even windows, a window wider than C, both alpha scalings, large alpha so the
  // normalization is far from the identity.
  for (const Shape& s : std::vector<Shape>{{2, 5, 4}, {2, 6, 3, 3}, {2, 4, 2, 2, 2}})
    for (int size : {1, 2, 3, 5, 9})
      add("lrn_" + shape_tag(s) + "_size" + std::to_string(size), "lrn",
          {{"size", size}, {"alpha", 0.5}, {"beta", 0.75}, {"k", 1.0}}, s);
  add("lrn_2x5x4_size3_none_k2", "lrn",
      {{"size", 3}, {"alpha", 0.3}, {"beta", 0.6}, {"k", 2.0}, {"alphaScaling", "none"}}, {2, 5, 4});
  add("lrn_2x5x4_size4_beta1_5", "lrn", {{"size", 4}, {"alpha", 1.0}, {"beta", 1.5}}, {2, 5, 4});

  // RMSNorm over 1, 2 and 3 trailing dims, affine on/off, small and large eps.
  const std::vector<std::pair<Shape, std::vector<int64_t>>> rms = {
      {{2, 3}, {3}}, {{2, 3, 5}, {5}}, {{2, 3, 5}, {3, 5}}, {{2, 3, 3, 5}, {3, 5}}, {{2, 3, 3, 5}, {3, 3, 5}}};
  for (const auto& [s, ns] : rms)
    for (bool affine : {true, false})
      add("rmsnorm_" + shape_tag(s) + "_ns" + shape_tag(ns) + (affine ? "_affine" : "_noaffine"), "rmsnorm",
          {{"normalizedShape", ns}, {"affine", affine}}, s);
  add("rmsnorm_2x3x5_ns5_eps0_5", "rmsnorm", {{"normalizedShape", {5}}, {"eps", 0.5}}, {2, 3, 5});

  // FRN + TLU: with spatial dims, constant eps (small, large); learned eps of either sign,
  // including [N,C] and 1x1 maps, where only a learned eps makes FRN usable.
  for (const Shape& s : std::vector<Shape>{{2, 3, 5}, {2, 3, 3, 5}})
    for (double eps : {1e-6, 0.5})
      add("frn_" + shape_tag(s) + (eps == 0.5 ? "_eps0_5" : "_eps1e_6"), "frn", {{"channels", 3}, {"eps", eps}}, s);
  for (const Shape& s : std::vector<Shape>{{4, 3}, {2, 3, 1, 1}, {2, 3, 5}, {2, 3, 3, 5}})
    for (double eps_l : {0.3, -0.2})
      add("frn_" + shape_tag(s) + "_learnable_eps" + (eps_l > 0 ? "_pos" : "_neg"), "frn",
          {{"channels", 3}, {"learnableEps", true}}, s, eps_l);

  // L1BN: every shape, the sqrt(pi/2) factor on/off, affine on/off, small and large eps.
  for (const Shape& s : std::vector<Shape>{{4, 3}, {2, 3, 5}, {2, 3, 3, 5}})
    for (bool k : {true, false})
      for (bool affine : {true, false})
        add("l1batchnorm_" + shape_tag(s) + (k ? "_sqrtpi2" : "_k1") + (affine ? "_affine" : "_noaffine"),
            "l1batchnorm", {{"channels", 3}, {"scaleSqrtPiOver2", k}, {"affine", affine}}, s);
  add("l1batchnorm_2x3x5_eps0_5", "l1batchnorm", {{"channels", 3}, {"eps", 0.5}}, {2, 3, 5});
  return out;
}

class SurveyGradCheck : public ::testing::TestWithParam<GradConfig> {
 protected:
  void SetUp() override {
    const GradConfig& c = GetParam();
    layer_ = make_layer(c.method, c.options);
    Rng rng(c.seed);
    const Shape& s = c.shape;
    const int64_t n = numel(s), N = s[0], C = s[1], S = n / (N * C);
    w_ = rng.normals(n, 0.5, 1.0);
    for (normlab::Param& p : layer_->params()) {
      std::vector<float> v;
      if (p.name == "gamma") v = rng.normals(p.value.size(), 1.0, 0.5);
      if (p.name == "beta") v = rng.normals(p.value.size(), 0.0, 0.3);
      if (p.name == "tau") v = rng.normals(p.value.size(), 0.0, 0.5);
      if (p.name == "eps") v = {static_cast<float>(c.eps_l)};
      ASSERT_FALSE(v.empty()) << "no test values for parameter " << p.name;
      set_param(*layer_, p.name, v);
    }
    // Inputs: per-channel offset in [-1, 1] and scale in [0.5, 2]; redrawn until away from kinks.
    std::vector<double> off(C), scl(C);
    for (int64_t ch = 0; ch < C; ++ch) {
      off[ch] = 2 * rng.uniform() - 1;
      scl[ch] = 0.5 + 1.5 * rng.uniform();
    }
    x_.resize(n);
    for (int64_t e = 0; e < n; ++e) x_[e] = static_cast<float>(off[(e / S) % C] + scl[(e / S) % C] * rng.normal());
    // Redraw the elements too close to a kink until none is (each redraw moves the statistics a
    // little, so this iterates).
    for (int attempt = 0;; ++attempt) {
      ASSERT_LT(attempt, 1000) << "could not draw an input away from the kinks";
      const std::vector<int64_t> bad = near_kinks(N, C, S);
      if (bad.empty()) break;
      for (int64_t e : bad) x_[e] = static_cast<float>(off[(e / S) % C] + scl[(e / S) % C] * rng.normal());
    }
  }

  // Elements of x_ within the margin of a kink (for FRN also all of them when the TLU is inactive
  // or active everywhere, so that both sides are exercised).
  std::vector<int64_t> near_kinks(int64_t N, int64_t C, int64_t S) {
    std::vector<int64_t> bad;
    const GradConfig& c = GetParam();
    if (c.method == "l1batchnorm") {
      for (int64_t ch = 0; ch < C; ++ch) {
        double m = 0;
        for (int64_t nn = 0; nn < N; ++nn)
          for (int64_t s = 0; s < S; ++s) m += x_[(nn * C + ch) * S + s];
        m /= static_cast<double>(N * S);
        for (int64_t nn = 0; nn < N; ++nn)
          for (int64_t s = 0; s < S; ++s)
            if (std::fabs(x_[(nn * C + ch) * S + s] - m) < 0.05) bad.push_back((nn * C + ch) * S + s);
      }
    }
    if (c.method == "frn") {
      // y without the TLU: tau far below everything gives max(y, tau) = y.
      auto probe = make_layer("frn", c.options);
      for (const normlab::Param& p : layer_->params()) {
        std::vector<float> v = p.value;
        if (p.name == "tau") v.assign(v.size(), -1e30f);
        set_param(*probe, p.name, v);
      }
      const std::vector<float> y = forward(*probe, x_, c.shape, true);
      const std::vector<float> tau = param_value(*layer_, "tau");
      size_t above = 0;
      for (size_t e = 0; e < y.size(); ++e) {
        const float t = tau[(static_cast<int64_t>(e) / S) % C];
        if (std::fabs(y[e] - t) < 0.1) bad.push_back(static_cast<int64_t>(e));
        above += y[e] > t;
      }
      if (above == 0 || above == y.size()) {  // both sides of the TLU must be exercised
        for (size_t e = 0; e < y.size(); ++e) bad.push_back(static_cast<int64_t>(e));
      }
    }
    return bad;
  }

  // Finite differences of L = sum w*y of one training forward at x_ (test_util.h), step kH.
  FiniteDifference fd() { return {*layer_, GetParam().shape, x_, w_, kH}; }

  std::unique_ptr<NormLayer> layer_;
  std::vector<float> x_, w_;
};

TEST_P(SurveyGradCheck, AnalyticMatchesFiniteDifference) {
  const GradConfig& c = GetParam();
  forward(*layer_, x_, c.shape, true);
  const std::vector<float> dx = backward(*layer_, w_);
  std::vector<std::pair<std::string, std::vector<float>>> grads;
  for (const normlab::Param& p : layer_->params()) grads.emplace_back(p.name, p.grad);

  const std::vector<double> gx = fd().dx();
  EXPECT_CLOSE("dx", dx, gx, kAtol, kRtol);

  for (const auto& [name, analytic] : grads) {
    const std::vector<double> g = fd().dparam(name);
    EXPECT_CLOSE("d" + name, analytic, g, kAtol, kRtol);
    if (verbose()) std::printf("%-45s d%-6s maxdiff %.3e\n", c.name.c_str(), name.c_str(), max_abs_diff(analytic, g));
  }
  if (verbose()) std::printf("%-45s dx     maxdiff %.3e\n", c.name.c_str(), max_abs_diff(dx, gx));

}

INSTANTIATE_TEST_SUITE_P(Sweep, SurveyGradCheck, ::testing::ValuesIn(configs()), ParamName());

}  // namespace
}  // namespace normlab_test
