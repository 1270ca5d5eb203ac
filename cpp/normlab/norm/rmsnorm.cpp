#include "normlab/norm/rmsnorm.h"

#include <memory>

#include "normlab/norm/method_info.h"

#include <cmath>

#include "normlab/core/error.h"

namespace normlab {

void rmsnorm_forward(float* y, float* rrms, const float* x, const float* gamma, double eps,
                     int64_t R, int64_t M) {
  for (int64_t r = 0; r < R; ++r) {
    const float* xr = x + r * M;
    double sq = 0;
    for (int64_t i = 0; i < M; ++i) sq += static_cast<double>(xr[i]) * xr[i];
    const float rr = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(M) + eps));
    rrms[r] = rr;
    float* yr = y + r * M;
    for (int64_t i = 0; i < M; ++i) yr[i] = xr[i] * rr * gamma[i];
  }
}

void rmsnorm_backward(float* dx, float* dgamma, const float* dy, const float* x, const float* rrms,
                      const float* gamma, int64_t R, int64_t M) {
  std::vector<double> dg(static_cast<size_t>(M), 0.0);
  for (int64_t r = 0; r < R; ++r) {
    const float rr = rrms[r];
    const float* dyr = dy + r * M;
    const float* xr = x + r * M;
    double sum_g_xhat = 0;
    for (int64_t i = 0; i < M; ++i) {
      const float xhat = xr[i] * rr;
      sum_g_xhat += static_cast<double>(dyr[i] * gamma[i]) * xhat;
      dg[i] += static_cast<double>(dyr[i]) * xhat;
    }
    const float mean_g_xhat = static_cast<float>(sum_g_xhat / static_cast<double>(M));
    float* dxr = dx + r * M;
    for (int64_t i = 0; i < M; ++i) {
      const float xhat = xr[i] * rr;
      dxr[i] = rr * (dyr[i] * gamma[i] - xhat * mean_g_xhat);
    }
  }
  for (int64_t i = 0; i < M; ++i) dgamma[i] = static_cast<float>(dg[i]);
}

RmsNorm::RmsNorm(const RmsNormOptions& options) : NormLayer("rmsnorm"), options_(options) {
  M_ = normalized_size(method(), options.normalized_shape);
  check_eps(method(), options.eps);
  add_affine(static_cast<size_t>(M_), options.affine, /*with_beta=*/false);
}

void RmsNorm::check_shape(const Shape& shape) const {
  check_trailing_dims(method(), shape, options_.normalized_shape);
}

void RmsNorm::forward_train(const float* x, const Shape& shape, float* y) {
  const int64_t R = numel(shape) / M_;
  rrms_.resize(static_cast<size_t>(R));
  rmsnorm_forward(y, rrms_.data(), x, gamma(), options_.eps, R, M_);
}

void RmsNorm::forward_infer(const float* x, const Shape& shape, float* y) {
  const int64_t R = numel(shape) / M_;
  std::vector<float> rrms(static_cast<size_t>(R));  // not the training cache
  rmsnorm_forward(y, rrms.data(), x, gamma(), options_.eps, R, M_);
}

void RmsNorm::backward_impl(const float* dy, const Shape& shape, float* dx) {
  const int64_t R = numel(shape) / M_;
  rmsnorm_backward(dx, dgamma(), dy, x_.data(), rrms_.data(), gamma(), R, M_);
}

namespace {

std::unique_ptr<NormLayer> create(const nlohmann::json& options) {
  return create_over_trailing_dims<RmsNorm, RmsNormOptions>(rmsnorm_info(), options);
}

nlohmann::json options_of(const NormLayer& layer) {
  const RmsNormOptions& o = static_cast<const RmsNorm&>(layer).options();
  return {{"normalizedShape", o.normalized_shape}, {"eps", o.eps}, {"affine", o.affine}};
}

}  // namespace

const MethodInfo& rmsnorm_info() {
  static const MethodInfo info = [] {
    const RmsNormOptions d;
    MethodInfo m;
    m.name = "rmsnorm";
    m.aliases = {"rms"};
    m.label = "RMSNorm";
    OptionInfo eps = eps_option(d.eps);
    eps.help = "added to the mean square (default: float32 machine epsilon, PyTorch's eps=None)";
    m.options = {normalized_shape_option(), eps, affine_option(d.affine)};
    m.fill = ModelFill::normalized_shape;
    m.create = create;
    m.options_of = options_of;
    return m;
  }();
  return info;
}

}  // namespace normlab
