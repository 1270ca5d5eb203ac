// Root Mean Square Layer Normalization (Zhang & Sennrich 2019, arXiv 1910.07467), with the
// semantics of PyTorch 2.4's torch.nn.RMSNorm(normalized_shape, eps, elementwise_affine): each row
// of the trailing normalizedShape dims is divided by its root mean square, then scaled by an
// elementwise gamma; no re-centering and no beta (the paper's point: LayerNorm's re-scaling
// invariance without its mean). The same computation in training and inference.
//
//   y = x / sqrt(mean(x^2) + eps) * gamma      (mean over the normalizedShape dims of each row)
//
// eps: PyTorch's default (eps=None) is torch.finfo(x.dtype).eps, for float32 2^-23 =
// 1.1920928955078125e-07, which is our default. The paper's eq. (4) has no eps at all.
#pragma once

#include <vector>

#include "normlab/norm/norm_layer.h"

namespace normlab {

// rrms[r] = 1/sqrt(mean_i x[r,i]^2 + eps) (the cache); y[r,i] = x[r,i] * rrms[r] * gamma[i].
// reference: Zhang & Sennrich 2019, eq. (4); torch.nn.RMSNorm. y may alias x.
void rmsnorm_forward(float* y, float* rrms,                 // (R,M), (R)
                     const float* x, const float* gamma,    // (R,M), (M)
                     double eps, int64_t R, int64_t M);

// With xhat = x*rrms and g = dy*gamma (per row), since d rrms/dx_j = -rrms^3 * x_j / M:
//   dx = rrms * (g - xhat * mean(g * xhat)),   dgamma = sum over rows of dy*xhat.
// dgamma is overwritten; dx may alias dy.
void rmsnorm_backward(float* dx, float* dgamma,              // (R,M), (M)
                      const float* dy, const float* x,       // (R,M), (R,M)
                      const float* rrms, const float* gamma, // (R), (M)
                      int64_t R, int64_t M);

struct RmsNormOptions {
  std::vector<int64_t> normalized_shape;
  double eps = 1.1920928955078125e-07;  // float32 machine epsilon: PyTorch's eps=None
  bool affine = true;                   // PyTorch's elementwise_affine
};

class RmsNorm : public NormLayer {
 public:
  explicit RmsNorm(const RmsNormOptions& options);
  const RmsNormOptions& options() const { return options_; }

 protected:
  void check_shape(const Shape& shape) const override;
  void forward_train(const float* x, const Shape& shape, float* y) override;
  void forward_infer(const float* x, const Shape& shape, float* y) override;
  void backward_impl(const float* dy, const Shape& shape, float* dx) override;

 private:
  RmsNormOptions options_;
  int64_t M_ = 1;            // prod(normalized_shape)
  std::vector<float> rrms_;  // (R) cache of the last training forward
};

// The method's description (method_info.h), collected by registry.h's method_table().
struct MethodInfo;
const MethodInfo& rmsnorm_info();

}  // namespace normlab
