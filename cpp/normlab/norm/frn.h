// Filter Response Normalization with its Thresholded Linear Unit (Singh & Krishnan 2019,
// arXiv 1911.09737, Section 3 and Algorithm 1): per sample and channel, the activations are divided
// by their root mean square over the spatial dims (no mean is subtracted), scaled and shifted per
// channel, then thresholded by a learned per-channel tau. Independent of the batch; the same
// computation in training and inference; no running state.
//
//   nu2[n,c] = mean over s of x[n,c,s]^2
//   y        = gamma[c] * x / sqrt(nu2 + e) + beta[c]
//   z        = max(y, tau[c])                            (TLU)
//   e        = eps                      (learnableEps false; eps > 0, default 1e-6)
//            = eps + |epsL|             (learnableEps true; epsL the parameter "eps")
//
// The seed text (004, Section 13) writes xhat = (x - mu)/sqrt(nu2 + eps), subtracting a mean: the
// paper does not (that is the point of FRN; it is why the TLU is needed), and neither do we.
//
// eps: Algorithm 1 of the paper computes rsqrt(nu2 + abs(eps)) with "eps: a scalar constant or
// learnable variable", and Section 3 recommends learning eps when the spatial extent is 1x1 (then
// nu2 = x^2 and without a sizeable eps, FRN degenerates to gamma*sign(x) + beta), with the learned
// value bounded from below by a constant. So with learnableEps the layer has a scalar parameter
// "eps" (epsL, its sign irrelevant) and uses e = eps + |epsL|, where the option eps (default 1e-6)
// is that lower bound. epsL starts at 1e-2 (kLearnedEpsInit; setParams changes it): with
// activations of order 1, e = 1e-4 makes x/sqrt(x^2 + e) so close to sign(x) that its gradient
// vanishes and SGD stalls (an MLP with FRN on the two-moons set reached 50-88% test accuracy in 5
// of 6 seeds at 1e-4, 100% in all 6 at 1e-2; tests/js/survey.test.ts). Without learnableEps, an
// input with one value per sample and channel ([N,C], or all spatial dims 1) is an error.
//
// TLU gradient at ties (y == tau exactly): as torch.maximum(y, tau), the gradient is split, half to
// y and half to tau; elsewhere it goes entirely to the larger one.
#pragma once

#include <vector>

#include "normlab/norm/norm_layer.h"

namespace normlab {

// ---- stateless kernels ------------------------------------------------------------------------

// rstd[n,c] = 1/sqrt(nu2[n,c] + e); z = max(gamma*x*rstd + beta, tau); tlu[n,c,s] = dz/dy
// (1 where y > tau, 0.5 where y == tau, 0 where y < tau). tlu may be null (inference). z may alias x.
// reference: Singh & Krishnan 2019, eqs. (1)-(3) and Algorithm 1.
void frn_forward(float* z, float* rstd, float* tlu,                 // (N,C,S), (N,C), (N,C,S) or null
                 const float* x,                                     // (N,C,S)
                 const float* gamma, const float* beta, const float* tau,  // (C) each
                 double e, int64_t N, int64_t C, int64_t S);

// With g = dz * tlu (the gradient reaching y), xhat = x*rstd and, per (n, c), S values:
//   dtau[c]   = sum over n,s of dz * (1 - tlu)
//   dgamma[c] = sum over n,s of g * xhat,   dbeta[c] = sum over n,s of g
//   dx        = gamma[c] * rstd * (g - xhat * mean_s(g * xhat))    (d rstd/dx_j = -rstd^3 x_j / S)
//   de        = -1/2 * sum over n,c of gamma[c] * rstd^2 * sum_s(g * xhat)   (d rstd/de = -rstd^3/2)
// dgamma, dbeta, dtau, *de are overwritten; dx may alias dz.
void frn_backward(float* dx, float* dgamma, float* dbeta, float* dtau, double* de,  // (N,C,S), (C) x3, scalar
                  const float* dz, const float* x,                   // (N,C,S), (N,C,S)
                  const float* rstd, const float* tlu,               // (N,C), (N,C,S)
                  const float* gamma,                                // (C)
                  int64_t N, int64_t C, int64_t S);

// ---- the layer ------------------------------------------------------------------------------

struct FrnOptions {
  int64_t channels = 0;
  double eps = 1e-6;          // the constant eps, or the lower bound of the learned one
  bool learnable_eps = false;
};

class FilterResponseNorm : public NormLayer {
 public:
  // Parameters: gamma (C, 1), beta (C, 0), tau (C, 0), and with learnableEps eps (1, 1e-2).
  explicit FilterResponseNorm(const FrnOptions& options);
  const FrnOptions& options() const { return options_; }

  static constexpr float kLearnedEpsInit = 1e-2f;

 protected:
  void check_shape(const Shape& shape) const override;
  void forward_train(const float* x, const Shape& shape, float* y) override;
  void forward_infer(const float* x, const Shape& shape, float* y) override;
  void backward_impl(const float* dy, const Shape& shape, float* dx) override;

 private:
  // e: the eps added to nu2 (with learnableEps: eps + |epsL|).
  double effective_eps() const;

  FrnOptions options_;
  std::vector<float> rstd_;  // (N,C) cache of the last training forward
  std::vector<float> tlu_;   // (N,C,S) dz/dy of the last training forward
};

// The method's description (method_info.h), collected by registry.h's method_table().
struct MethodInfo;
const MethodInfo& frn_info();

}  // namespace normlab
