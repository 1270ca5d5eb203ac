#include "normlab/norm/instancenorm.h"

#include <memory>

#include "normlab/norm/method_info.h"

#include <cmath>

#include "normlab/core/error.h"
#include "normlab/core/reduce.h"

namespace normlab {

void instancenorm_forward(float* y, float* mean, float* rstd, const float* x, const float* gamma,
                          const float* beta, double eps, int64_t N, int64_t C, int64_t S) {
  std::vector<double> m(static_cast<size_t>(N * C)), v(static_cast<size_t>(N * C));
  moments(m.data(), v.data(), x, 1, N * C, S);
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const int64_t c = nc % C;
    const float mc = static_cast<float>(m[nc]);
    const float sc = static_cast<float>(1.0 / std::sqrt(v[nc] + eps));
    mean[nc] = mc;
    rstd[nc] = sc;
    const float k = sc * gamma[c], b = beta[c];
    const float* xp = x + nc * S;
    float* yp = y + nc * S;
    for (int64_t s = 0; s < S; ++s) yp[s] = (xp[s] - mc) * k + b;
  }
}

void instancenorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                           const float* mean, const float* rstd, const float* gamma, int64_t N,
                           int64_t C, int64_t S) {
  std::vector<double> dg(static_cast<size_t>(C), 0.0), db(static_cast<size_t>(C), 0.0);
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const int64_t c = nc % C;
    const float mc = mean[nc], sc = rstd[nc];
    const float* dyp = dy + nc * S;
    const float* xp = x + nc * S;
    double a = 0, b = 0;
    for (int64_t s = 0; s < S; ++s) {
      a += dyp[s];
      b += dyp[s] * ((xp[s] - mc) * sc);
    }
    db[c] += a;
    dg[c] += b;
    const float mean_dy = static_cast<float>(a / S), mean_dy_xhat = static_cast<float>(b / S);
    const float k = gamma[c] * sc;
    float* dxp = dx + nc * S;
    for (int64_t s = 0; s < S; ++s) {
      const float xhat = (xp[s] - mc) * sc;
      dxp[s] = k * (dyp[s] - mean_dy - xhat * mean_dy_xhat);
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    dgamma[c] = static_cast<float>(dg[c]);
    dbeta[c] = static_cast<float>(db[c]);
  }
}

InstanceNorm::InstanceNorm(const InstanceNormOptions& options)
    : NormLayer("instancenorm"), options_(options) {
  check_channel_count(method(), options.channels);
  check_eps(method(), options.eps);
  const size_t C = static_cast<size_t>(options.channels);
  add_affine(C, options.affine);
}

void InstanceNorm::check_shape(const Shape& shape) const {
  check_channels(method(), shape, options_.channels, 3);
  // PyTorch: "Expected more than 1 spatial element when training" (it always normalizes with the
  // input's own statistics; over one element every output would be beta).
  if (spatial_size(shape) == 1) {
    fail(method(), ": expected more than 1 spatial element, got input shape ", to_string(shape));
  }
}

void InstanceNorm::forward_train(const float* x, const Shape& shape, float* y) {
  const int64_t N = shape[0], C = shape[1];
  mean_.resize(static_cast<size_t>(N * C));
  rstd_.resize(static_cast<size_t>(N * C));
  instancenorm_forward(y, mean_.data(), rstd_.data(), x, gamma(), beta(), options_.eps, N, C,
                       spatial_size(shape));
}

void InstanceNorm::forward_infer(const float* x, const Shape& shape, float* y) {
  const int64_t N = shape[0], C = shape[1];
  std::vector<float> mean(static_cast<size_t>(N * C)), rstd(static_cast<size_t>(N * C));
  instancenorm_forward(y, mean.data(), rstd.data(), x, gamma(), beta(), options_.eps, N, C,
                       spatial_size(shape));
}

void InstanceNorm::backward_impl(const float* dy, const Shape& shape, float* dx) {
  instancenorm_backward(dx, dgamma(), dbeta(), dy, x_.data(), mean_.data(), rstd_.data(), gamma(),
                        shape[0], shape[1], spatial_size(shape));
}

namespace {

std::unique_ptr<NormLayer> create(const nlohmann::json& options) {
  const MethodInfo& info = instancenorm_info();
  OptionReader r(options, info.name, info.option_keys());
  InstanceNormOptions o;
  read_channels_eps(r, o);
  o.affine = r.boolean("affine", o.affine);
  return std::make_unique<InstanceNorm>(o);
}

nlohmann::json options_of(const NormLayer& layer) {
  const InstanceNormOptions& o = static_cast<const InstanceNorm&>(layer).options();
  return {{"channels", o.channels}, {"eps", o.eps}, {"affine", o.affine}};
}

}  // namespace

const MethodInfo& instancenorm_info() {
  static const MethodInfo info = [] {
    const InstanceNormOptions d;
    MethodInfo m;
    m.name = "instancenorm";
    m.aliases = {"in"};
    m.label = "InstanceNorm";
    m.options = {channels_option(), eps_option(d.eps), affine_option(d.affine)};
    m.needs_spatial_dims = true;
    m.create = create;
    m.options_of = options_of;
    return m;
  }();
  return info;
}

}  // namespace normlab
