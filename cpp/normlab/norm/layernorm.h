// Layer Normalization (Ba, Kiros & Hinton 2016, arXiv 1607.06450), with PyTorch LayerNorm
// semantics: statistics over the trailing normalizedShape dims of each sample, elementwise gamma
// and beta of that shape, the same computation in training and inference.
#pragma once

#include <vector>

#include "normlab/norm/norm_layer.h"

namespace normlab {

// y[r, i] = (x[r, i] - mean[r]) * rstd[r] * gamma[i] + beta[i]; mean, rstd are outputs (the cache).
// reference: Ba et al. 2016, eq. (4); y may alias x.
void layernorm_forward(float* y, float* mean, float* rstd,      // (R,M), (R), (R)
                       const float* x, const float* gamma, const float* beta,  // (R,M), (M), (M)
                       double eps, int64_t R, int64_t M);

// With xhat = (x - mean)*rstd and g = dy*gamma (per row):
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  dgamma = sum_r dy*xhat,  dbeta = sum_r dy.
// dgamma and dbeta are overwritten; dx may alias dy.
void layernorm_backward(float* dx, float* dgamma, float* dbeta,  // (R,M), (M), (M)
                        const float* dy, const float* x,         // (R,M), (R,M)
                        const float* mean, const float* rstd,    // (R), (R)
                        const float* gamma,                      // (M)
                        int64_t R, int64_t M);

struct LayerNormOptions {
  std::vector<int64_t> normalized_shape;
  double eps = 1e-5;
  bool affine = true;
};

class LayerNorm : public NormLayer {
 public:
  explicit LayerNorm(const LayerNormOptions& options);
  const LayerNormOptions& options() const { return options_; }

 protected:
  void check_shape(const Shape& shape) const override;
  void forward_train(const float* x, const Shape& shape, float* y) override;
  void forward_infer(const float* x, const Shape& shape, float* y) override;
  void backward_impl(const float* dy, const Shape& shape, float* dx) override;

 private:
  LayerNormOptions options_;
  int64_t M_ = 1;                   // prod(normalized_shape)
  std::vector<float> mean_, rstd_;  // (R) cache of the last training forward
};

// The method's description (method_info.h), collected by registry.h's method_table().
struct MethodInfo;
const MethodInfo& layernorm_info();

}  // namespace normlab
