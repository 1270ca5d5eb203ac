// Batch Normalization (Ioffe & Szegedy 2015, arXiv 1502.03167), with PyTorch BatchNorm1d/2d
// semantics: biased batch variance to normalize, unbiased for running_var, momentum or (null) a
// cumulative average, running statistics starting at mean 0 and variance 1.
#pragma once

#include <optional>
#include <vector>

#include "normlab/norm/norm_layer.h"

namespace normlab {

// ---- stateless kernels (also used by Batch Renormalization) ----------------------------------

// y = (x - center[c]) * scale[c] + shift[c], for x viewed as (N, C, S). y may alias x.
void channel_affine(float* y,                                        // (N,C,S)
                    const float* x,                                  // (N,C,S)
                    const float* center, const float* scale, const float* shift,  // (C) each
                    int64_t N, int64_t C, int64_t S);

// Backward of y = coef[c] * xhat + (terms constant in x), xhat = (x - center[c]) * rstd[c], where
// center and rstd are the batch mean and 1/sqrt(var+eps) over (N, S) (so they depend on x):
//   sum_dy[c]      = sum over (n,s) of dy
//   sum_dy_xhat[c] = sum over (n,s) of dy * xhat
//   dx = coef[c] * (dy - sum_dy[c]/M - xhat * sum_dy_xhat[c]/M),   M = N*S
// BatchNorm: coef = gamma*rstd; Batch Renorm: coef = gamma*r*rstd (r a constant). dx may alias dy.
// reference: Ioffe & Szegedy 2015, Section 3 (the chain rule through mean and variance).
void channel_norm_backward(float* dx,                                 // (N,C,S)
                           double* sum_dy, double* sum_dy_xhat,       // (C), (C)
                           const float* dy, const float* x,           // (N,C,S), (N,C,S)
                           const float* center, const float* rstd, const float* coef,  // (C) each
                           int64_t N, int64_t C, int64_t S);

// ---- the layer ------------------------------------------------------------------------------

struct BatchNormOptions {
  int64_t channels = 0;
  double eps = 1e-5;
  std::optional<double> momentum = 0.1;  // nullopt: cumulative moving average
  bool affine = true;
  bool track_running_stats = true;
};

class BatchNorm : public NormLayer {
 public:
  explicit BatchNorm(const BatchNormOptions& options);
  const BatchNormOptions& options() const { return options_; }
  // runningMean = the mean, runningVar = the unbiased variance of x per channel (as a running
  // average of many batches would estimate them).
  bool set_population_statistics(const float* x, const Shape& shape) override;
  // Folding: y = (x - running centre) / (running deviation) * gamma + beta.
  bool inference_affine(InferenceAffine& map, std::string& why) const override;

 protected:
  void check_shape(const Shape& shape) const override;
  bool uses_batch_statistics(bool training) const override {
    return training || !options_.track_running_stats;
  }
  void forward_train(const float* x, const Shape& shape, float* y) override;
  void forward_infer(const float* x, const Shape& shape, float* y) override;
  void backward_impl(const float* dy, const Shape& shape, float* dx) override;
  void check_state_values(const std::string& name, const float* values, size_t n) const override;

 private:
  // Per-channel statistics of one batch and the affine map they give.
  struct BatchStats {
    std::vector<double> mean64, var;                // (C): batch mean and biased variance
    std::vector<float> mean, rstd, scale, shift;    // (C): rstd = 1/sqrt(var+eps), scale = gamma*rstd
  };
  // Normalizes x with its own batch statistics, which it leaves in `stats`.
  void normalize_with_batch_stats(const float* x, const Shape& shape, float* y, BatchStats& stats);

  BatchNormOptions options_;
  BatchStats cache_;  // of the last training forward, for backward
};

// The method's description (method_info.h), collected by registry.h's method_table().
struct MethodInfo;
const MethodInfo& batchnorm_info();

}  // namespace normlab
