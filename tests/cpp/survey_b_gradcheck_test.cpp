// Finite-difference checks of Generalized BatchNorm's and Switchable Norm's backward: dx and every
// parameter's gradient (gamma, beta, and Switchable Norm's meanWeight/varWeight through the
// softmax), for every statistic pair, levels, shapes (N = 1 and 2, odd spatial sizes), affine on
// and off, small and large eps, and each set of Switchable Norm's normalizers.
//
// Loss L = sum_i w_i * y_i with fixed random w (mean 0.5), in double; the difference quotient is
// gradcheck_test.cpp's: central differences at h = 1e-2 and 2h, Richardson-extrapolated, over the
// float32 steps actually taken, tolerance |analytic - fd| <= 2e-3 + 2e-3 * |fd|.
//
// Kinks: the median and the quantile are order statistics and the MAD has |x - S|, so each is
// piecewise linear in x and a finite difference is only meaningful where no step reorders the
// values. The GBN inputs are therefore a shuffled grid with jitter, every two values of a channel
// at least 0.06 apart (a step moves one value by at most 2h = 0.02). Every configuration also
// shows that the statistics' gradients are being tested: the gradient with S and D (or SN's
// mixed mean and variance) held constant must fail the same check by more than 10x its atol.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "normlab/norm/generalizedbatchnorm.h"
#include "normlab/norm/switchablenorm.h"
#include "test_util.h"

namespace normlab_test {
namespace {

constexpr double kH = 1e-2;
constexpr double kAtol = 2e-3;
constexpr double kRtol = 2e-3;

struct Config {
  std::string name;
  std::string method;
  json options;
  Shape shape;
  uint64_t seed = 1;
};

void PrintTo(const Config& c, std::ostream* os) { *os << c.name; }

std::vector<Config> configs() {
  std::vector<Config> out;
  uint64_t seed = 5000;
  auto add = [&](std::string name, std::string method, json options, Shape shape) {
    out.push_back({std::move(name), std::move(method), std::move(options), std::move(shape), ++seed});
  };
  // Generalized BN: each pair, levels for the quantile (alpha*M whole and fractional), shapes
  // with M = N*S of 6 (even), 10, 15 (odd) and 30.
  const std::vector<Shape> shapes = {{6, 3}, {2, 3, 5}, {1, 3, 3, 5}, {2, 3, 3, 5}};
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
  for (const Shape& s : shapes)
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
            "switchablenorm",
            {{"channels", s[1]}, {"useIN", u.in}, {"useBN", u.bn}, {"affine", affine}}, s);
  for (const Shape& s : std::vector<Shape>{{4, 3}, {2, 3}})  // [N,C]: LN and BN only
    add("sn_ln_bn_" + shape_tag(s), "switchablenorm", {{"channels", 3}, {"useIN", false}}, s);
  for (const Use& u : uses)
    add("sn_" + std::string(u.tag) + "_2x3x5_eps0_5", "switchablenorm",
        {{"channels", 3}, {"useIN", u.in}, {"useBN", u.bn}, {"eps", 0.5}}, {2, 3, 5});
  return out;
}

class SurveyBGradCheck : public ::testing::TestWithParam<Config> {
 protected:
  void SetUp() override {
    const Config& c = GetParam();
    layer_ = make_layer(c.method, c.options);
    Rng rng(c.seed);
    const Shape& s = c.shape;
    const int64_t n = numel(s), N = s[0], C = s[1], S = n / (N * C);
    x_.resize(n);
    if (c.method == "generalizedbatchnorm") {
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
      // Offsets per channel and per sample, so IN, LN and BN statistics all differ; every
      // (n, c) group of more than one value with std >= 0.25.
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
    const int64_t S = spatial_size(s);
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
  static int64_t spatial_size(const Shape& s) { return normlab::spatial_size(s); }

  // Finite differences of L = sum w*y of one training forward at x_ (test_util.h), step kH.
  FiniteDifference fd() { return {*layer_, GetParam().shape, x_, w_, kH}; }

  // dL/dx with the statistics held constant: w * gamma / (D + eps) (GBN) or w * gamma * rstd
  // (SN, rstd of the mixed variance), recomputed from the kernels.
  std::vector<double> constant_statistics_dx() {
    const Config& c = GetParam();
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

  std::unique_ptr<NormLayer> layer_;
  std::vector<float> x_, w_;
};

TEST_P(SurveyBGradCheck, AnalyticMatchesFiniteDifference) {
  const Config& c = GetParam();
  forward(*layer_, x_, c.shape, true);
  const std::vector<float> dx = backward(*layer_, w_);
  std::vector<std::pair<std::string, std::vector<float>>> grads;
  for (const normlab::Param& p : layer_->params()) grads.emplace_back(p.name, p.grad);

  const std::vector<double> gx = fd().dx();
  EXPECT_CLOSE("dx", dx, gx, kAtol, kRtol);
  for (const auto& [name, grad] : grads) EXPECT_CLOSE("d" + name, grad, fd().dparam(name), kAtol, kRtol);
  if (c.method == "switchablenorm") {
    EXPECT_EQ(grads.size(), find_param(*layer_, "gamma") ? 4u : 2u);
  }

  // The statistics' gradients matter here, so a backward that ignored them would fail.
  const std::vector<double> naive = constant_statistics_dx();
  EXPECT_FALSE(check_close("dx with constant statistics", naive, gx, kAtol, kRtol));
  EXPECT_GT(max_abs_diff(naive, gx), 10 * kAtol) << "the check would not see the statistics' gradients";
  if (verbose()) {
    std::printf("%-40s dx maxdiff %.3e (constant-statistics dx off by %.3e)\n", c.name.c_str(),
                max_abs_diff(dx, gx), max_abs_diff(naive, gx));
  }
}

INSTANTIATE_TEST_SUITE_P(Sweep, SurveyBGradCheck, ::testing::ValuesIn(configs()), ParamName());

}  // namespace
}  // namespace normlab_test
