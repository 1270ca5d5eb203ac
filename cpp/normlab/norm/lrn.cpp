#include "normlab/norm/lrn.h"

#include <memory>

#include "normlab/norm/method_info.h"

#include <algorithm>
#include <cmath>

#include "normlab/core/error.h"

namespace normlab {

void lrn_forward(float* y, float* denom, const float* x, int64_t size, double a, double beta,
                 double k, int64_t N, int64_t C, int64_t S) {
  const int64_t before = size / 2, after = (size - 1) / 2;  // W(c) = c - before .. c + after
  std::vector<double> acc(static_cast<size_t>(S));
  // Every D first: y may alias x, and y_c needs the neighbours' x.
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = std::max<int64_t>(0, c - before); j <= std::min(C - 1, c + after); ++j) {
        const float* xj = x + (n * C + j) * S;
        for (int64_t s = 0; s < S; ++s) acc[s] += static_cast<double>(xj[s]) * xj[s];
      }
      float* dp = denom + (n * C + c) * S;
      for (int64_t s = 0; s < S; ++s) dp[s] = static_cast<float>(k + a * acc[s]);
    }
  }
  const int64_t total = N * C * S;
  for (int64_t i = 0; i < total; ++i) {
    y[i] = static_cast<float>(x[i] * std::pow(static_cast<double>(denom[i]), -beta));
  }
}

void lrn_backward(float* dx, const float* dy, const float* x, const float* denom, int64_t size,
                  double a, double beta, int64_t N, int64_t C, int64_t S) {
  const int64_t before = size / 2, after = (size - 1) / 2;
  const int64_t total = N * C * S;
  // t = dy * x * D^(-beta-1), first: dx may alias dy, and dx_j needs the neighbours' dy.
  std::vector<double> t(static_cast<size_t>(total));
  for (int64_t i = 0; i < total; ++i) {
    t[i] = static_cast<double>(dy[i]) * x[i] * std::pow(static_cast<double>(denom[i]), -beta - 1);
  }
  std::vector<double> acc(static_cast<size_t>(S));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t j = 0; j < C; ++j) {
      // The c whose window holds j: c - before <= j <= c + after.
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t c = std::max<int64_t>(0, j - after); c <= std::min(C - 1, j + before); ++c) {
        const double* tc = t.data() + (n * C + c) * S;
        for (int64_t s = 0; s < S; ++s) acc[s] += tc[s];
      }
      const int64_t o = (n * C + j) * S;
      for (int64_t s = 0; s < S; ++s) {
        const double direct = dy[o + s] * std::pow(static_cast<double>(denom[o + s]), -beta);
        dx[o + s] = static_cast<float>(direct - 2 * a * beta * x[o + s] * acc[s]);
      }
    }
  }
}

const char* alpha_scaling_name(AlphaScaling s) { return s == AlphaScaling::kSize ? "size" : "none"; }

AlphaScaling alpha_scaling_from_json(const nlohmann::json& options, const std::string& who,
                                     const std::string& key, AlphaScaling fallback) {
  if (!options.is_object() || !options.contains(key) || options.at(key).is_null()) return fallback;
  const nlohmann::json& v = options.at(key);
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s == "size") return AlphaScaling::kSize;
    if (s == "none") return AlphaScaling::kNone;
  }
  fail(who, ": option ", key, " must be \"size\" (alpha/size, PyTorch) or \"none\" (alpha, the "
       "AlexNet paper and TensorFlow), got ", v.dump());
}

LocalResponseNorm::LocalResponseNorm(const LrnOptions& options)
    : NormLayer("lrn"), options_(options) {
  if (options.size < 1) fail(method(), ": size must be an integer >= 1, got ", options.size);
  if (!(options.alpha >= 0) || !std::isfinite(options.alpha)) {
    fail(method(), ": alpha must be a finite number >= 0, got ", options.alpha);
  }
  if (!(options.beta >= 0) || !std::isfinite(options.beta)) {
    fail(method(), ": beta must be a finite number >= 0, got ", options.beta);
  }
  if (!(options.k > 0) || !std::isfinite(options.k)) {
    fail(method(), ": k must be a finite number > 0, got ", options.k);
  }
}

double LocalResponseNorm::effective_alpha() const {
  return options_.alpha_scaling == AlphaScaling::kSize
             ? options_.alpha / static_cast<double>(options_.size)
             : options_.alpha;
}

void LocalResponseNorm::check_shape(const Shape& shape) const {
  // PyTorch: "Expected 3D or higher dimensionality input".
  if (shape.size() < 3) {
    fail(method(), ": input shape ", to_string(shape), " must have at least 3 dims [N,C,L,...]");
  }
}

void LocalResponseNorm::forward_train(const float* x, const Shape& shape, float* y) {
  denom_.resize(static_cast<size_t>(numel(shape)));
  lrn_forward(y, denom_.data(), x, options_.size, effective_alpha(), options_.beta, options_.k,
              shape[0], shape[1], spatial_size(shape));
}

void LocalResponseNorm::forward_infer(const float* x, const Shape& shape, float* y) {
  std::vector<float> denom(static_cast<size_t>(numel(shape)));  // not the training cache
  lrn_forward(y, denom.data(), x, options_.size, effective_alpha(), options_.beta, options_.k,
              shape[0], shape[1], spatial_size(shape));
}

void LocalResponseNorm::backward_impl(const float* dy, const Shape& shape, float* dx) {
  lrn_backward(dx, dy, x_.data(), denom_.data(), options_.size, effective_alpha(), options_.beta,
               shape[0], shape[1], spatial_size(shape));
}

namespace {

std::unique_ptr<NormLayer> create(const nlohmann::json& options) {
  const MethodInfo& info = lrn_info();
  OptionReader r(options, info.name, info.option_keys());
  LrnOptions o;
  o.size = r.integer("size");
  o.alpha = r.number("alpha", o.alpha);
  o.beta = r.number("beta", o.beta);
  o.k = r.number("k", o.k);
  o.alpha_scaling = alpha_scaling_from_json(options, info.name, "alphaScaling", o.alpha_scaling);
  return std::make_unique<LocalResponseNorm>(o);
}

nlohmann::json options_of(const NormLayer& layer) {
  const LrnOptions& o = static_cast<const LocalResponseNorm&>(layer).options();
  return {{"size", o.size}, {"alpha", o.alpha}, {"beta", o.beta}, {"k", o.k},
          {"alphaScaling", alpha_scaling_name(o.alpha_scaling)}};
}

}  // namespace

const MethodInfo& lrn_info() {
  static const MethodInfo info = [] {
    const LrnOptions d;
    MethodInfo m;
    m.name = "lrn";
    m.aliases = {};
    m.label = "LRN";
    OptionInfo k = number_option("k", "k", d.k, 0, std::nullopt, "the additive constant of the denominator");
    k.min_exclusive = true;
    m.options = {integer_option("size", "size", nullptr, 1, "channels in the window (required)"),
                 number_option("alpha", "alpha", d.alpha, 0, std::nullopt, "the scale of the sum of squares"),
                 number_option("beta", "beta", d.beta, 0, std::nullopt, "the exponent of the denominator"), k,
                 string_option("alphaScaling", "alpha_scaling", alpha_scaling_name(d.alpha_scaling),
                               {"size", "none"}, "\"size\": alpha / size (PyTorch); \"none\": alpha (the paper)")};
    m.fill = ModelFill::none;
    m.needs_spatial_dims = true;
    m.create = create;
    m.options_of = options_of;
    return m;
  }();
  return info;
}

}  // namespace normlab
