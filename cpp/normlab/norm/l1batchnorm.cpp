#include "normlab/norm/l1batchnorm.h"

#include <memory>

#include "normlab/norm/method_info.h"

#include <cmath>

#include "normlab/core/error.h"
#include "normlab/norm/batchnorm.h"

namespace normlab {

namespace {

constexpr double kSqrtPiOver2 = 1.2533141373155002512;  // sqrt(pi/2)

inline float sign(float v) { return v > 0 ? 1.0f : v < 0 ? -1.0f : 0.0f; }

}  // namespace

void l1_moments(double* mean, double* dev, const float* x, double k, int64_t N, int64_t C,
                int64_t S) {
  const double M = static_cast<double>(N) * static_cast<double>(S);
  for (int64_t c = 0; c < C; ++c) {
    double s = 0;
    for (int64_t n = 0; n < N; ++n) {
      const float* xp = x + (n * C + c) * S;
      for (int64_t i = 0; i < S; ++i) s += xp[i];
    }
    const double m = s / M;
    double a = 0;
    for (int64_t n = 0; n < N; ++n) {
      const float* xp = x + (n * C + c) * S;
      for (int64_t i = 0; i < S; ++i) a += std::fabs(xp[i] - m);
    }
    mean[c] = m;
    dev[c] = k * a / M;
  }
}

void l1batchnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                          const float* mean, const float* inv_d, const float* gamma, double k,
                          int64_t N, int64_t C, int64_t S) {
  const double M = static_cast<double>(N) * static_cast<double>(S);
  for (int64_t c = 0; c < C; ++c) {
    const float m = mean[c], r = inv_d[c], g = gamma[c];
    double sum_dy = 0, sum_dy_xhat = 0, sum_sg = 0;
    for (int64_t n = 0; n < N; ++n) {
      const float* dyp = dy + (n * C + c) * S;
      const float* xp = x + (n * C + c) * S;
      for (int64_t i = 0; i < S; ++i) {
        const float d = xp[i] - m;
        sum_dy += dyp[i];
        sum_dy_xhat += static_cast<double>(dyp[i]) * (d * r);
        sum_sg += sign(d);
      }
    }
    dgamma[c] = static_cast<float>(sum_dy_xhat);
    dbeta[c] = static_cast<float>(sum_dy);
    // gh = dy*gamma, so mean(gh) = gamma*mean(dy) and mean(gh*xhat) = gamma*mean(dy*xhat).
    const float mean_gh = static_cast<float>(g * sum_dy / M);
    const float k_mean_gh_xhat = static_cast<float>(k * g * sum_dy_xhat / M);
    const float mean_sg = static_cast<float>(sum_sg / M);
    for (int64_t n = 0; n < N; ++n) {
      const float* dyp = dy + (n * C + c) * S;
      const float* xp = x + (n * C + c) * S;
      float* dxp = dx + (n * C + c) * S;
      for (int64_t i = 0; i < S; ++i) {
        const float d = xp[i] - m;
        dxp[i] = r * (dyp[i] * g - mean_gh - k_mean_gh_xhat * (sign(d) - mean_sg));
      }
    }
  }
}

L1BatchNorm::L1BatchNorm(const L1BatchNormOptions& options)
    : NormLayer("l1batchnorm"), options_(options) {
  check_channel_count(method(), options.channels);
  check_eps(method(), options.eps);
  check_momentum(method(), options.momentum);
  const size_t C = static_cast<size_t>(options.channels);
  add_affine(C, options.affine);
  add_state("runningMean", C, 0.0f);
  add_state("runningDev", C, 1.0f);
}

double L1BatchNorm::k() const { return options_.scale_sqrt_pi_over_2 ? kSqrtPiOver2 : 1.0; }

void L1BatchNorm::check_shape(const Shape& shape) const {
  check_channels(method(), shape, options_.channels, 2);
}

void L1BatchNorm::forward_train(const float* x, const Shape& shape, float* y) {
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  const size_t Cs = static_cast<size_t>(C);
  std::vector<double> mean(Cs), dev(Cs);
  l1_moments(mean.data(), dev.data(), x, k(), N, C, S);
  mean_.resize(Cs);
  inv_d_.resize(Cs);
  std::vector<float> scale(Cs), shift(beta(), beta() + C);
  const double f = options_.momentum;
  float* running_mean = state_[0].value.data();
  float* running_dev = state_[1].value.data();
  for (size_t c = 0; c < Cs; ++c) {
    const double inv_d = 1.0 / (dev[c] + options_.eps);
    mean_[c] = static_cast<float>(mean[c]);
    inv_d_[c] = static_cast<float>(inv_d);
    scale[c] = static_cast<float>(gamma()[c] * inv_d);
    running_mean[c] = static_cast<float>((1 - f) * running_mean[c] + f * mean[c]);
    running_dev[c] = static_cast<float>((1 - f) * running_dev[c] + f * dev[c]);
  }
  channel_affine(y, x, mean_.data(), scale.data(), shift.data(), N, C, S);
}

bool L1BatchNorm::inference_affine(InferenceAffine& map, std::string& /*why*/) const {
  std::vector<double> dev = state_values("runningDev");
  for (double& d : dev) d += options_.eps;
  affine_from(state_values("runningMean"), dev, map);
  return true;
}

bool L1BatchNorm::set_population_statistics(const float* x, const Shape& shape) {
  check_shape(shape);
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  std::vector<double> mean(static_cast<size_t>(C)), dev(static_cast<size_t>(C));
  l1_moments(mean.data(), dev.data(), x, k(), N, C, S);
  for (int64_t c = 0; c < C; ++c) {
    state_[0].value[c] = static_cast<float>(mean[c]);
    state_[1].value[c] = static_cast<float>(dev[c]);
  }
  return true;
}

void L1BatchNorm::forward_infer(const float* x, const Shape& shape, float* y) {
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  const float* running_mean = state_[0].value.data();
  const float* running_dev = state_[1].value.data();
  std::vector<float> scale(static_cast<size_t>(C)), shift(beta(), beta() + C);
  for (int64_t c = 0; c < C; ++c) {
    scale[c] = static_cast<float>(gamma()[c] / (double{running_dev[c]} + options_.eps));
  }
  channel_affine(y, x, running_mean, scale.data(), shift.data(), N, C, S);
}

void L1BatchNorm::backward_impl(const float* dy, const Shape& shape, float* dx) {
  l1batchnorm_backward(dx, dgamma(), dbeta(), dy, x_.data(), mean_.data(), inv_d_.data(), gamma(), k(),
                       shape[0], shape[1], spatial_size(shape));
}

void L1BatchNorm::check_state_values(const std::string& name, const float* values, size_t n) const {
  NormLayer::check_state_values(name, values, n);
  for (size_t i = 0; i < n; ++i) {
    if (name == "runningDev" && values[i] < 0) {
      fail(method(), ": runningDev[", i, "] must be >= 0, got ", values[i]);
    }
  }
}

namespace {

std::unique_ptr<NormLayer> create(const nlohmann::json& options) {
  const MethodInfo& info = l1batchnorm_info();
  OptionReader r(options, info.name, info.option_keys());
  L1BatchNormOptions o;
  read_channels_eps(r, o);
  o.momentum = read_momentum_not_null(r, info.name, o.momentum);
  o.affine = r.boolean("affine", o.affine);
  o.scale_sqrt_pi_over_2 = r.boolean("scaleSqrtPiOver2", o.scale_sqrt_pi_over_2);
  return std::make_unique<L1BatchNorm>(o);
}

nlohmann::json options_of(const NormLayer& layer) {
  const L1BatchNormOptions& o = static_cast<const L1BatchNorm&>(layer).options();
  return {{"channels", o.channels}, {"eps", o.eps}, {"momentum", o.momentum},
          {"affine", o.affine}, {"scaleSqrtPiOver2", o.scale_sqrt_pi_over_2}};
}

}  // namespace

const MethodInfo& l1batchnorm_info() {
  static const MethodInfo info = [] {
    const L1BatchNormOptions d;
    MethodInfo m;
    m.name = "l1batchnorm";
    m.aliases = {"l1bn"};
    m.label = "L1 BatchNorm";
    m.options = {channels_option(), eps_option(d.eps), momentum_option(d.momentum), affine_option(d.affine),
                 boolean_option("scaleSqrtPiOver2", "scale_sqrt_pi_over_2", d.scale_sqrt_pi_over_2,
                                "scale the mean absolute deviation by sqrt(pi/2) (the std of a Gaussian)")};
    m.uses_batch_statistics = true;
    m.foldable = true;
    m.population_statistics = {"runningMean", "runningDev"};
    m.create = create;
    m.options_of = options_of;
    return m;
  }();
  return info;
}

}  // namespace normlab
