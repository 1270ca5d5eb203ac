#include "normlab/norm/batchnorm.h"

#include <memory>

#include "normlab/norm/method_info.h"

#include <cmath>

#include "normlab/core/error.h"
#include "normlab/core/reduce.h"

namespace normlab {

void channel_affine(float* y, const float* x, const float* center, const float* scale,
                    const float* shift, int64_t N, int64_t C, int64_t S) {
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      const float m = center[c], k = scale[c], b = shift[c];
      const float* xp = x + (n * C + c) * S;
      float* yp = y + (n * C + c) * S;
      for (int64_t s = 0; s < S; ++s) yp[s] = (xp[s] - m) * k + b;
    }
  }
}

void channel_norm_backward(float* dx, double* sum_dy, double* sum_dy_xhat, const float* dy,
                           const float* x, const float* center, const float* rstd,
                           const float* coef, int64_t N, int64_t C, int64_t S) {
  const double M = static_cast<double>(N) * static_cast<double>(S);
  for (int64_t c = 0; c < C; ++c) {
    const float m = center[c], r = rstd[c];
    double a = 0, b = 0;
    for (int64_t n = 0; n < N; ++n) {
      const float* dyp = dy + (n * C + c) * S;
      const float* xp = x + (n * C + c) * S;
      // Per-row partial sums in float, four independent lanes (so the loop vectorises), folded
      // into double per row.
      float fa[4] = {0, 0, 0, 0}, fb[4] = {0, 0, 0, 0};
      int64_t s = 0;
      for (; s + 4 <= S; s += 4) {
        for (int j = 0; j < 4; ++j) {
          fa[j] += dyp[s + j];
          fb[j] += dyp[s + j] * ((xp[s + j] - m) * r);
        }
      }
      for (; s < S; ++s) {
        fa[0] += dyp[s];
        fb[0] += dyp[s] * ((xp[s] - m) * r);
      }
      a += (fa[0] + fa[1]) + (fa[2] + fa[3]);
      b += (fb[0] + fb[1]) + (fb[2] + fb[3]);
    }
    sum_dy[c] = a;
    sum_dy_xhat[c] = b;
    const float k = coef[c];
    const float mean_dy = static_cast<float>(a / M), mean_dy_xhat = static_cast<float>(b / M);
    for (int64_t n = 0; n < N; ++n) {
      const float* dyp = dy + (n * C + c) * S;
      const float* xp = x + (n * C + c) * S;
      float* dxp = dx + (n * C + c) * S;
      for (int64_t s = 0; s < S; ++s) {
        const float xhat = (xp[s] - m) * r;
        dxp[s] = k * (dyp[s] - mean_dy - xhat * mean_dy_xhat);
      }
    }
  }
}

BatchNorm::BatchNorm(const BatchNormOptions& options) : NormLayer("batchnorm"), options_(options) {
  check_channel_count(method(), options.channels);
  check_eps(method(), options.eps);
  if (options.momentum && !(*options.momentum >= 0 && *options.momentum <= 1)) {
    fail(method(), ": momentum must be in [0, 1] or null, got ", *options.momentum);
  }
  const size_t C = static_cast<size_t>(options.channels);
  add_affine(C, options.affine);
  if (options.track_running_stats) {
    add_state("runningMean", C, 0.0f);
    add_state("runningVar", C, 1.0f);
    add_state("numBatchesTracked", 1, 0.0f);
  }
}

void BatchNorm::check_shape(const Shape& shape) const {
  check_channels(method(), shape, options_.channels, 2);
}

void BatchNorm::normalize_with_batch_stats(const float* x, const Shape& shape, float* y,
                                           BatchStats& st) {
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  const size_t Cs = static_cast<size_t>(C);
  st.mean64.resize(Cs);
  st.var.resize(Cs);
  st.mean.resize(Cs);
  st.rstd.resize(Cs);
  st.scale.resize(Cs);
  st.shift.assign(beta(), beta() + C);
  moments(st.mean64.data(), st.var.data(), x, N, C, S);
  for (size_t c = 0; c < Cs; ++c) {
    const double rstd = 1.0 / std::sqrt(st.var[c] + options_.eps);
    st.mean[c] = static_cast<float>(st.mean64[c]);
    st.rstd[c] = static_cast<float>(rstd);
    st.scale[c] = static_cast<float>(gamma()[c] * rstd);
  }
  channel_affine(y, x, st.mean.data(), st.scale.data(), st.shift.data(), N, C, S);
}

void BatchNorm::forward_train(const float* x, const Shape& shape, float* y) {
  normalize_with_batch_stats(x, shape, y, cache_);
  if (!options_.track_running_stats) return;
  const int64_t C = shape[1];
  const double M = static_cast<double>(shape[0]) * static_cast<double>(spatial_size(shape));
  float& tracked = state_[2].value[0];
  tracked += 1;
  // PyTorch: exponential_average_factor = momentum, or 1/num_batches_tracked when momentum is None.
  const double f = options_.momentum ? *options_.momentum : 1.0 / tracked;
  float* running_mean = state_[0].value.data();
  float* running_var = state_[1].value.data();
  for (int64_t c = 0; c < C; ++c) {
    running_mean[c] = static_cast<float>((1 - f) * running_mean[c] + f * cache_.mean64[c]);
    running_var[c] = static_cast<float>((1 - f) * running_var[c] + f * cache_.var[c] * M / (M - 1));
  }
}

void BatchNorm::forward_infer(const float* x, const Shape& shape, float* y) {
  if (!options_.track_running_stats) {
    BatchStats stats;  // not the training cache, which backward may still need
    normalize_with_batch_stats(x, shape, y, stats);
    return;
  }
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  const float* running_mean = state_[0].value.data();
  const float* running_var = state_[1].value.data();
  std::vector<float> scale(static_cast<size_t>(C)), shift(beta(), beta() + C);
  for (int64_t c = 0; c < C; ++c) {
    scale[c] = static_cast<float>(gamma()[c] / std::sqrt(double{running_var[c]} + options_.eps));
  }
  channel_affine(y, x, running_mean, scale.data(), shift.data(), N, C, S);
}

void BatchNorm::backward_impl(const float* dy, const Shape& shape, float* dx) {
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  // coef = gamma*rstd is exactly the forward's scale.
  std::vector<double> sum_dy(static_cast<size_t>(C)), sum_dy_xhat(static_cast<size_t>(C));
  channel_norm_backward(dx, sum_dy.data(), sum_dy_xhat.data(), dy, x_.data(), cache_.mean.data(),
                        cache_.rstd.data(), cache_.scale.data(), N, C, S);
  if (!options_.affine) return;
  for (int64_t c = 0; c < C; ++c) {
    params_[0].grad[c] = static_cast<float>(sum_dy_xhat[c]);  // dgamma = sum dy * xhat
    params_[1].grad[c] = static_cast<float>(sum_dy[c]);       // dbeta  = sum dy
  }
}

bool BatchNorm::inference_affine(InferenceAffine& map, std::string& why) const {
  if (!options_.track_running_stats) {
    map = {};
    why = "uses batch statistics at inference (trackRunningStats false)";
    return false;
  }
  std::vector<double> dev = state_values("runningVar");
  for (double& d : dev) d = std::sqrt(d + options_.eps);
  affine_from(state_values("runningMean"), dev, map);
  return true;
}

bool BatchNorm::set_population_statistics(const float* x, const Shape& shape) {
  if (!options_.track_running_stats) return false;  // inference already uses batch statistics
  check_shape(shape);
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  std::vector<double> mean(static_cast<size_t>(C)), var(static_cast<size_t>(C));
  moments(mean.data(), var.data(), x, N, C, S);
  const double M = static_cast<double>(N) * static_cast<double>(S);
  for (int64_t c = 0; c < C; ++c) {
    state_[0].value[c] = static_cast<float>(mean[c]);
    state_[1].value[c] = static_cast<float>(M > 1 ? var[c] * M / (M - 1) : var[c]);
  }
  return true;
}

void BatchNorm::check_state_values(const std::string& name, const float* values, size_t n) const {
  NormLayer::check_state_values(name, values, n);
  for (size_t i = 0; i < n; ++i) {
    if (name == "runningVar" && values[i] < 0) {
      fail(method(), ": runningVar[", i, "] must be >= 0, got ", values[i]);
    }
    if (name == "numBatchesTracked" && (values[i] < 0 || values[i] != std::floor(values[i]))) {
      fail(method(), ": numBatchesTracked must be a whole number >= 0, got ", values[i]);
    }
  }
}

namespace {

std::unique_ptr<NormLayer> create(const nlohmann::json& options) {
  const MethodInfo& info = batchnorm_info();
  OptionReader r(options, info.name, info.option_keys());
  BatchNormOptions o;
  read_channels_eps(r, o);
  o.momentum = r.number_or_null("momentum", o.momentum);
  o.affine = r.boolean("affine", o.affine);
  o.track_running_stats = r.boolean("trackRunningStats", o.track_running_stats);
  return std::make_unique<BatchNorm>(o);
}

nlohmann::json options_of(const NormLayer& layer) {
  const BatchNormOptions& o = static_cast<const BatchNorm&>(layer).options();
  return {{"channels", o.channels},
          {"eps", o.eps},
          {"momentum", o.momentum ? nlohmann::json(*o.momentum) : nlohmann::json(nullptr)},
          {"affine", o.affine},
          {"trackRunningStats", o.track_running_stats}};
}

}  // namespace

const MethodInfo& batchnorm_info() {
  static const MethodInfo info = [] {
    const BatchNormOptions d;
    MethodInfo m;
    m.name = "batchnorm";
    m.aliases = {"bn"};
    m.label = "BatchNorm";
    OptionInfo momentum = momentum_option(*d.momentum);
    momentum.nullable = true;
    momentum.help += "; null: the cumulative average";
    m.options = {channels_option(), eps_option(d.eps), momentum, affine_option(d.affine),
                 boolean_option("trackRunningStats", "track_running_stats", d.track_running_stats,
                                "keep running statistics for inference (false: batch statistics always)")};
    m.uses_batch_statistics = true;
    m.foldable = true;
    m.population_statistics = {"runningMean", "runningVar"};
    m.create = create;
    m.options_of = options_of;
    return m;
  }();
  return info;
}

}  // namespace normlab
