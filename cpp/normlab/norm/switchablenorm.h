// Switchable Normalization (Luo, Ren, Peng, Zhang & Li 2019, arXiv 1806.10779): one normalizer
// whose mean and variance are learned softmax mixtures of InstanceNorm's, LayerNorm's and
// BatchNorm's, all computed from the same per-(n, c) moments (the paper's Section 3: the SN
// transform, the shared statistics and the softmax weights; the seed's §12 writes the same formulas):
//
//   mu_in[n,c]  = mean_s x,               var_in[n,c] = mean_s (x - mu_in)^2        (biased, 1/HW)
//   mu_ln[n]    = mean_c mu_in,           var_ln[n]   = mean_c (var_in + mu_in^2) - mu_ln^2
//   mu_bn[c]    = mean_n mu_in,           var_bn[c]   = mean_n (var_in + mu_in^2) - mu_bn^2
//   mu  = sum_k softmax(meanWeight)_k mu_k,   var = sum_k softmax(varWeight)_k var_k,  k in IN,LN,BN
//   y   = gamma[c] * (x - mu[n,c]) / sqrt(var[n,c] + eps) + beta[c]
//
// var_ln and var_bn are then exactly the biased variances over (C, spatial) and (N, spatial); they
// are evaluated as mean(var_in) + mean((mu_in - mu_k)^2), the same number without the cancellation
// of E[x^2] - E[x]^2 for inputs far from zero.
//
// Choices where the sources differ (see also README):
// - var_in is biased (1/HW) as the paper and the seed write it; the official code
//   (switchablenorms/Switchable-Normalization, SwitchNorm2d) uses x.var(-1), which is unbiased.
//   Biased keeps the identities above exact, so a one-hot softmax gives IN, LN or BN exactly.
// - Running statistics (the BN part at inference): the official code's moving average
//   running = momentum' * running + (1 - momentum') * batch with momentum' = 0.9, written here in
//   PyTorch's convention running = (1 - momentum) * running + momentum * batch, momentum 0.1; of
//   mu_bn and the biased var_bn as used (no Bessel correction, as the official code). runningVar
//   starts at 1 as in every BatchNorm here (the official code starts it at 0). The paper's other
//   option, "batch average" (statistics averaged over training batches after training, frozen
//   weights), is not a mode of the layer; set_population_statistics (AdaBN) sets them from one
//   given set of inputs.
// - IN and LN statistics are the sample's own in both modes; only the BN part switches.
// - Inputs [N, C] (or one spatial element) have no instance statistics to speak of (mu_in = x,
//   var_in = 0, so IN would output beta): an error unless useIN is false, which drops IN from both
//   mixtures (meanWeight and varWeight then have 2 entries, LN and BN), as the official code's
//   SwitchNorm1d for [N, C] inputs does. useBN false likewise drops BN (the official code's
//   using_bn=False) and with it the running state and the batch dependence.
#pragma once

#include <cstdint>
#include <vector>

#include "normlab/norm/norm_layer.h"

namespace normlab {

// ---- stateless kernels ----------------------------------------------------------------------

// The shared moments and the three normalizers' statistics, for x viewed as (N, C, S).
// reference: Luo et al. 2019, Section 3, the statistics of IN, LN and BN (the seed's §12).
void switchable_moments(double* mu_in, double* var_in,     // (N,C), (N,C)
                        double* mu_ln, double* var_ln,     // (N), (N)
                        double* mu_bn, double* var_bn,     // (C), (C)
                        const float* x,                    // (N,C,S)
                        int64_t N, int64_t C, int64_t S);

// mean[n,c] = sum_k wm[k] mu_k, var = sum_k wv[k] var_k (k = IN, LN, BN; a dropped normalizer has
// weight 0), rstd = 1/sqrt(var + eps), y = gamma[c] * (x - mean) * rstd + beta[c]. At inference,
// mu_bn/var_bn are the running statistics. y may alias x.
// reference: Luo et al. 2019, Section 3, the SN transform and the softmax weights.
void switchable_forward(float* y, float* mean, float* rstd,                   // (N,C,S), (N,C), (N,C)
                        const float* x,                                        // (N,C,S)
                        const double* mu_in, const double* var_in,            // (N,C), (N,C)
                        const double* mu_ln, const double* var_ln,            // (N), (N)
                        const double* mu_bn, const double* var_bn,            // (C), (C)
                        const double* wm, const double* wv,                   // (3), (3) softmaxes
                        const float* gamma, const float* beta,                // (C), (C)
                        double eps, int64_t N, int64_t C, int64_t S);

// Backward of the training forward (mu_bn, var_bn from the batch). With g = dy * gamma[c],
// xhat = (x - mean) * rstd, per (n, c):
//   Gm = dL/dmean = -rstd * sum_s g,     Gv = dL/dvar = -rstd^2/2 * sum_s g * xhat,
// their averages over channels (..L[n]) and over the batch (..B[c]), and
//   Dt  = wv_in Gv + wv_ln GvL[n] + wv_bn GvB[c]                  (dL/d mean_s x^2)
//   Dmu = wm_in Gm + wm_ln GmL[n] + wm_bn GmB[c]
//         + 2 wv_ln (mu_in - mu_ln[n]) GvL[n] + 2 wv_bn (mu_in - mu_bn[c]) GvB[c]
//   dx  = g * rstd + Dmu / S + 2 (x - mu_in) Dt / S
// (the chain rule through the shared moments mu_in and mean_s x^2, regrouped around mu_in so that
// no E[x^2] - E[x]^2 cancellation occurs). The mixture weights, through the softmax (p = wm):
//   dmeanWeight[k] = p_k * sum_{n,c} Gm (mu_k - mean),  dvarWeight[k] = wv_k * sum Gv (var_k - var)
// (dL/dlogit_j = p_j (dL/dp_j - sum_k p_k dL/dp_k), with sum_k p_k mu_k = mean). dmw, dvw have 3
// entries (IN, LN, BN; 0 for a dropped one); dgamma = sum dy*xhat, dbeta = sum dy. dx may alias dy.
void switchable_backward(float* dx, float* dgamma, float* dbeta,            // (N,C,S), (C), (C)
                         double* dmw, double* dvw,                           // (3), (3)
                         const float* dy, const float* x,                    // (N,C,S), (N,C,S)
                         const float* mean, const float* rstd,               // (N,C), (N,C)
                         const double* mu_in, const double* var_in,          // (N,C), (N,C)
                         const double* mu_ln, const double* var_ln,          // (N), (N)
                         const double* mu_bn, const double* var_bn,          // (C), (C)
                         const double* wm, const double* wv, const float* gamma,  // (3), (3), (C)
                         int64_t N, int64_t C, int64_t S);

// ---- the layer ------------------------------------------------------------------------------

struct SwitchableNormOptions {
  int64_t channels = 0;
  double eps = 1e-5;
  double momentum = 0.1;
  bool affine = true;
  bool use_in = true;  // useIN: include InstanceNorm's statistics (needs > 1 spatial element)
  bool use_bn = true;  // useBN: include BatchNorm's statistics (and keep running statistics)
};

class SwitchableNorm : public NormLayer {
 public:
  explicit SwitchableNorm(const SwitchableNormOptions& options);
  const SwitchableNormOptions& options() const { return options_; }

  // The current mixture weights softmax(meanWeight), softmax(varWeight), as (IN, LN, BN) with 0
  // for a dropped normalizer.
  void mixture(double* wm, double* wv) const;

  // AdaBN: runningMean and runningVar become the BN statistics of all of x (false without BN).
  bool set_population_statistics(const float* x, const Shape& shape) override;

 protected:
  void check_shape(const Shape& shape) const override;
  bool uses_batch_statistics(bool training) const override { return training && options_.use_bn; }
  void forward_train(const float* x, const Shape& shape, float* y) override;
  void forward_infer(const float* x, const Shape& shape, float* y) override;
  void backward_impl(const float* dy, const Shape& shape, float* dx) override;
  void check_state_values(const std::string& name, const float* values, size_t n) const override;

 private:
  struct Stats {
    std::vector<double> mu_in, var_in, mu_ln, var_ln, mu_bn, var_bn;  // (N,C) (N,C) (N) (N) (C) (C)
    std::vector<float> mean, rstd;                                    // (N,C)
    double wm[3], wv[3];                                              // the softmaxes used
  };
  void run(const float* x, const Shape& shape, float* y, bool training, Stats& st);

  SwitchableNormOptions options_;
  size_t weights_ = 0;  // index of meanWeight in params_ (varWeight follows)
  Stats cache_;         // of the last training forward
};

// The method's description (method_info.h), collected by registry.h's method_table().
struct MethodInfo;
const MethodInfo& switchablenorm_info();

}  // namespace normlab
