// Finite-difference gradient checks of every normalization method's backward, from one table of
// cases (as ggml's tests/test-backend-ops.cpp): cases() sweeps each method of the method table over
// shapes and options, every case carries its step and tolerance, and a test fails when a method of
// norm_methods() has no case, so adding a method means adding its sweep here.
//
// Each case checks dx and the gradient of every parameter (gamma, beta, FRN's tau and learned eps,
// Switchable Norm's meanWeight/varWeight through the softmax) of one training forward. Loss
// L = sum_i w_i * y_i with fixed random w (mean 0.5, so the mean terms of the backward matter),
// accumulated in double from the float32 outputs. Finite differences (FiniteDifference in
// test_util.h): for each scalar input v (an element of x or of a parameter) with step h,
//   g(h) = (L(v+h) - L(v-h)) / ((v+h) - (v-h))     (denominator: the float32 steps actually taken)
//   fd   = (4 g(h) - g(2h)) / 3                     (Richardson: truncation error O(h^4))
// with h = 1e-2: inputs and params have scale ~1, and each input is drawn so that a step of h
// is small against the spread of its statistics, crosses no kink and reorders no values (how
// depends on the method: Draw, subjects()). The noise is float32 rounding of y: ~1e-7 per
// element, summed over <= 180 elements and divided by 2h, i.e. a few 1e-5; the truncation error
// after Richardson is smaller still. The tolerance of every case is
//   |analytic - fd| <= 2e-3 + 2e-3 * |fd|.
// Measured max |analytic - fd| (NORMLAB_TEST_VERBOSE=1 prints it per case and gradient): 2.7e-4
// for every method but Generalized BN, ~7x inside the tolerance; Generalized BN at level 0.05 (a
// deviation from the few largest values, so large gradients) reaches 2.2e-3, inside it through
// the rtol term.
//
// The tolerance is also shown to catch a wrong backward: for BatchNorm, Batch Renorm, LayerNorm,
// GroupNorm and InstanceNorm the analytic dx with the mean term dropped must fail it; for
// Generalized BN and Switchable Norm the dx with the statistics held constant must. L1 BN's
// backward without mu's dependence inside s is shown to fail in methods/l1batchnorm_test.cpp;
// LRN, RMSNorm and FRN have no such check yet.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "normlab/norm/generalizedbatchnorm.h"
#include "normlab/norm/switchablenorm.h"
#include "test_util.h"

namespace normlab_test {
namespace {

// ---- the case table ---------------------------------------------------------------------------

struct Case {
  std::string name;
  std::string method;
  json options;
  Shape shape;
  uint64_t seed = 1;
  // Finite-difference step and tolerance: |analytic - fd| <= atol + rtol * |fd|.
  double h = 1e-2, atol = 2e-3, rtol = 2e-3;
  // Batch Renorm: running state to set (if non-empty), which decides r and d; and whether the
  // analytic dx is the true derivative (r and d clipped or fixed) or, inside the limits, the
  // paper's gradient, which is not.
  std::vector<float> running_mean, running_std;
  bool dx_is_true_derivative = true;
  double learned_eps = 0;  // FRN learnableEps: the parameter's value
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::string eps_tag(double eps) { return eps == 1e-5 ? "eps1e_5" : eps == 0.5 ? "eps0_5" : "eps"; }

// Every case, method by method in the method table's order. Seeds are numbered per block as the
// cases had them in the files this table replaces, so each case draws the same input as before.
std::vector<Case> cases() {
  std::vector<Case> out;
  uint64_t seed = 0;
  auto add = [&](std::string name, std::string method, json options, Shape shape) -> Case& {
    Case c;
    c.name = std::move(name);
    c.method = std::move(method);
    c.options = std::move(options);
    c.shape = std::move(shape);
    c.seed = ++seed;
    out.push_back(std::move(c));
    return out.back();
  };
  const std::vector<Shape> shapes3 = {{2, 3}, {2, 3, 5}, {2, 3, 3, 5}};

  seed = 1000;
  // BatchNorm: every shape, affine on/off, small and large eps (eps=0.5 is comparable to the
  // variance, so an eps misplaced in the backward shows).
  for (const Shape& s : shapes3)
    for (bool affine : {true, false})
      for (double eps : {1e-5, 0.5})
        add("batchnorm_" + shape_tag(s) + (affine ? "_affine_" : "_noaffine_") + eps_tag(eps),
            "batchnorm", {{"channels", 3}, {"eps", eps}, {"affine", affine}}, s);

  // Batch Renorm (a): rMax = 1, dMax = 0, so r = 1 and d = 0 whatever x is.
  for (const Shape& s : shapes3)
    for (bool affine : {true, false})
      add("batchrenorm_r1d0_" + shape_tag(s) + (affine ? "_affine" : "_noaffine"), "batchrenorm",
          {{"channels", 3}, {"rMax", 1}, {"dMax", 0}, {"momentum", 0}, {"affine", affine}}, s);
  add("batchrenorm_r1d0_2x3x5_affine_eps0_5", "batchrenorm",
      {{"channels", 3}, {"rMax", 1}, {"dMax", 0}, {"momentum", 0}, {"eps", 0.5}}, {2, 3, 5});

  // Batch Renorm (b): r clipped (at rMax or 1/rMax) and d clipped (at +dMax or -dMax) in every
  // channel, by a running state far from the batch statistics; momentum 0 keeps it fixed across
  // the finite-difference forwards, so r and d are locally constant and backward is exact.
  //   ch0: std 1e-3, mean -1e4 -> r = rMax,   d = +dMax
  //   ch1: std 1e3,  mean 1e5  -> r = 1/rMax, d = -dMax
  //   ch2: std 1e-2, mean 50   -> r = rMax,   d = -dMax
  for (const Shape& s : shapes3)
    for (bool affine : {true, false}) {
      Case& c = add("batchrenorm_clipped_" + shape_tag(s) + (affine ? "_affine" : "_noaffine"), "batchrenorm",
                    {{"channels", 3}, {"rMax", 2}, {"dMax", 0.5}, {"momentum", 0}, {"affine", affine}}, s);
      c.running_mean = {-1e4f, 1e5f, 50.0f};
      c.running_std = {1e-3f, 1e3f, 1e-2f};
    }

  // Batch Renorm (c): r and d strictly inside their limits. The true derivative includes r's and
  // d's dependence on x (the forward is then exactly gamma*(x - mu)/sigma + beta), which the
  // paper's backward deliberately drops, so the analytic dx must differ from the finite difference
  // (while dgamma and dbeta, which r and d do not depend on, still match).
  for (const Shape& s : std::vector<Shape>{{2, 3, 5}, {2, 3, 3, 5}}) {
    Case& c = add("batchrenorm_unclipped_differs_" + shape_tag(s), "batchrenorm",
                  {{"channels", 3}, {"rMax", 3}, {"dMax", 5}, {"momentum", 0}}, s);
    c.running_mean = {0.2f, -0.3f, 0.1f};
    c.running_std = {1.3f, 0.9f, 1.1f};
    c.dx_is_true_derivative = false;
  }

  // LayerNorm over 1, 2 and 3 trailing dims.
  const std::vector<std::pair<Shape, std::vector<int64_t>>> ln = {
      {{2, 3}, {3}},          {{2, 3, 5}, {5}},       {{2, 3, 5}, {3, 5}},
      {{2, 3, 3, 5}, {5}},    {{2, 3, 3, 5}, {3, 5}}, {{2, 3, 3, 5}, {3, 3, 5}}};
  for (const auto& [s, ns] : ln)
    for (bool affine : {true, false})
      add("layernorm_" + shape_tag(s) + "_ns" + shape_tag(ns) + (affine ? "_affine" : "_noaffine"),
          "layernorm", {{"normalizedShape", ns}, {"affine", affine}}, s);
  add("layernorm_2x3x5_ns3x5_affine_eps0_5", "layernorm", {{"normalizedShape", {3, 5}}, {"eps", 0.5}},
      {2, 3, 5});

  // GroupNorm with C = 6: groups 1, 2, 3 and 6 (= C).
  const std::vector<Shape> shapes6 = {{2, 6}, {2, 6, 5}, {2, 6, 3, 5}};
  for (const Shape& s : shapes6)
    for (int g : {1, 2, 3, 6})
      add("groupnorm_" + shape_tag(s) + "_g" + std::to_string(g), "groupnorm",
          {{"channels", 6}, {"groups", g}}, s);
  for (const Shape& s : shapes6)
    add("groupnorm_" + shape_tag(s) + "_g2_noaffine", "groupnorm",
        {{"channels", 6}, {"groups", 2}, {"affine", false}}, s);
  add("groupnorm_2x6x5_g3_eps0_5", "groupnorm", {{"channels", 6}, {"groups", 3}, {"eps", 0.5}}, {2, 6, 5});

  // InstanceNorm (rank >= 3).
  for (const Shape& s : std::vector<Shape>{{2, 3, 5}, {2, 3, 3, 5}})
    for (bool affine : {true, false})
      for (double eps : {1e-5, 0.5})
        add("instancenorm_" + shape_tag(s) + (affine ? "_affine_" : "_noaffine_") + eps_tag(eps),
            "instancenorm", {{"channels", 3}, {"eps", eps}, {"affine", affine}}, s);

  seed = 5000;
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
          {{"channels", 3}, {"learnableEps", true}}, s)
          .learned_eps = eps_l;

  // L1BN: every shape, the sqrt(pi/2) factor on/off, affine on/off, small and large eps.
  for (const Shape& s : std::vector<Shape>{{4, 3}, {2, 3, 5}, {2, 3, 3, 5}})
    for (bool k : {true, false})
      for (bool affine : {true, false})
        add("l1batchnorm_" + shape_tag(s) + (k ? "_sqrtpi2" : "_k1") + (affine ? "_affine" : "_noaffine"),
            "l1batchnorm", {{"channels", 3}, {"scaleSqrtPiOver2", k}, {"affine", affine}}, s);
  add("l1batchnorm_2x3x5_eps0_5", "l1batchnorm", {{"channels", 3}, {"eps", 0.5}}, {2, 3, 5});

  seed = 5000;
  // Generalized BN: each pair, levels for the quantile (alpha*M whole and fractional), shapes
  // with M = N*S of 6 (even), 10, 15 (odd) and 30.
  const std::vector<Shape> gbn_shapes = {{6, 3}, {2, 3, 5}, {1, 3, 3, 5}, {2, 3, 3, 5}};
  struct Pair {
    const char* center;
    double level;
    const char* tag;
  };
  const std::vector<Pair> pairs = {{"mean", 0.5, "mean_std"},
                                   {"median", 0.5, "median_mad"},
                                   {"quantile", 0.5, "quantile_0_5"},
                                   {"quantile", 0.3, "quantile_0_3"},
                                   {"quantile", 0.9, "quantile_0_9"},
                                   {"quantile", 0.05, "quantile_0_05"}};
  for (const Shape& s : gbn_shapes)
    for (const Pair& p : pairs)
      for (bool affine : {true, false})
        add(std::string("gbn_") + p.tag + "_" + shape_tag(s) + (affine ? "_affine" : "_noaffine"),
            "generalizedbatchnorm",
            {{"channels", 3}, {"center", p.center}, {"level", p.level}, {"affine", affine}}, s);
  for (const Pair& p : pairs)  // eps comparable to D: an eps misplaced in the backward shows
    add(std::string("gbn_") + p.tag + "_2x3x5_eps0_5", "generalizedbatchnorm",
        {{"channels", 3}, {"center", p.center}, {"level", p.level}, {"eps", 0.5}}, {2, 3, 5});

  // Switchable Norm: every set of normalizers (IN needs > 1 spatial element), N = 1 and 2.
  struct Use {
    bool in, bn;
    const char* tag;
  };
  const std::vector<Use> uses = {{true, true, "in_ln_bn"}, {false, true, "ln_bn"},
                                 {true, false, "in_ln"}, {false, false, "ln"}};
  for (const Shape& s : std::vector<Shape>{{2, 3, 5}, {2, 3, 3, 5}, {1, 3, 2, 5}, {3, 2, 7}})
    for (const Use& u : uses)
      for (bool affine : {true, false})
        add("sn_" + std::string(u.tag) + "_" + shape_tag(s) + (affine ? "_affine" : "_noaffine"),
            "switchablenorm", {{"channels", s[1]}, {"useIN", u.in}, {"useBN", u.bn}, {"affine", affine}}, s);
  for (const Shape& s : std::vector<Shape>{{4, 3}, {2, 3}})  // [N,C]: LN and BN only
    add("sn_ln_bn_" + shape_tag(s), "switchablenorm", {{"channels", 3}, {"useIN", false}}, s);
  for (const Use& u : uses)
    add("sn_" + std::string(u.tag) + "_2x3x5_eps0_5", "switchablenorm",
        {{"channels", 3}, {"useIN", u.in}, {"useBN", u.bn}, {"eps", 0.5}}, {2, 3, 5});
  return out;
}

// ---- how each method is checked ---------------------------------------------------------------

// How a case's input x, loss weights w and parameters are drawn.
enum class Draw {
  // Per-channel offset and scale, x redrawn until every statistics group of more than one value
  // has std >= 0.25 (a group of two values 0.003 apart has a rstd that changes completely over a
  // step of 1e-2); then w, gamma and beta.
  kSpreadGroups,
  // w and the parameters first; then x with per-channel offset and scale, the elements near a
  // kink redrawn: FRN's TLU max(y, tau) and L1BN's |x - mu|, where the derivative is not defined
  // and finite differences straddle it. Every y is at least 0.1 from its tau, and every x at
  // least 0.05 from its channel mean (a step of h moves y by about gamma*rstd*h and x - mu by
  // about h, well inside those margins); FRN's TLU must also be active and inactive somewhere.
  // The kinks themselves are tested exactly (methods/frn_test.cpp, methods/l1batchnorm_test.cpp).
  kAwayFromKinks,
  // The median and the quantile are order statistics and the MAD has |x - S|, so each is
  // piecewise linear in x and a finite difference is only meaningful where no step reorders the
  // values: per channel a shuffled grid with jitter, every two values of a channel at least 0.06
  // apart (a step moves one value by at most 2h = 0.02); then w and the parameters.
  kSpacedGrid,
  // Offsets per channel and per sample, so IN, LN and BN statistics all differ, every (n, c) group
  // of more than one value with std >= 0.25; then w and the parameters.
  kSpreadInstances,
};

// Which wrong backward each case of a method shows its tolerance would catch.
enum class Wrong {
  // dx with the mean term dropped, i.e. dx + rstd * r * mean_group(w * gamma): off by about
  // 0.5 * gamma * rstd (w has mean 0.5), measured >= 0.06 over the sweep.
  kMeanTermDropped,
  // dx with the statistics held constant: w * gamma / (D + eps) (GBN) or w * gamma * rstd (SN,
  // rstd of the mixed variance), so a backward that ignored the statistics' gradients fails.
  kConstantStatistics,
  // None here: L1 BN's (mu's dependence inside s left out) is in methods/l1batchnorm_test.cpp;
  // LRN, RMSNorm and FRN have none yet.
  kNotHere,
};

struct Subject {
  Draw draw;
  Wrong wrong;
};

// One row per normalization method (a method without one fails EveryMethodHasCases).
const std::map<std::string, Subject>& subjects() {
  static const std::map<std::string, Subject> table = {
      {"batchnorm", {Draw::kSpreadGroups, Wrong::kMeanTermDropped}},
      {"batchrenorm", {Draw::kSpreadGroups, Wrong::kMeanTermDropped}},
      {"layernorm", {Draw::kSpreadGroups, Wrong::kMeanTermDropped}},
      {"groupnorm", {Draw::kSpreadGroups, Wrong::kMeanTermDropped}},
      {"instancenorm", {Draw::kSpreadGroups, Wrong::kMeanTermDropped}},
      {"lrn", {Draw::kAwayFromKinks, Wrong::kNotHere}},
      {"rmsnorm", {Draw::kAwayFromKinks, Wrong::kNotHere}},
      {"frn", {Draw::kAwayFromKinks, Wrong::kNotHere}},
      {"l1batchnorm", {Draw::kAwayFromKinks, Wrong::kNotHere}},
      {"generalizedbatchnorm", {Draw::kSpacedGrid, Wrong::kConstantStatistics}},
      {"switchablenorm", {Draw::kSpreadInstances, Wrong::kConstantStatistics}},
  };
  return table;
}

TEST(GradCheckTable, EveryMethodHasCases) {
  const std::vector<Case> all = cases();
  for (const std::string& m : normlab::norm_methods()) {
    EXPECT_TRUE(subjects().count(m)) << m << " has no row in subjects(): say how its inputs are drawn";
    const auto n = std::count_if(all.begin(), all.end(), [&](const Case& c) { return c.method == m; });
    EXPECT_GT(n, 0) << m << " has no gradient-check case: add its sweep to cases()";
  }
  for (const Case& c : all) {
    const auto& methods = normlab::norm_methods();
    EXPECT_NE(std::find(methods.begin(), methods.end(), c.method), methods.end())
        << c.name << ": " << c.method << " is not a normalization method";
  }
}

// The statistics group of each element and the index of the gamma it is scaled by (to build the
// "mean term dropped" variant of dx independently of the core).
struct Grouping {
  std::vector<int64_t> group;  // per element
  std::vector<int64_t> pidx;   // per element: index into gamma
  int64_t groups = 0;
};

Grouping grouping(const Case& c) {
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
    } else if (c.method == "layernorm") {
      int64_t M = 1;
      for (const json& d : c.options["normalizedShape"]) M *= d.get<int64_t>();
      g.group[e] = e / M;
      g.pidx[e] = e % M;
      g.groups = n / M;
    } else {
      throw std::runtime_error("test bug: no statistics groups known for " + c.method);
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

class GradCheck : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case& c = GetParam();
    auto it = subjects().find(c.method);
    ASSERT_NE(it, subjects().end()) << c.method << " has no row in subjects()";
    layer_ = make_layer(c.method, c.options);
    switch (it->second.draw) {
      case Draw::kSpreadGroups:
        draw_spread_groups();
        break;
      case Draw::kAwayFromKinks:
        draw_away_from_kinks();
        break;
      case Draw::kSpacedGrid:
      case Draw::kSpreadInstances:
        draw_statistics_inputs(it->second.draw);
        break;
    }
  }

  void draw_spread_groups() {
    const Case& c = GetParam();
    Rng rng(c.seed);
    const Shape& s = c.shape;
    const int64_t n = numel(s), C = s[1], S = n / (s[0] * C);
    // Per-channel offset in [-1, 1] and scale in [0.5, 2].
    std::vector<double> off(C), scl(C);
    for (int64_t ch = 0; ch < C; ++ch) {
      off[ch] = 2 * rng.uniform() - 1;
      scl[ch] = 0.5 + 1.5 * rng.uniform();
    }
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
      const std::vector<float> beta = rng.normals(P, 0.0, 0.3);
      set_param(*layer_, "gamma", gamma_);
      set_param(*layer_, "beta", beta);
    } else {
      gamma_.assign(c.method == "layernorm" ? static_cast<size_t>(n / g.groups) : static_cast<size_t>(C), 1.0f);
    }
    if (!c.running_mean.empty()) {
      set_state(*layer_, "runningMean", c.running_mean);
      set_state(*layer_, "runningStd", c.running_std);
    }
  }

  void draw_away_from_kinks() {
    const Case& c = GetParam();
    Rng rng(c.seed);
    const Shape& s = c.shape;
    const int64_t n = numel(s), N = s[0], C = s[1], S = n / (N * C);
    w_ = rng.normals(n, 0.5, 1.0);
    for (normlab::Param& p : layer_->params()) {
      std::vector<float> v;
      if (p.name == "gamma") v = rng.normals(p.value.size(), 1.0, 0.5);
      if (p.name == "beta") v = rng.normals(p.value.size(), 0.0, 0.3);
      if (p.name == "tau") v = rng.normals(p.value.size(), 0.0, 0.5);
      if (p.name == "eps") v = {static_cast<float>(c.learned_eps)};
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
    const Case& c = GetParam();
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

  void draw_statistics_inputs(Draw draw) {
    const Case& c = GetParam();
    Rng rng(c.seed);
    const Shape& s = c.shape;
    const int64_t n = numel(s), N = s[0], C = s[1], S = n / (N * C);
    x_.resize(n);
    if (draw == Draw::kSpacedGrid) {
      // Per channel: a shuffled grid of spacing 0.2 * scale with jitter of at most 0.1 of it, so
      // two values are >= 0.16 * scale >= 0.08 apart.
      for (int64_t ch = 0; ch < C; ++ch) {
        const int64_t M = N * S;
        const double off = 2 * rng.uniform() - 1, scl = 0.5 + 1.5 * rng.uniform();
        std::vector<int64_t> perm(M);
        for (int64_t j = 0; j < M; ++j) perm[j] = j;
        for (int64_t j = M - 1; j > 0; --j) std::swap(perm[j], perm[rng.next_u64() % (j + 1)]);
        for (int64_t j = 0; j < M; ++j) {
          const double v = (perm[j] - (M - 1) / 2.0) * 0.2 + 0.02 * (2 * rng.uniform() - 1);
          x_[((j / S) * C + ch) * S + j % S] = static_cast<float>(off + scl * v);
        }
      }
    } else {
      for (int attempt = 0;; ++attempt) {
        ASSERT_LT(attempt, 100) << "could not draw a well-spread input";
        for (int64_t ni = 0; ni < N; ++ni) {
          const double on = rng.uniform() - 0.5;
          for (int64_t ch = 0; ch < C; ++ch) {
            const double oc = 2 * rng.uniform() - 1, scl = 0.5 + 1.5 * rng.uniform();
            for (int64_t si = 0; si < S; ++si) {
              x_[(ni * C + ch) * S + si] = static_cast<float>(on + oc + scl * rng.normal());
            }
          }
        }
        if (S == 1 || min_instance_std(s) >= 0.25) break;
      }
    }
    w_ = rng.normals(n, 0.5, 1.0);
    for (const normlab::Param& p : layer_->params()) {
      std::vector<float> v = p.name == "gamma" ? rng.normals(p.value.size(), 1.0, 0.5)
                             : p.name == "beta" ? rng.normals(p.value.size(), 0.0, 0.3)
                                                : rng.normals(p.value.size(), 0.0, 0.8);
      set_param(*layer_, p.name, v);
    }
  }

  double min_instance_std(const Shape& s) const {
    const int64_t S = normlab::spatial_size(s);
    double lo = INFINITY;
    for (int64_t g = 0; g < s[0] * s[1]; ++g) {
      double m = 0, q = 0;
      for (int64_t i = 0; i < S; ++i) m += x_[g * S + i];
      m /= S;
      for (int64_t i = 0; i < S; ++i) q += (x_[g * S + i] - m) * (x_[g * S + i] - m);
      lo = std::min(lo, std::sqrt(q / S));
    }
    return lo;
  }

  // Finite differences of L = sum w*y of one training forward at x_ (test_util.h), the case's step.
  FiniteDifference fd() { return {*layer_, GetParam().shape, x_, w_, GetParam().h}; }

  // Batch Renorm: r and d are in the regime the case is meant to exercise.
  void expect_renorm_regime(const std::vector<float>& r, const std::vector<float>& d) {
    const Case& c = GetParam();
    const double r_max = c.options["rMax"].get<double>(), d_max = c.options["dMax"].get<double>();
    for (size_t ch = 0; ch < r.size(); ++ch) {
      SCOPED_TRACE("channel " + std::to_string(ch));
      if (r_max == 1 && d_max == 0) {
        EXPECT_EQ(r[ch], 1.0f);
        EXPECT_EQ(d[ch], 0.0f);
      } else if (c.dx_is_true_derivative) {  // (b): clipped everywhere
        EXPECT_TRUE(r[ch] == static_cast<float>(r_max) || r[ch] == static_cast<float>(1 / r_max)) << r[ch];
        EXPECT_EQ(std::fabs(d[ch]), static_cast<float>(d_max));
      } else {  // (c): well inside the limits, so h-sized moves of x cannot reach a clip
        EXPECT_GT(r[ch], 1.2 / r_max);
        EXPECT_LT(r[ch], r_max / 1.2);
        EXPECT_LT(std::fabs(d[ch]), 0.8 * d_max);
      }
    }
  }

  // Batch Renorm inside its limits: the analytic (paper) gradient is not the true derivative,
  // which is exactly the inference-mode map's: dL/dx = w * gamma / runningStd.
  void expect_paper_dx(const std::vector<float>& dx, const std::vector<double>& gx) {
    const Case& c = GetParam();
    EXPECT_FALSE(check_close("dx", dx, gx, c.atol, c.rtol));
    EXPECT_GT(max_abs_diff(dx, gx), 50 * c.atol);
    std::vector<double> want(dx.size());
    const int64_t C = c.shape[1], S = numel(c.shape) / (c.shape[0] * C);
    for (size_t e = 0; e < want.size(); ++e) {
      const int64_t ch = (static_cast<int64_t>(e) / S) % C;
      want[e] = static_cast<double>(w_[e]) * gamma_[ch] / c.running_std[ch];
    }
    EXPECT_CLOSE("finite difference vs w*gamma/sigma", gx, want, c.atol, c.rtol);
  }

  // dx with the mean term dropped, dx + rstd * r * mean_group(w * gamma), must fail the tolerance
  // (by far: require > 10x the absolute tolerance).
  void expect_mean_term_caught(const std::vector<float>& dx, const std::vector<double>& gx,
                               const std::vector<float>& r) {
    const Case& c = GetParam();
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
    EXPECT_FALSE(check_close("dx with the mean term dropped", wrong, gx, c.atol, c.rtol));
    EXPECT_GT(max_abs_diff(wrong, gx), 10 * c.atol) << "the tolerance would not catch a dropped mean term";
    if (verbose()) {
      std::printf("%-50s mean-term-dropped maxdiff %.3e\n", c.name.c_str(), max_abs_diff(wrong, gx));
    }
  }

  // dL/dx with the statistics held constant: w * gamma / (D + eps) (GBN) or w * gamma * rstd
  // (SN, rstd of the mixed variance), recomputed from the kernels.
  std::vector<double> constant_statistics_dx() {
    const Case& c = GetParam();
    const Shape& s = c.shape;
    const int64_t N = s[0], C = s[1], S = normlab::spatial_size(s);
    const double eps = c.options.value("eps", 1e-5);
    const normlab::Param* g = find_param(*layer_, "gamma");
    std::vector<double> out(x_.size());
    std::vector<double> scale(static_cast<size_t>(N * C));
    if (c.method == "generalizedbatchnorm") {
      auto& gbn = dynamic_cast<normlab::GeneralizedBatchNorm&>(*layer_);
      std::vector<double> center(C), dev(C);
      std::vector<int64_t> sel(C);
      normlab::gbn_statistics(center.data(), dev.data(), sel.data(), x_.data(), gbn.pair(),
                              gbn.options().level, N, C, S);
      for (int64_t nc = 0; nc < N * C; ++nc) scale[nc] = 1 / (dev[nc % C] + eps);
    } else {
      auto& sn = dynamic_cast<normlab::SwitchableNorm&>(*layer_);
      std::vector<double> mi(N * C), vi(N * C), ml(N), vl(N), mb(C), vb(C);
      normlab::switchable_moments(mi.data(), vi.data(), ml.data(), vl.data(), mb.data(), vb.data(),
                                  x_.data(), N, C, S);
      double wm[3], wv[3];
      sn.mixture(wm, wv);
      for (int64_t nc = 0; nc < N * C; ++nc) {
        const double v = wv[0] * vi[nc] + wv[1] * vl[nc / C] + wv[2] * vb[nc % C];
        scale[nc] = 1 / std::sqrt(v + eps);
      }
    }
    for (size_t e = 0; e < out.size(); ++e) {
      const int64_t nc = static_cast<int64_t>(e) / S;
      out[e] = w_[e] * scale[nc] * (g ? g->value[nc % C] : 1.0f);
    }
    return out;
  }

  // The statistics' gradients matter, so a backward that ignored them would fail the tolerance.
  void expect_statistics_caught(const std::vector<double>& gx) {
    const Case& c = GetParam();
    const std::vector<double> naive = constant_statistics_dx();
    EXPECT_FALSE(check_close("dx with constant statistics", naive, gx, c.atol, c.rtol));
    EXPECT_GT(max_abs_diff(naive, gx), 10 * c.atol) << "the check would not see the statistics' gradients";
    if (verbose()) {
      std::printf("%-50s constant-statistics dx off by %.3e\n", c.name.c_str(), max_abs_diff(naive, gx));
    }
  }

  std::unique_ptr<NormLayer> layer_;
  std::vector<float> x_, w_;
  std::vector<float> gamma_;  // kSpreadGroups: the gamma set (ones without affine), for the wrong dx
};

TEST_P(GradCheck, AnalyticMatchesFiniteDifference) {
  const Case& c = GetParam();
  const Subject& subject = subjects().at(c.method);
  // Analytic gradients at x (the running state does not move the training output, or is fixed:
  // Batch Renorm's cases have momentum 0).
  forward(*layer_, x_, c.shape, true);
  const std::vector<float> dx = backward(*layer_, w_);
  std::vector<std::pair<std::string, std::vector<float>>> grads;
  for (const normlab::Param& p : layer_->params()) grads.emplace_back(p.name, p.grad);
  std::vector<float> r;  // Batch Renorm's r of this forward (empty for the other methods)
  if (c.method == "batchrenorm") {
    r = as_brn(*layer_).last_r();
    expect_renorm_regime(r, as_brn(*layer_).last_d());
  }

  const std::vector<double> gx = fd().dx();
  if (c.dx_is_true_derivative) {
    EXPECT_CLOSE("dx", dx, gx, c.atol, c.rtol);
  } else {
    expect_paper_dx(dx, gx);
  }
  for (const auto& [name, analytic] : grads) {
    const std::vector<double> g = fd().dparam(name);
    EXPECT_CLOSE("d" + name, analytic, g, c.atol, c.rtol);
    if (verbose()) std::printf("%-50s d%-10s maxdiff %.3e\n", c.name.c_str(), name.c_str(), max_abs_diff(analytic, g));
  }
  if (c.method == "switchablenorm") {
    EXPECT_EQ(grads.size(), find_param(*layer_, "gamma") ? 4u : 2u);
  }

  switch (subject.wrong) {
    case Wrong::kMeanTermDropped:
      if (c.dx_is_true_derivative) expect_mean_term_caught(dx, gx, r);
      break;
    case Wrong::kConstantStatistics:
      expect_statistics_caught(gx);
      break;
    case Wrong::kNotHere:
      break;
  }
  if (verbose()) std::printf("%-50s dx          maxdiff %.3e\n", c.name.c_str(), max_abs_diff(dx, gx));
}

INSTANTIATE_TEST_SUITE_P(Sweep, GradCheck, ::testing::ValuesIn(cases()), ParamName());

}  // namespace
}  // namespace normlab_test
