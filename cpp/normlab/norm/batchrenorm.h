// Batch Renormalization (Ioffe 2017, arXiv 1702.03275), exactly the paper's Algorithm 1:
//   muB = mean(x), sigmaB = sqrt(eps + mean((x - muB)^2))          per channel over N and space
//   r = clip(sigmaB / sigma, 1/rMax, rMax), d = clip((muB - mu) / sigma, -dMax, dMax)   (constants
//   for backward: stop_gradient), y = gamma * ((x - muB) / sigmaB * r + d) + beta,
//   then mu += momentum*(muB - mu), sigma += momentum*(sigmaB - sigma).
// Inference: y = gamma * (x - mu) / sigma + beta. With rMax = 1 and dMax = 0 it is BatchNorm.
// The paper calls the update rate alpha; we name it momentum (PyTorch's word for the same thing).
#pragma once

#include <vector>

#include "normlab/norm/norm_layer.h"

namespace normlab {

struct BatchRenormOptions {
  int64_t channels = 0;
  double eps = 1e-5;
  double momentum = 0.01;  // the paper's alpha
  double r_max = 3;
  double d_max = 5;
  bool affine = true;
};

class BatchRenorm : public NormLayer {
 public:
  explicit BatchRenorm(const BatchRenormOptions& options);
  const BatchRenormOptions& options() const { return options_; }

  // runningMean = the mean, runningStd = sqrt(var + eps) of x per channel (what the moving
  // averages of muB and sigmaB estimate).
  bool set_population_statistics(const float* x, const Shape& shape) override;
  // Folding: y = (x - running centre) / (running deviation) * gamma + beta.
  bool inference_affine(InferenceAffine& map, std::string& why) const override;
  // Changes rMax and dMax between steps (the paper relaxes them from 1 and 0 during training).
  // options() then reports these current limits; the targets stay those the layer was made with.
  void set_limits(double r_max, double d_max);
  // The rMax and dMax the layer was made with, which a schedule relaxes towards.
  double target_r_max() const { return target_r_max_; }
  double target_d_max() const { return target_d_max_; }
  // r and d (C) of the last training forward; empty before the first one.
  const std::vector<float>& last_r() const { return r_; }
  const std::vector<float>& last_d() const { return d_; }
  // The paper's schedule (Ioffe 2017, Sec. 4): set_limits(1 + p (rMax - 1), p dMax) with the
  // target limits.
  void relax_corrections(double progress) override;
  bool last_corrections(BatchCorrections& out) const override;

 protected:
  void check_shape(const Shape& shape) const override;
  bool uses_batch_statistics(bool training) const override { return training; }
  void forward_train(const float* x, const Shape& shape, float* y) override;
  void forward_infer(const float* x, const Shape& shape, float* y) override;
  void backward_impl(const float* dy, const Shape& shape, float* dx) override;
  void check_state_values(const std::string& name, const float* values, size_t n) const override;

 private:
  BatchRenormOptions options_;            // r_max and d_max: the current limits
  double target_r_max_ = 0, target_d_max_ = 0;  // the limits it was made with
  // Cache of the last training forward, for backward.
  std::vector<float> mean_, rstd_, coef_;  // (C): muB, 1/sigmaB, gamma*r/sigmaB
  std::vector<float> r_, d_;               // (C)
};

// The method's description (method_info.h), collected by registry.h's method_table().
struct MethodInfo;
const MethodInfo& batchrenorm_info();

}  // namespace normlab
