#include "normlab/norm/layernorm.h"

#include <memory>

#include "normlab/norm/method_info.h"

#include <algorithm>
#include <cmath>

#include "normlab/core/error.h"
#include "normlab/core/reduce.h"

namespace normlab {

void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* gamma,
                       const float* beta, double eps, int64_t R, int64_t M) {
  std::vector<double> m(static_cast<size_t>(R)), v(static_cast<size_t>(R));
  moments(m.data(), v.data(), x, 1, R, M);
  for (int64_t r = 0; r < R; ++r) {
    const float mr = static_cast<float>(m[r]);
    const float sr = static_cast<float>(1.0 / std::sqrt(v[r] + eps));
    mean[r] = mr;
    rstd[r] = sr;
    const float* xr = x + r * M;
    float* yr = y + r * M;
    for (int64_t i = 0; i < M; ++i) yr[i] = (xr[i] - mr) * sr * gamma[i] + beta[i];
  }
}

void layernorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                        const float* mean, const float* rstd, const float* gamma, int64_t R,
                        int64_t M) {
  std::vector<double> dg(static_cast<size_t>(M), 0.0), db(static_cast<size_t>(M), 0.0);
  for (int64_t r = 0; r < R; ++r) {
    const float mr = mean[r], sr = rstd[r];
    const float* dyr = dy + r * M;
    const float* xr = x + r * M;
    double sum_g = 0, sum_g_xhat = 0;
    // Sums in blocks of up to 256 values: four float lanes inside a block (the loop vectorises),
    // each block folded into double.
    for (int64_t i0 = 0; i0 < M; i0 += 256) {
      const int64_t i1 = std::min(M, i0 + 256);
      float sg[4] = {0, 0, 0, 0}, sgx[4] = {0, 0, 0, 0};
      int64_t i = i0;
      for (; i + 4 <= i1; i += 4) {
        for (int j = 0; j < 4; ++j) {
          const float xhat = (xr[i + j] - mr) * sr;
          const float g = dyr[i + j] * gamma[i + j];
          sg[j] += g;
          sgx[j] += g * xhat;
        }
      }
      for (; i < i1; ++i) {
        const float xhat = (xr[i] - mr) * sr;
        const float g = dyr[i] * gamma[i];
        sg[0] += g;
        sgx[0] += g * xhat;
      }
      sum_g += (sg[0] + sg[1]) + (sg[2] + sg[3]);
      sum_g_xhat += (sgx[0] + sgx[1]) + (sgx[2] + sgx[3]);
    }
    for (int64_t i = 0; i < M; ++i) {
      const float xhat = (xr[i] - mr) * sr;
      dg[i] += dyr[i] * xhat;
      db[i] += dyr[i];
    }
    const float mean_g = static_cast<float>(sum_g / M);
    const float mean_g_xhat = static_cast<float>(sum_g_xhat / M);
    float* dxr = dx + r * M;
    for (int64_t i = 0; i < M; ++i) {
      const float xhat = (xr[i] - mr) * sr;
      dxr[i] = sr * (dyr[i] * gamma[i] - mean_g - xhat * mean_g_xhat);
    }
  }
  for (int64_t i = 0; i < M; ++i) {
    dgamma[i] = static_cast<float>(dg[i]);
    dbeta[i] = static_cast<float>(db[i]);
  }
}

LayerNorm::LayerNorm(const LayerNormOptions& options) : NormLayer("layernorm"), options_(options) {
  M_ = normalized_size(method(), options.normalized_shape);
  check_eps(method(), options.eps);
  add_affine(static_cast<size_t>(M_), options.affine);
}

void LayerNorm::check_shape(const Shape& shape) const {
  check_trailing_dims(method(), shape, options_.normalized_shape);
}

void LayerNorm::forward_train(const float* x, const Shape& shape, float* y) {
  const int64_t R = numel(shape) / M_;
  mean_.resize(static_cast<size_t>(R));
  rstd_.resize(static_cast<size_t>(R));
  layernorm_forward(y, mean_.data(), rstd_.data(), x, gamma(), beta(), options_.eps, R, M_);
}

void LayerNorm::forward_infer(const float* x, const Shape& shape, float* y) {
  const int64_t R = numel(shape) / M_;
  std::vector<float> mean(static_cast<size_t>(R)), rstd(static_cast<size_t>(R));
  layernorm_forward(y, mean.data(), rstd.data(), x, gamma(), beta(), options_.eps, R, M_);
}

void LayerNorm::backward_impl(const float* dy, const Shape& shape, float* dx) {
  const int64_t R = numel(shape) / M_;
  layernorm_backward(dx, dgamma(), dbeta(), dy, x_.data(), mean_.data(), rstd_.data(), gamma(), R, M_);
}

namespace {

std::unique_ptr<NormLayer> create(const nlohmann::json& options) {
  return create_over_trailing_dims<LayerNorm, LayerNormOptions>(layernorm_info(), options);
}

nlohmann::json options_of(const NormLayer& layer) {
  const LayerNormOptions& o = static_cast<const LayerNorm&>(layer).options();
  return {{"normalizedShape", o.normalized_shape}, {"eps", o.eps}, {"affine", o.affine}};
}

}  // namespace

const MethodInfo& layernorm_info() {
  static const MethodInfo info = [] {
    const LayerNormOptions d;
    MethodInfo m;
    m.name = "layernorm";
    m.aliases = {"ln"};
    m.label = "LayerNorm";
    m.options = {normalized_shape_option(), eps_option(d.eps), affine_option(d.affine)};
    m.fill = ModelFill::normalized_shape;
    m.create = create;
    m.options_of = options_of;
    return m;
  }();
  return info;
}

}  // namespace normlab
