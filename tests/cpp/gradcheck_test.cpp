// Central finite-difference gradient checks of every method's backward (dx, dgamma, dbeta) over a
// sweep of shapes and options. Loss L = sum_i w_i * y_i with fixed random w (mean 0.5, so the
// mean terms of the backward matter), accumulated in double from the float32 outputs.
//
// Finite differences (FiniteDifference in test_util.h, shared with survey_gradcheck_test.cpp and
// survey_b_gradcheck_test.cpp): for each scalar input v (an element of x, gamma or beta) with step h,
//   g(h) = (L(v+h) - L(v-h)) / ((v+h) - (v-h))     (denominator: the float32 steps actually taken)
//   fd   = (4 g(h) - g(2h)) / 3                     (Richardson: truncation error O(h^4))
// with h = 1e-2: inputs and params have scale ~1, and every statistics group of more than one
// value is drawn with std >= 0.25 (h must be small against the spread, or rstd changes within a
// step). The noise is float32 rounding of y: ~1e-7 per element, summed over <= 180 elements and
// divided by 2h, i.e. a few 1e-5; the truncation error after Richardson is smaller still.
// Measured max |analytic - fd| over the whole sweep: 2.7e-4 (NORMLAB_TEST_VERBOSE=1 prints it per
// configuration), so the tolerance, with ~7x headroom, is
//   |analytic - fd| <= 2e-3 + 2e-3 * |fd|.
// A wrong formula is off by far more: dropping the mean term of the backward changes dx by
// rstd * r * mean_group(w * gamma) ~ 0.5 * gamma * rstd (w has mean 0.5), measured >= 0.06 over
// the sweep. Every configuration asserts this explicitly: the analytic dx with that term dropped
// must FAIL the same check, and by more than 10x the absolute tolerance.
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "test_util.h"

namespace normlab_test {
namespace {

constexpr double kH = 1e-2;
constexpr double kAtol = 2e-3;
constexpr double kRtol = 2e-3;

enum class Expect { kMatch, kDifferInDx };

struct GradConfig {
  std::string name;
  std::string method;
  json options;
  Shape shape;
  std::vector<float> running_mean, running_std;  // Batch Renorm state to set (if non-empty)
  Expect expect = Expect::kMatch;
  uint64_t seed = 1;
};

void PrintTo(const GradConfig& c, std::ostream* os) { *os << c.name; }

GradConfig cfg(std::string name, std::string method, json options, Shape shape) {
  GradConfig c;
  c.name = std::move(name);
  c.method = std::move(method);
  c.options = std::move(options);
  c.shape = std::move(shape);
  return c;
}

std::string eps_tag(double eps) { return eps == 1e-5 ? "eps1e_5" : eps == 0.5 ? "eps0_5" : "eps"; }

std::vector<GradConfig> configs() {
  std::vector<GradConfig> out;
  uint64_t seed = 1000;
  auto add = [&](GradConfig c) {
    c.seed = ++seed;
    out.push_back(std::move(c));
  };
  const std::vector<Shape> shapes3 = {{2, 3}, {2, 3, 5}, {2, 3, 3, 5}};

  // BatchNorm: every shape, affine on/off, small and large eps (eps=0.5 is comparable to the
  // variance, so an eps misplaced in the backward shows).
  for (const Shape& s : shapes3)
    for (bool affine : {true, false})
      for (double eps : {1e-5, 0.5})
        add(cfg("batchnorm_" + shape_tag(s) + (affine ? "_affine_" : "_noaffine_") + eps_tag(eps),
             "batchnorm", {{"channels", 3}, {"eps", eps}, {"affine", affine}}, s));

  // Batch Renorm (a): rMax = 1, dMax = 0, so r = 1 and d = 0 whatever x is.
  for (const Shape& s : shapes3)
    for (bool affine : {true, false})
      add(cfg("batchrenorm_r1d0_" + shape_tag(s) + (affine ? "_affine" : "_noaffine"), "batchrenorm",
           {{"channels", 3}, {"rMax", 1}, {"dMax", 0}, {"momentum", 0}, {"affine", affine}}, s));
  add(cfg("batchrenorm_r1d0_2x3x5_affine_eps0_5", "batchrenorm",
       {{"channels", 3}, {"rMax", 1}, {"dMax", 0}, {"momentum", 0}, {"eps", 0.5}}, {2, 3, 5}));

  // Batch Renorm (b): r clipped (at rMax or 1/rMax) and d clipped (at +dMax or -dMax) in every
  // channel, by a running state far from the batch statistics; momentum 0 keeps it fixed across
  // the finite-difference forwards, so r and d are locally constant and backward is exact.
  //   ch0: std 1e-3, mean -1e4 -> r = rMax,   d = +dMax
  //   ch1: std 1e3,  mean 1e5  -> r = 1/rMax, d = -dMax
  //   ch2: std 1e-2, mean 50   -> r = rMax,   d = -dMax
  for (const Shape& s : shapes3)
    for (bool affine : {true, false}) {
      GradConfig c = cfg("batchrenorm_clipped_" + shape_tag(s) + (affine ? "_affine" : "_noaffine"),
                   "batchrenorm",
                   {{"channels", 3}, {"rMax", 2}, {"dMax", 0.5}, {"momentum", 0}, {"affine", affine}},
                   s);
      c.running_mean = {-1e4f, 1e5f, 50.0f};
      c.running_std = {1e-3f, 1e3f, 1e-2f};
      add(std::move(c));
    }

  // Batch Renorm (c): r and d strictly inside their limits. The true derivative includes r's and
  // d's dependence on x (the forward is then exactly gamma*(x - mu)/sigma + beta), which the
  // paper's backward deliberately drops, so the analytic dx must differ from the finite difference
  // (while dgamma and dbeta, which r and d do not depend on, still match).
  for (const Shape& s : std::vector<Shape>{{2, 3, 5}, {2, 3, 3, 5}}) {
    GradConfig c = cfg("batchrenorm_unclipped_differs_" + shape_tag(s), "batchrenorm",
                 {{"channels", 3}, {"rMax", 3}, {"dMax", 5}, {"momentum", 0}}, s);
    c.running_mean = {0.2f, -0.3f, 0.1f};
    c.running_std = {1.3f, 0.9f, 1.1f};
    c.expect = Expect::kDifferInDx;
    add(std::move(c));
  }

  // LayerNorm over 1, 2 and 3 trailing dims.
  const std::vector<std::pair<Shape, std::vector<int64_t>>> ln = {
      {{2, 3}, {3}},          {{2, 3, 5}, {5}},       {{2, 3, 5}, {3, 5}},
      {{2, 3, 3, 5}, {5}},    {{2, 3, 3, 5}, {3, 5}}, {{2, 3, 3, 5}, {3, 3, 5}}};
  for (const auto& [s, ns] : ln)
    for (bool affine : {true, false})
      add(cfg("layernorm_" + shape_tag(s) + "_ns" + shape_tag(ns) + (affine ? "_affine" : "_noaffine"),
           "layernorm", {{"normalizedShape", ns}, {"affine", affine}}, s));
  add(cfg("layernorm_2x3x5_ns3x5_affine_eps0_5", "layernorm",
       {{"normalizedShape", {3, 5}}, {"eps", 0.5}}, {2, 3, 5}));

  // GroupNorm with C = 6: groups 1, 2, 3 and 6 (= C).
  const std::vector<Shape> shapes6 = {{2, 6}, {2, 6, 5}, {2, 6, 3, 5}};
  for (const Shape& s : shapes6)
    for (int g : {1, 2, 3, 6})
      add(cfg("groupnorm_" + shape_tag(s) + "_g" + std::to_string(g), "groupnorm",
           {{"channels", 6}, {"groups", g}}, s));
  for (const Shape& s : shapes6)
    add(cfg("groupnorm_" + shape_tag(s) + "_g2_noaffine", "groupnorm",
         {{"channels", 6}, {"groups", 2}, {"affine", false}}, s));
  add(cfg("groupnorm_2x6x5_g3_eps0_5", "groupnorm", {{"channels", 6}, {"groups", 3}, {"eps", 0.5}},
       {2, 6, 5}));

  // InstanceNorm (rank >= 3).
  for (const Shape& s : std::vector<Shape>{{2, 3, 5}, {2, 3, 3, 5}})
    for (bool affine : {true, false})
      for (double eps : {1e-5, 0.5})
        add(cfg("instancenorm_" + shape_tag(s) + (affine ? "_affine_" : "_noaffine_") + eps_tag(eps),
             "instancenorm", {{"channels", 3}, {"eps", eps}, {"affine", affine}}, s));
  return out;
}

// The statistics group of each element and the index of the gamma it is scaled by (to build the
// "mean term dropped" variant of dx independently of the core).
struct Grouping {
  std::vector<int64_t> group;  // per element
  std::vector<int64_t> pidx;   // per element: index into gamma
  int64_t groups = 0;
};

Grouping grouping(const GradConfig& c) {
  const Shape& s = c.shape;
  const int64_t n = numel(s), N = s[0], C = s[1], S = n / (N * C);
  Grouping g;
  g.group.resize(n);
  g.pidx.resize(n);
  for (int64_t e = 0; e < n; ++e) {
    const int64_t ni = e / (C * S), ci = (e / S) % C;
    if (c.method == "batchnorm" || c.method == "batchrenorm") {
      g.group[e] = ci;
      g.pidx[e] = ci;
      g.groups = C;
    } else if (c.method == "instancenorm") {
      g.group[e] = ni * C + ci;
      g.pidx[e] = ci;
      g.groups = N * C;
    } else if (c.method == "groupnorm") {
      const int64_t G = c.options["groups"].get<int64_t>();
      g.group[e] = ni * G + ci / (C / G);
      g.pidx[e] = ci;
      g.groups = N * G;
    } else {  // layernorm
      int64_t M = 1;
      for (const json& d : c.options["normalizedShape"]) M *= d.get<int64_t>();
      g.group[e] = e / M;
      g.pidx[e] = e % M;
      g.groups = n / M;
    }
  }
  return g;
}

// Smallest standard deviation over the statistics groups that have more than one element.
double min_group_std(const Grouping& g, const std::vector<float>& x) {
  std::vector<double> sum(g.groups, 0), sq(g.groups, 0), cnt(g.groups, 0);
  for (size_t e = 0; e < x.size(); ++e) {
    sum[g.group[e]] += x[e];
    cnt[g.group[e]] += 1;
  }
  for (size_t e = 0; e < x.size(); ++e) {
    const double m = sum[g.group[e]] / cnt[g.group[e]];
    sq[g.group[e]] += (x[e] - m) * (x[e] - m);
  }
  double lo = INFINITY;
  for (int64_t k = 0; k < g.groups; ++k) {
    if (cnt[k] > 1) lo = std::min(lo, std::sqrt(sq[k] / cnt[k]));
  }
  return lo;
}

class GradCheck : public ::testing::TestWithParam<GradConfig> {
 protected:
  void SetUp() override {
    const GradConfig& c = GetParam();
    layer_ = make_layer(c.method, c.options);
    Rng rng(c.seed);
    const Shape& s = c.shape;
    const int64_t n = numel(s), C = s[1], S = n / (s[0] * C);
    // Per-channel offset in [-1, 1] and scale in [0.5, 2].
    std::vector<double> off(C), scl(C);
    for (int64_t ch = 0; ch < C; ++ch) {
      off[ch] = 2 * rng.uniform() - 1;
      scl[ch] = 0.5 + 1.5 * rng.uniform();
    }
    // Finite differences need h well below the spread of every statistics group (a group of two
    // values 0.003 apart has a rstd that changes completely over a step of 1e-2), so redraw the
    // input until each group of more than one value has std >= 0.25.
    const Grouping g = grouping(c);
    x_.resize(n);
    for (int attempt = 0;; ++attempt) {
      ASSERT_LT(attempt, 100) << "could not draw a well-spread input";
      for (int64_t e = 0; e < n; ++e) {
        const int64_t ch = (e / S) % C;
        x_[e] = static_cast<float>(off[ch] + scl[ch] * rng.normal());
      }
      if (min_group_std(g, x_) >= 0.25) break;
    }
    w_ = rng.normals(n, 0.5, 1.0);
    if (!layer_->params().empty()) {
      const size_t P = layer_->params()[0].value.size();
      gamma_ = rng.normals(P, 1.0, 0.5);
      beta_ = rng.normals(P, 0.0, 0.3);
      set_param(*layer_, "gamma", gamma_);
      set_param(*layer_, "beta", beta_);
    } else {
      gamma_.assign(c.method == "layernorm" ? static_cast<size_t>(n / grouping(c).groups)
                                            : static_cast<size_t>(C),
                    1.0f);
    }
    if (!c.running_mean.empty()) {
      set_state(*layer_, "runningMean", c.running_mean);
      set_state(*layer_, "runningStd", c.running_std);
    }
  }

  // Finite differences of L = sum w*y of one training forward at x_ (test_util.h), step kH.
  FiniteDifference fd() { return {*layer_, GetParam().shape, x_, w_, kH}; }

  std::unique_ptr<NormLayer> layer_;
  std::vector<float> x_, w_, gamma_, beta_;
};

TEST_P(GradCheck, AnalyticMatchesFiniteDifference) {
  const GradConfig& c = GetParam();
  // Analytic gradients at x (the running state is fixed: momentum 0 for Batch Renorm; BatchNorm's
  // training output does not depend on its running state).
  forward(*layer_, x_, c.shape, true);
  const std::vector<float> dx = backward(*layer_, w_);
  std::vector<float> dgamma, dbeta, r, d;
  if (!layer_->params().empty()) {
    dgamma = param_grad(*layer_, "gamma");
    dbeta = param_grad(*layer_, "beta");
  }
  if (c.method == "batchrenorm") {
    r = as_brn(*layer_).last_r();
    d = as_brn(*layer_).last_d();
  }

  // Batch Renorm: confirm the regime the configuration is meant to exercise.
  if (c.method == "batchrenorm") {
    const double r_max = c.options["rMax"].get<double>(), d_max = c.options["dMax"].get<double>();
    for (size_t ch = 0; ch < r.size(); ++ch) {
      SCOPED_TRACE("channel " + std::to_string(ch));
      if (r_max == 1 && d_max == 0) {
        EXPECT_EQ(r[ch], 1.0f);
        EXPECT_EQ(d[ch], 0.0f);
      } else if (c.expect == Expect::kMatch) {  // (b): clipped everywhere
        EXPECT_TRUE(r[ch] == static_cast<float>(r_max) || r[ch] == static_cast<float>(1 / r_max)) << r[ch];
        EXPECT_EQ(std::fabs(d[ch]), static_cast<float>(d_max));
      } else {  // (c): well inside the limits, so h-sized moves of x cannot reach a clip
        EXPECT_GT(r[ch], 1.2 / r_max);
        EXPECT_LT(r[ch], r_max / 1.2);
        EXPECT_LT(std::fabs(d[ch]), 0.8 * d_max);
      }
    }
  }

  const std::vector<double> gx = fd().dx();
  if (c.expect == Expect::kMatch) {
    EXPECT_CLOSE("dx", dx, gx, kAtol, kRtol);
  } else {
    // (c) The analytic (paper) gradient is not the true derivative...
    EXPECT_FALSE(check_close("dx", dx, gx, kAtol, kRtol));
    EXPECT_GT(max_abs_diff(dx, gx), 50 * kAtol);
    // ... which is exactly the inference-mode map's: dL/dx = w * gamma / runningStd.
    std::vector<double> want(dx.size());
    const int64_t C = c.shape[1], S = numel(c.shape) / (c.shape[0] * C);
    for (size_t e = 0; e < want.size(); ++e) {
      const int64_t ch = (static_cast<int64_t>(e) / S) % C;
      want[e] = static_cast<double>(w_[e]) * gamma_[ch] / c.running_std[ch];
    }
    EXPECT_CLOSE("finite difference vs w*gamma/sigma", gx, want, kAtol, kRtol);
  }
  if (!dgamma.empty()) {
    EXPECT_CLOSE("dgamma", dgamma, fd().dparam("gamma"), kAtol, kRtol);
    EXPECT_CLOSE("dbeta", dbeta, fd().dparam("beta"), kAtol, kRtol);
  }

  // The tolerance catches a wrong formula: dx with the mean term dropped, i.e. dx + rstd * r *
  // mean_group(w * gamma), must fail it (by far: require > 10x the absolute tolerance).
  if (c.expect == Expect::kMatch) {
    const Grouping g = grouping(c);
    std::vector<double> sum(g.groups, 0), sq(g.groups, 0), wg(g.groups, 0), cnt(g.groups, 0);
    for (size_t e = 0; e < x_.size(); ++e) {
      sum[g.group[e]] += x_[e];
      wg[g.group[e]] += static_cast<double>(w_[e]) * gamma_[g.pidx[e]];
      cnt[g.group[e]] += 1;
    }
    for (size_t e = 0; e < x_.size(); ++e) {
      const double m = sum[g.group[e]] / cnt[g.group[e]];
      sq[g.group[e]] += (x_[e] - m) * (x_[e] - m);
    }
    const double eps = c.options.value("eps", 1e-5);
    std::vector<double> wrong(dx.size());
    for (size_t e = 0; e < dx.size(); ++e) {
      const int64_t k = g.group[e];
      const double rstd = 1 / std::sqrt(sq[k] / cnt[k] + eps);
      const double rr = r.empty() ? 1.0 : r[g.pidx[e]];
      wrong[e] = dx[e] + rstd * rr * wg[k] / cnt[k];
    }
    EXPECT_FALSE(check_close("dx with the mean term dropped", wrong, gx, kAtol, kRtol));
    EXPECT_GT(max_abs_diff(wrong, gx), 10 * kAtol) << "the tolerance would not catch a dropped mean term";
    if (verbose()) {
      std::printf("%-50s mean-term-dropped maxdiff %.3e\n", c.name.c_str(), max_abs_diff(wrong, gx));
    }
  }
  if (verbose()) {
    std::printf("%-50s dx maxdiff %.3e", c.name.c_str(), max_abs_diff(dx, gx));
    if (!dgamma.empty()) {
      std::printf("  dgamma %.3e  dbeta %.3e", max_abs_diff(dgamma, fd().dparam("gamma")),
                  max_abs_diff(dbeta, fd().dparam("beta")));
    }
    std::printf("\n");
  }
}

INSTANTIATE_TEST_SUITE_P(Sweep, GradCheck, ::testing::ValuesIn(configs()), ParamName());

}  // namespace
}  // namespace normlab_test
