// Instance Normalization (Ulyanov, Vedaldi & Lempitsky 2016, arXiv 1607.08022): statistics per
// sample and channel over the spatial dims, per-channel gamma and beta, no running statistics
// (PyTorch InstanceNorm1d/2d with track_running_stats=False). Unlike PyTorch, whose InstanceNorm
// defaults to affine=False, affine defaults to true here, like every other method of the layer API.
#pragma once

#include <vector>

#include "normlab/norm/norm_layer.h"

namespace normlab {

// y[n,c,s] = (x[n,c,s] - mean[n,c]) * rstd[n,c] * gamma[c] + beta[c].
// reference: Ulyanov et al. 2016, eq. (2); y may alias x.
void instancenorm_forward(float* y, float* mean, float* rstd,        // (N,C,S), (N,C), (N,C)
                          const float* x, const float* gamma, const float* beta,  // (N,C,S), (C), (C)
                          double eps, int64_t N, int64_t C, int64_t S);

// Per (n, c) over S values, with xhat = (x - mean)*rstd:
//   dx = gamma[c]*rstd * (dy - mean(dy) - xhat * mean(dy*xhat)),
//   dgamma[c] = sum over n,s of dy*xhat,  dbeta[c] = sum over n,s of dy.
// dgamma and dbeta are overwritten; dx may alias dy.
void instancenorm_backward(float* dx, float* dgamma, float* dbeta,  // (N,C,S), (C), (C)
                           const float* dy, const float* x,         // (N,C,S), (N,C,S)
                           const float* mean, const float* rstd,    // (N,C), (N,C)
                           const float* gamma,                      // (C)
                           int64_t N, int64_t C, int64_t S);

struct InstanceNormOptions {
  int64_t channels = 0;
  double eps = 1e-5;
  bool affine = true;
};

class InstanceNorm : public NormLayer {
 public:
  explicit InstanceNorm(const InstanceNormOptions& options);
  const InstanceNormOptions& options() const { return options_; }

 protected:
  void check_shape(const Shape& shape) const override;
  void forward_train(const float* x, const Shape& shape, float* y) override;
  void forward_infer(const float* x, const Shape& shape, float* y) override;
  void backward_impl(const float* dy, const Shape& shape, float* dx) override;

 private:
  InstanceNormOptions options_;
  std::vector<float> mean_, rstd_;  // (N,C) cache of the last training forward
};

// The method's description (method_info.h), collected by registry.h's method_table().
struct MethodInfo;
const MethodInfo& instancenorm_info();

}  // namespace normlab
