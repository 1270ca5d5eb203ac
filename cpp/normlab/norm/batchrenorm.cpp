#include "normlab/norm/batchrenorm.h"

#include <memory>

#include "normlab/norm/method_info.h"

#include <algorithm>
#include <cmath>

#include "normlab/core/error.h"
#include "normlab/core/reduce.h"
#include "normlab/norm/batchnorm.h"

namespace normlab {

BatchRenorm::BatchRenorm(const BatchRenormOptions& options)
    : NormLayer("batchrenorm"), options_(options) {
  check_channel_count(method(), options.channels);
  check_eps(method(), options.eps);
  check_momentum(method(), options.momentum);
  set_limits(options.r_max, options.d_max);
  target_r_max_ = options.r_max;
  target_d_max_ = options.d_max;
  const size_t C = static_cast<size_t>(options.channels);
  add_affine(C, options.affine);
  add_state("runningMean", C, 0.0f);
  add_state("runningStd", C, 1.0f);
}

void BatchRenorm::set_limits(double r_max, double d_max) {
  if (!(r_max >= 1) || !std::isfinite(r_max)) {
    fail(method(), ": rMax must be a finite number >= 1, got ", r_max);
  }
  if (!(d_max >= 0) || !std::isfinite(d_max)) {
    fail(method(), ": dMax must be a finite number >= 0, got ", d_max);
  }
  options_.r_max = r_max;
  options_.d_max = d_max;
}

void BatchRenorm::relax_corrections(double progress) {
  set_limits(1 + progress * (target_r_max_ - 1), progress * target_d_max_);
}

bool BatchRenorm::last_corrections(BatchCorrections& out) const {
  if (r_.empty()) return false;
  out = {r_.data(), d_.data(), r_.size(), options_.r_max, options_.d_max};
  return true;
}

void BatchRenorm::check_shape(const Shape& shape) const {
  check_channels(method(), shape, options_.channels, 2);
}

void BatchRenorm::forward_train(const float* x, const Shape& shape, float* y) {
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  const size_t Cs = static_cast<size_t>(C);
  std::vector<double> mu_b(Cs), var_b(Cs);
  std::vector<float> shift(Cs);
  mean_.resize(Cs);
  rstd_.resize(Cs);
  coef_.resize(Cs);
  r_.resize(Cs);
  d_.resize(Cs);
  moments(mu_b.data(), var_b.data(), x, N, C, S);
  float* mu = state_[0].value.data();
  float* sigma = state_[1].value.data();
  const double r_max = options_.r_max, d_max = options_.d_max, a = options_.momentum;
  for (size_t c = 0; c < Cs; ++c) {
    const double sigma_b = std::sqrt(options_.eps + var_b[c]);
    const double r = std::clamp(sigma_b / sigma[c], 1 / r_max, r_max);
    const double d = std::clamp((mu_b[c] - mu[c]) / sigma[c], -d_max, d_max);
    // y = gamma*((x - muB)/sigmaB*r + d) + beta = (x - muB) * (gamma*r/sigmaB) + (gamma*d + beta)
    mean_[c] = static_cast<float>(mu_b[c]);
    rstd_[c] = static_cast<float>(1 / sigma_b);
    coef_[c] = static_cast<float>(gamma()[c] * r / sigma_b);
    shift[c] = static_cast<float>(gamma()[c] * d + beta()[c]);
    r_[c] = static_cast<float>(r);
    d_[c] = static_cast<float>(d);
    // The moving averages move after r and d have used the old values.
    mu[c] = static_cast<float>(mu[c] + a * (mu_b[c] - mu[c]));
    sigma[c] = static_cast<float>(sigma[c] + a * (sigma_b - sigma[c]));
  }
  channel_affine(y, x, mean_.data(), coef_.data(), shift.data(), N, C, S);
}

void BatchRenorm::forward_infer(const float* x, const Shape& shape, float* y) {
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  const float* sigma = state_[1].value.data();
  std::vector<float> scale(static_cast<size_t>(C)), shift(beta(), beta() + C);
  for (int64_t c = 0; c < C; ++c) scale[c] = static_cast<float>(double{gamma()[c]} / sigma[c]);
  channel_affine(y, x, state_[0].value.data(), scale.data(), shift.data(), N, C, S);
}

void BatchRenorm::backward_impl(const float* dy, const Shape& shape, float* dx) {
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  // With r and d constant, y = gamma*r * xhat + const, xhat = (x - muB)/sigmaB: the BatchNorm
  // backward with coef = gamma*r/sigmaB. dgamma = sum dy*(r*xhat + d), dbeta = sum dy.
  std::vector<double> sum_dy(static_cast<size_t>(C)), sum_dy_xhat(static_cast<size_t>(C));
  channel_norm_backward(dx, sum_dy.data(), sum_dy_xhat.data(), dy, x_.data(), mean_.data(),
                        rstd_.data(), coef_.data(), N, C, S);
  if (!options_.affine) return;
  for (int64_t c = 0; c < C; ++c) {
    params_[0].grad[c] = static_cast<float>(r_[c] * sum_dy_xhat[c] + d_[c] * sum_dy[c]);
    params_[1].grad[c] = static_cast<float>(sum_dy[c]);
  }
}

bool BatchRenorm::inference_affine(InferenceAffine& map, std::string& /*why*/) const {
  affine_from(state_values("runningMean"), state_values("runningStd"), map);
  return true;
}

bool BatchRenorm::set_population_statistics(const float* x, const Shape& shape) {
  check_shape(shape);
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  std::vector<double> mean(static_cast<size_t>(C)), var(static_cast<size_t>(C));
  moments(mean.data(), var.data(), x, N, C, S);
  for (int64_t c = 0; c < C; ++c) {
    state_[0].value[c] = static_cast<float>(mean[c]);
    state_[1].value[c] = static_cast<float>(std::sqrt(var[c] + options_.eps));
  }
  return true;
}

void BatchRenorm::check_state_values(const std::string& name, const float* values, size_t n) const {
  NormLayer::check_state_values(name, values, n);
  if (name != "runningStd") return;
  for (size_t i = 0; i < n; ++i) {
    if (!(values[i] > 0)) fail(method(), ": runningStd[", i, "] must be > 0, got ", values[i]);
  }
}

namespace {

std::unique_ptr<NormLayer> create(const nlohmann::json& options) {
  const MethodInfo& info = batchrenorm_info();
  OptionReader r(options, info.name, info.option_keys());
  BatchRenormOptions o;
  read_channels_eps(r, o);
  o.momentum = read_momentum_not_null(r, info.name, o.momentum,
                                      " (the cumulative average is a batchnorm option)");
  o.r_max = r.number("rMax", o.r_max);
  o.d_max = r.number("dMax", o.d_max);
  o.affine = r.boolean("affine", o.affine);
  return std::make_unique<BatchRenorm>(o);
}

nlohmann::json options_of(const NormLayer& layer) {
  const BatchRenormOptions& o = static_cast<const BatchRenorm&>(layer).options();
  return {{"channels", o.channels}, {"eps", o.eps}, {"momentum", o.momentum},
          {"rMax", o.r_max},        {"dMax", o.d_max}, {"affine", o.affine}};
}

}  // namespace

const MethodInfo& batchrenorm_info() {
  static const MethodInfo info = [] {
    const BatchRenormOptions d;
    MethodInfo m;
    m.name = "batchrenorm";
    m.aliases = {"brn"};
    m.label = "Batch Renorm";
    OptionInfo momentum = momentum_option(d.momentum);
    momentum.help = "the paper's alpha: running = (1 - momentum) * running + momentum * batch";
    m.options = {channels_option(), eps_option(d.eps), momentum,
                 number_option("rMax", "r_max", d.r_max, 1, std::nullopt,
                               "r = clip(sigmaB / sigma, 1/rMax, rMax); 1 with dMax 0 is BatchNorm"),
                 number_option("dMax", "d_max", d.d_max, 0, std::nullopt,
                               "d = clip((muB - mu) / sigma, -dMax, dMax)"),
                 affine_option(d.affine)};
    m.uses_batch_statistics = true;
    m.foldable = true;
    m.population_statistics = {"runningMean", "runningStd"};
    m.create = create;
    m.options_of = options_of;
    return m;
  }();
  return info;
}

}  // namespace normlab
