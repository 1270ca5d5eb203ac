#include "normlab/norm/generalizedbatchnorm.h"

#include <memory>

#include "normlab/norm/method_info.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "normlab/core/error.h"
#include "normlab/core/reduce.h"
#include "normlab/norm/batchnorm.h"

namespace normlab {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Rank (1-based) of the order statistic a pair centers on, for M values: the lower median
// ceil(M/2), or ceil(alpha*M) clamped to [1, M] (alpha*M is in (0, M) for alpha in (0, 1); the
// clamp only guards rounding). The fixture generator computes the same double expression.
int64_t order_rank(GbnPair pair, double level, int64_t M) {
  if (pair == GbnPair::kMedianMad) return (M + 1) / 2;
  const double k = std::ceil(level * static_cast<double>(M));
  return std::min<int64_t>(M, std::max<int64_t>(1, static_cast<int64_t>(k)));
}

// Value x[n, c, s] of channel c at within-channel index j = n*S + s.
inline float at(const float* x, int64_t C, int64_t S, int64_t c, int64_t j) {
  return x[((j / S) * C + c) * S + j % S];
}

// Whether (v, j) ranks above / below the selected (q, sel) in the (value, index) order.
inline bool ranks_above(float v, int64_t j, float q, int64_t sel) { return v > q || (v == q && j > sel); }
inline bool ranks_below(float v, int64_t j, float q, int64_t sel) { return v < q || (v == q && j < sel); }

}  // namespace

void gbn_statistics(double* center, double* deviation, int64_t* selected, const float* x,
                    GbnPair pair, double level, int64_t N, int64_t C, int64_t S) {
  const int64_t M = N * S;
  std::vector<double> mean(static_cast<size_t>(C)), var(static_cast<size_t>(C));
  moments(mean.data(), var.data(), x, N, C, S);
  if (pair == GbnPair::kMeanStd) {
    for (int64_t c = 0; c < C; ++c) {
      center[c] = mean[c];
      deviation[c] = std::sqrt(var[c]);
      selected[c] = -1;
    }
    return;
  }
  const int64_t kth = order_rank(pair, level, M);
  std::vector<float> v(static_cast<size_t>(M));
  std::vector<int64_t> order(static_cast<size_t>(M));
  for (int64_t c = 0; c < C; ++c) {
    bool has_nan = false;
    for (int64_t j = 0; j < M; ++j) {
      v[j] = at(x, C, S, c, j);
      has_nan = has_nan || std::isnan(v[j]);
    }
    if (has_nan) {  // no order to select from; NaN propagates, as PyTorch would
      center[c] = deviation[c] = kNaN;
      selected[c] = -1;
      continue;
    }
    // The kth smallest by (value, index): a strict total order, so the selection is deterministic.
    std::iota(order.begin(), order.end(), int64_t{0});
    std::nth_element(order.begin(), order.begin() + (kth - 1), order.end(),
                     [&](int64_t a, int64_t b) { return v[a] < v[b] || (v[a] == v[b] && a < b); });
    const int64_t sel = order[kth - 1];
    const float q = v[sel];
    center[c] = q;
    selected[c] = sel;
    if (pair == GbnPair::kMedianMad) {
      double sum_abs = 0;  // D = mean |x - median|
      for (int64_t j = 0; j < M; ++j) sum_abs += std::fabs(double{v[j]} - q);
      deviation[c] = sum_abs / static_cast<double>(M);
    } else {
      double sum_above = 0;  // sum of [x - q]_+ over the elements ranked above q
      for (int64_t j = 0; j < M; ++j) {
        if (ranks_above(v[j], j, q, sel)) sum_above += double{v[j]} - q;
      }
      // D = qbar - mean = (q - mean) + sum_above / ((1 - alpha) M); >= 0 up to rounding.
      const double d = (q - mean[c]) + sum_above / ((1.0 - level) * static_cast<double>(M));
      deviation[c] = std::max(d, 0.0);
    }
  }
}

void gbn_backward(float* dx, double* sum_dy, double* sum_dy_xhat, const float* dy, const float* x,
                  const double* center, const double* deviation, const int64_t* selected,
                  const float* gamma, double eps, GbnPair pair, double level, int64_t N, int64_t C,
                  int64_t S) {
  const int64_t M = N * S;
  const double Md = static_cast<double>(M);
  const int64_t kth = pair == GbnPair::kMeanStd ? 0 : order_rank(pair, level, M);
  for (int64_t c = 0; c < C; ++c) {
    const float m = static_cast<float>(center[c]);
    const double denom = deviation[c] + eps;
    const float r = static_cast<float>(1.0 / denom);
    double a = 0, b = 0;
    for (int64_t n = 0; n < N; ++n) {
      const float* dyp = dy + (n * C + c) * S;
      const float* xp = x + (n * C + c) * S;
      float fa = 0, fb = 0;  // per-row partial sums in float, folded into double per row
      for (int64_t s = 0; s < S; ++s) {
        fa += dyp[s];
        fb += dyp[s] * ((xp[s] - m) * r);
      }
      a += fa;
      b += fb;
    }
    sum_dy[c] = a;
    sum_dy_xhat[c] = b;
    const float k = gamma[c] * r;
    const int64_t sel = selected[c];
    // dx_i = k * (dy_i - s_i*A - d_i*B), written per pair as dy_i - base - (per-element terms).
    if (pair == GbnPair::kMeanStd) {
      // s_i*A = A/M; d_i*B = (x_i - mu)/D * B/M (0 for a constant channel, D = 0).
      const float mean_dy = static_cast<float>(a / Md);
      const float t = deviation[c] > 0 ? static_cast<float>(b / Md / deviation[c]) : 0.0f;
      for (int64_t n = 0; n < N; ++n) {
        const float* dyp = dy + (n * C + c) * S;
        const float* xp = x + (n * C + c) * S;
        float* dxp = dx + (n * C + c) * S;
        for (int64_t s = 0; s < S; ++s) dxp[s] = k * (dyp[s] - mean_dy - (xp[s] - m) * t);
      }
      continue;
    }
    if (sel < 0) {  // a NaN channel: NaN gradients
      for (int64_t n = 0; n < N; ++n) {
        float* dxp = dx + (n * C + c) * S;
        for (int64_t s = 0; s < S; ++s) dxp[s] = std::numeric_limits<float>::quiet_NaN();
      }
      continue;
    }
    // Per-element d_i*B terms by rank class, and the selected element's extra -A - d_sel*B.
    double up, down, own;  // d_i for i above, below, and the extra part of d_sel
    const double above = static_cast<double>(M - kth), below = static_cast<double>(kth - 1);
    if (pair == GbnPair::kMedianMad) {
      up = 1.0 / Md;
      down = -1.0 / Md;
      own = -(above - below) / Md;
    } else {
      const double tail = 1.0 / ((1.0 - level) * Md);
      up = tail - 1.0 / Md;
      down = -1.0 / Md;
      own = 1.0 - above * tail - 1.0 / Md;
    }
    const float up_b = static_cast<float>(up * b), down_b = static_cast<float>(down * b);
    const float q = m;
    for (int64_t n = 0; n < N; ++n) {
      const float* dyp = dy + (n * C + c) * S;
      const float* xp = x + (n * C + c) * S;
      float* dxp = dx + (n * C + c) * S;
      for (int64_t s = 0; s < S; ++s) {
        const int64_t j = n * S + s;
        float g;
        if (ranks_above(xp[s], j, q, sel)) {
          g = dyp[s] - up_b;
        } else if (ranks_below(xp[s], j, q, sel)) {
          g = dyp[s] - down_b;
        } else {  // the selected element: s_i = 1, d_i = own
          g = static_cast<float>(double{dyp[s]} - a - own * b);
        }
        dxp[s] = k * g;
      }
    }
  }
}

std::string gbn_partner(const std::string& name) {
  static const std::pair<const char*, const char*> pairs[] = {
      {"mean", "std"}, {"median", "mad"}, {"quantile", "superquantile"}};
  for (const auto& [center, deviation] : pairs) {
    if (name == center) return deviation;
    if (name == deviation) return center;
  }
  return "";
}

GeneralizedBatchNorm::GeneralizedBatchNorm(const GeneralizedBatchNormOptions& options)
    : NormLayer("generalizedbatchnorm"), options_(options) {
  const std::string& who = method();
  check_channel_count(who, options.channels);
  if (options.center == "mean") {
    pair_ = GbnPair::kMeanStd;
  } else if (options.center == "median") {
    pair_ = GbnPair::kMedianMad;
  } else if (options.center == "quantile") {
    pair_ = GbnPair::kQuantileSuperquantile;
  } else {
    fail(who, ": unknown center '", options.center, "' (known: mean, median, quantile)");
  }
  if (options.deviation != "std" && options.deviation != "mad" && options.deviation != "superquantile") {
    fail(who, ": unknown deviation '", options.deviation, "' (known: std, mad, superquantile)");
  }
  if (gbn_partner(options.center) != options.deviation) {
    fail(who, ": center '", options.center, "' does not pair with deviation '", options.deviation,
         "' (the paper's pairs: mean/std, median/mad, quantile/superquantile)");
  }
  if (!(options.level > 0 && options.level < 1)) {
    fail(who, ": level must be a number in (0, 1), got ", options.level);
  }
  check_eps(who, options.eps);
  check_momentum(who, options.momentum);
  const size_t C = static_cast<size_t>(options.channels);
  add_affine(C, options.affine);
  add_state("runningCenter", C, 0.0f);
  add_state("runningDeviation", C, 1.0f);
}

void GeneralizedBatchNorm::check_shape(const Shape& shape) const {
  check_channels(method(), shape, options_.channels, 2);
}

void GeneralizedBatchNorm::forward_train(const float* x, const Shape& shape, float* y) {
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  const size_t Cs = static_cast<size_t>(C);
  center_.resize(Cs);
  deviation_.resize(Cs);
  selected_.resize(Cs);
  gbn_statistics(center_.data(), deviation_.data(), selected_.data(), x, pair_, options_.level, N, C, S);
  std::vector<float> center(Cs), scale(Cs), shift(beta(), beta() + C);
  const double f = options_.momentum;
  float* running_center = state_[0].value.data();
  float* running_deviation = state_[1].value.data();
  for (size_t c = 0; c < Cs; ++c) {
    center[c] = static_cast<float>(center_[c]);
    scale[c] = static_cast<float>(gamma()[c] / (deviation_[c] + options_.eps));
    running_center[c] = static_cast<float>((1 - f) * running_center[c] + f * center_[c]);
    running_deviation[c] = static_cast<float>((1 - f) * running_deviation[c] + f * deviation_[c]);
  }
  channel_affine(y, x, center.data(), scale.data(), shift.data(), N, C, S);
}

void GeneralizedBatchNorm::forward_infer(const float* x, const Shape& shape, float* y) {
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  const float* running_center = state_[0].value.data();
  const float* running_deviation = state_[1].value.data();
  std::vector<float> scale(static_cast<size_t>(C)), shift(beta(), beta() + C);
  for (int64_t c = 0; c < C; ++c) {
    scale[c] = static_cast<float>(gamma()[c] / (double{running_deviation[c]} + options_.eps));
  }
  channel_affine(y, x, running_center, scale.data(), shift.data(), N, C, S);
}

void GeneralizedBatchNorm::backward_impl(const float* dy, const Shape& shape, float* dx) {
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  std::vector<double> sum_dy(static_cast<size_t>(C)), sum_dy_xhat(static_cast<size_t>(C));
  gbn_backward(dx, sum_dy.data(), sum_dy_xhat.data(), dy, x_.data(), center_.data(),
               deviation_.data(), selected_.data(), gamma(), options_.eps, pair_, options_.level, N,
               C, S);
  if (!options_.affine) return;
  for (int64_t c = 0; c < C; ++c) {
    params_[0].grad[c] = static_cast<float>(sum_dy_xhat[c]);  // dgamma = sum dy * xhat
    params_[1].grad[c] = static_cast<float>(sum_dy[c]);       // dbeta  = sum dy
  }
}

bool GeneralizedBatchNorm::inference_affine(InferenceAffine& map, std::string& /*why*/) const {
  std::vector<double> dev = state_values("runningDeviation");
  for (double& d : dev) d += options_.eps;
  affine_from(state_values("runningCenter"), dev, map);
  return true;
}

bool GeneralizedBatchNorm::set_population_statistics(const float* x, const Shape& shape) {
  check_shape(shape);
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  const size_t Cs = static_cast<size_t>(C);
  std::vector<double> center(Cs), deviation(Cs);
  std::vector<int64_t> selected(Cs);
  gbn_statistics(center.data(), deviation.data(), selected.data(), x, pair_, options_.level, N, C, S);
  for (size_t c = 0; c < Cs; ++c) {
    state_[0].value[c] = static_cast<float>(center[c]);
    state_[1].value[c] = static_cast<float>(deviation[c]);
  }
  return true;
}

void GeneralizedBatchNorm::check_state_values(const std::string& name, const float* values,
                                              size_t n) const {
  NormLayer::check_state_values(name, values, n);
  for (size_t i = 0; i < n; ++i) {
    if (name == "runningDeviation" && values[i] < 0) {
      fail(method(), ": runningDeviation[", i, "] must be >= 0, got ", values[i]);
    }
  }
}

namespace {

// "Generalized BN (median/MAD)": the pair, from whichever of center/deviation is given.
std::string label_of(const nlohmann::json& options) {
  auto get = [&](const char* key) {
    return options.contains(key) && options.at(key).is_string() ? options.at(key).get<std::string>() : "";
  };
  std::string center = get("center"), deviation = get("deviation");
  if (center.empty()) center = deviation.empty() ? "mean" : gbn_partner(deviation);
  if (deviation.empty()) deviation = gbn_partner(center);
  std::string label = generalizedbatchnorm_info().label + " (" + center + "/" + (deviation == "mad" ? "MAD" : deviation);
  if (center == "quantile" && options.contains("level")) label += ", level " + options.at("level").dump();
  return label + ")";
}

std::unique_ptr<NormLayer> create(const nlohmann::json& options) {
  const MethodInfo& info = generalizedbatchnorm_info();
  OptionReader r(options, info.name, info.option_keys());
  GeneralizedBatchNormOptions o;
  o.channels = r.integer("channels");
  // Either of center and deviation alone brings its partner (deviation 'mad' -> center 'median').
  const std::optional<std::string> center = r.text("center"), deviation = r.text("deviation");
  if (center) o.center = *center;
  if (deviation) o.deviation = *deviation;
  if (center && !deviation && !gbn_partner(*center).empty()) o.deviation = gbn_partner(*center);
  if (deviation && !center && !gbn_partner(*deviation).empty()) o.center = gbn_partner(*deviation);
  o.level = r.number("level", o.level);
  o.eps = r.number("eps", o.eps);
  o.momentum = read_momentum_not_null(r, info.name, o.momentum);
  o.affine = r.boolean("affine", o.affine);
  return std::make_unique<GeneralizedBatchNorm>(o);
}

nlohmann::json options_of(const NormLayer& layer) {
  const GeneralizedBatchNormOptions& o = static_cast<const GeneralizedBatchNorm&>(layer).options();
  return {{"channels", o.channels}, {"center", o.center},     {"deviation", o.deviation},
          {"level", o.level},       {"eps", o.eps},           {"momentum", o.momentum},
          {"affine", o.affine}};
}

}  // namespace

const MethodInfo& generalizedbatchnorm_info() {
  static const MethodInfo info = [] {
    const GeneralizedBatchNormOptions d;
    MethodInfo m;
    m.name = "generalizedbatchnorm";
    m.aliases = {"gbn"};
    m.label = "Generalized BN";
    OptionInfo level = number_option("level", "level", d.level, 0, 1,
                                     "alpha of quantile/superquantile, in (0, 1)");
    level.min_exclusive = true;
    m.options = {channels_option(),
                 string_option("center", "center", d.center, {"mean", "median", "quantile"},
                               "the centre statistic (alone, it brings its partner deviation)"),
                 string_option("deviation", "deviation", d.deviation, {"std", "mad", "superquantile"},
                               "the deviation statistic (alone, it brings its partner centre)"),
                 level, eps_option(d.eps), momentum_option(d.momentum), affine_option(d.affine)};
    m.uses_batch_statistics = true;
    m.foldable = true;
    m.population_statistics = {"runningCenter", "runningDeviation"};
    m.create = create;
    m.options_of = options_of;
    m.label_of = label_of;
    return m;
  }();
  return info;
}

}  // namespace normlab
