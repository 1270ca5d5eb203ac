// Group Normalization (Wu & He 2018, arXiv 1803.08494), with PyTorch GroupNorm semantics: the C
// channels split into G groups of C/G; statistics per sample and group over those channels and all
// spatial positions; per-channel gamma and beta; the same computation in training and inference.
// GN with G = 1 normalizes like LayerNorm over (C,H,W); with G = C like InstanceNorm.
#pragma once

#include <vector>

#include "normlab/norm/norm_layer.h"

namespace normlab {

// The groups a model gives a GroupNorm of `channels` (>= 1) when the user gives none: the largest
// divisor of channels that is <= 8 (min(8, C) moved down to a divisor of C: 32 -> 8, 12 -> 6,
// 6 -> 6, 5 -> 5, 10 -> 5, 7 -> 7, 11 -> 1).
int64_t default_groups(int64_t channels);

// y[n,c,s] = (x[n,c,s] - mean[n,g]) * rstd[n,g] * gamma[c] + beta[c],  g = c / (C/G).
// reference: Wu & He 2018, eq. (1)-(3) with S_i of eq. (7); y may alias x.
void groupnorm_forward(float* y, float* mean, float* rstd,         // (N,C,S), (N,G), (N,G)
                       const float* x, const float* gamma, const float* beta,  // (N,C,S), (C), (C)
                       double eps, int64_t N, int64_t C, int64_t S, int64_t G);

// Per group of M = (C/G)*S values, with xhat = (x - mean)*rstd and g = dy*gamma[c]:
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
//   dgamma[c] = sum over n,s of dy*xhat,  dbeta[c] = sum over n,s of dy.
// dgamma and dbeta are overwritten; dx may alias dy.
void groupnorm_backward(float* dx, float* dgamma, float* dbeta,     // (N,C,S), (C), (C)
                        const float* dy, const float* x,            // (N,C,S), (N,C,S)
                        const float* mean, const float* rstd,       // (N,G), (N,G)
                        const float* gamma,                         // (C)
                        int64_t N, int64_t C, int64_t S, int64_t G);

struct GroupNormOptions {
  int64_t channels = 0;
  int64_t groups = 0;
  double eps = 1e-5;
  bool affine = true;
};

class GroupNorm : public NormLayer {
 public:
  explicit GroupNorm(const GroupNormOptions& options);
  const GroupNormOptions& options() const { return options_; }

 protected:
  void check_shape(const Shape& shape) const override;
  void forward_train(const float* x, const Shape& shape, float* y) override;
  void forward_infer(const float* x, const Shape& shape, float* y) override;
  void backward_impl(const float* dy, const Shape& shape, float* dx) override;

 private:
  GroupNormOptions options_;
  std::vector<float> mean_, rstd_;  // (N,G) cache of the last training forward
};

// The method's description (method_info.h), collected by registry.h's method_table().
struct MethodInfo;
const MethodInfo& groupnorm_info();

}  // namespace normlab
