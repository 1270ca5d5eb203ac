// L1-Norm Batch Normalization (Wu, Li, Deng, Liu, Xie & Shi 2018, arXiv 1802.09769): BatchNorm with
// the standard deviation replaced by the mean absolute deviation, so that forward and backward need
// only absolute values and signs (no squares, no square roots: cheaper in low-precision hardware).
// Per channel over N and the spatial dims:
//
//   mu = mean(x),   s = k * mean(|x - mu|),   y = gamma * (x - mu) / (s + eps) + beta
//   k  = sqrt(pi/2)  (scaleSqrtPiOver2 true, default)   or 1 (false)
//
// For Gaussian data E|x - mu| = sigma * sqrt(2/pi), so with k = sqrt(pi/2), s estimates the standard
// deviation and the layer approximates BatchNorm; this is the paper's "L1BN equals L2BN up to the
// scaling factor sqrt(pi/2)". The seed text (004, Section 7) leaves the factor out, noting that
// gamma can absorb it; we follow the paper by default and keep the seed's form as an option. eps is
// added to s itself (there is no root to put it under): xhat = (x - mu)/(s + eps).
//
// Running statistics as BatchNorm's: runningMean (0) and runningDev (1, the running s, factor k
// included), running = (1 - momentum) * running + momentum * batch. No Bessel-like correction of s
// (BatchNorm's unbiased running variance has no standard counterpart for a mean absolute deviation).
// Inference: y = gamma * (x - runningMean) / (runningDev + eps) + beta.
#pragma once

#include <vector>

#include "normlab/norm/norm_layer.h"

namespace normlab {

// ---- stateless kernels ------------------------------------------------------------------------

// mean[c], dev[c] = k * mean(|x - mean|) over (n, s) of x viewed as (N, C, S); two passes with double
// accumulators (the mean first), like reduce.h's moments.
void l1_moments(double* mean, double* dev,                  // (C), (C)
                const float* x,                             // (N,C,S)
                double k, int64_t N, int64_t C, int64_t S);

// Backward of y = gamma*xhat + beta with xhat = (x - mu)/D, D = s + eps, mu and s the batch
// statistics above (both depend on x). With gh = dy*gamma, sg = sign(x - mu) (0 at 0), M = N*S,
// ds/dx_j = k/M * (sg_j - mean(sg)) and dmu/dx_j = 1/M:
//   dx = (gh - mean(gh) - k * mean(gh * xhat) * (sg - mean(sg))) / D
//   dgamma[c] = sum dy*xhat,   dbeta[c] = sum dy           (means and sums per channel over n, s)
// dgamma and dbeta are overwritten; dx may alias dy.
// reference: Wu et al. 2018 (L1BN's backward through sign(x - mu)); derived here in full, checked
// against autograd in tests/fixtures/generate.py.
void l1batchnorm_backward(float* dx, float* dgamma, float* dbeta,  // (N,C,S), (C), (C)
                          const float* dy, const float* x,         // (N,C,S), (N,C,S)
                          const float* mean, const float* inv_d,   // (C), (C): mu and 1/(s + eps)
                          const float* gamma,                      // (C)
                          double k, int64_t N, int64_t C, int64_t S);

// ---- the layer ------------------------------------------------------------------------------

struct L1BatchNormOptions {
  int64_t channels = 0;
  double eps = 1e-5;
  double momentum = 0.1;
  bool affine = true;
  bool scale_sqrt_pi_over_2 = true;
};

class L1BatchNorm : public NormLayer {
 public:
  explicit L1BatchNorm(const L1BatchNormOptions& options);
  const L1BatchNormOptions& options() const { return options_; }
  // AdaBN: runningMean = the mean, runningDev = k * mean(|x - mean|) of x per channel.
  bool set_population_statistics(const float* x, const Shape& shape) override;
  // Folding: y = (x - running centre) / (running deviation) * gamma + beta.
  bool inference_affine(InferenceAffine& map, std::string& why) const override;

 protected:
  void check_shape(const Shape& shape) const override;
  bool uses_batch_statistics(bool training) const override { return training; }
  void forward_train(const float* x, const Shape& shape, float* y) override;
  void forward_infer(const float* x, const Shape& shape, float* y) override;
  void backward_impl(const float* dy, const Shape& shape, float* dx) override;
  void check_state_values(const std::string& name, const float* values, size_t n) const override;

 private:
  double k() const;

  L1BatchNormOptions options_;
  std::vector<float> mean_, inv_d_;  // (C) cache of the last training forward: mu, 1/(s + eps)
};

// The method's description (method_info.h), collected by registry.h's method_table().
struct MethodInfo;
const MethodInfo& l1batchnorm_info();

}  // namespace normlab
