// Generalized Batch Normalization (Yuan, Feng, Norton & Li 2019, arXiv 1812.03271): BatchNorm with
// the mean and standard deviation replaced by a centering statistic S and a deviation measure D
// taken from the theory of generalized deviation measures (Rockafellar, Uryasev & Zabarankin 2006)
// and its risk quadrangle (Rockafellar & Uryasev 2013), per channel over N and the spatial dims:
//
//   y = gamma * (x - S(x)) / (D(x) + eps) + beta                       (the GBN transform, eps
//                                                                      added to D)
//
// Each deviation measure comes with its own statistic: D(X) = min_C E(X - C) for an error measure E
// and S(X) = argmin_C E(X - C) (the paper's Table 1). The pairs implemented, for M values x_1..x_M
// of a channel with order statistics x_(1) <= ... <= x_(M):
//
//   center 'mean'     / deviation 'std':  S = mean(x),  D = sqrt(mean((x - S)^2))
//       error E(X) = ||X||_2; D is the biased standard deviation.
//   center 'median'   / deviation 'mad':  S = x_(ceil(M/2)) (the lower median, as torch.median),
//       D = mean(|x - S|), the mean absolute deviation from the median; error E(X) = E|X|.
//   center 'quantile' / deviation 'superquantile', level alpha in (0, 1):
//       S = q_alpha(x)  = x_(ceil(alpha*M))                 (the lower alpha-quantile, VaR_alpha)
//       D = qbar_alpha(x) - mean(x)                          (the superquantile / CVaR deviation)
//       qbar_alpha(x) = q_alpha + 1/((1-alpha)*M) * sum_i [x_i - q_alpha]_+   (Rockafellar-Uryasev
//       minimisation formula: exact for the empirical distribution, including the fractional atom
//       at q_alpha when alpha*M is not whole); error E(X) = E[alpha/(1-alpha)*[X]_+ + [-X]_+].
//       At alpha = 1/2 this error is E|X|, so quantile/superquantile(0.5) equals median/mad exactly.
//
// Other pairings (e.g. the mean with the MAD) are not of the form D = min_C E(X - C), S = argmin,
// and are rejected.
//
// eps placement: the paper adds eps to D; BatchNorm uses sqrt(var + eps). So mean/std is
// BatchNorm's normalization only up to eps: (x - mu)/(sigma + eps) versus (x - mu)/sqrt(sigma^2 +
// eps), and the backward differs by the factor (sigma + eps)/sigma on the deviation term (see
// gbn_backward). With eps -> 0 both are (x - mu)/sigma
// (tests/cpp/methods/generalizedbatchnorm_test.cpp).
//
// Running estimates (the paper uses BN's moving averages): runningCenter and runningDeviation,
// running = (1 - momentum) * running + momentum * batch, with the batch S and D as used (no Bessel
// correction: it is specific to the variance); inference is
// y = gamma * (x - runningCenter) / (runningDeviation + eps) + beta.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "normlab/norm/norm_layer.h"

namespace normlab {

// The statistic/deviation pairs of the paper's Table 1 that are implemented.
enum class GbnPair { kMeanStd, kMedianMad, kQuantileSuperquantile };

// ---- stateless kernels ----------------------------------------------------------------------

// Per channel c, over the M = N*S values x[n, c, s]: center[c] = S, deviation[c] = D (undivided by
// eps) and selected[c] = the within-channel index j = n*S + s of the order statistic S is (median,
// quantile; -1 for the mean). Ties are broken by j: values are ranked by (value, j), so the chosen
// element, and every subgradient below, is deterministic. A channel containing NaN gets NaN for
// both (and selected -1). `level` is alpha for kQuantileSuperquantile, unused otherwise.
// reference: Yuan et al. 2019, Table 1 (deviation measures and their statistics); Rockafellar &
// Uryasev 2013, "The fundamental risk quadrangle" (the mean-based and quantile-based quadrangles);
// Rockafellar & Uryasev 2000 (CVaR as the minimum of C + E[X - C]_+ / (1 - alpha), at C = VaR).
void gbn_statistics(double* center, double* deviation, int64_t* selected,  // (C), (C), (C)
                    const float* x,                                          // (N,C,S)
                    GbnPair pair, double level, int64_t N, int64_t C, int64_t S);

// Backward of y = gamma[c] * xhat + beta[c], xhat = (x - S) / (D + eps), through S and D. Per
// channel, with A = sum dy, B = sum dy * xhat and k = gamma / (D + eps):
//   dx_i = k * (dy_i - s_i * A - d_i * B),   s_i = dS/dx_i,  d_i = dD/dx_i,
//   dgamma = B,  dbeta = A.
// The (sub)gradients, with rank r_i of x_i in the (value, j) order, kth = ceil(alpha*M) the rank
// of the selected element sel, above_i = [r_i > kth], below_i = [r_i < kth]:
//   mean/std:           s_i = 1/M,  d_i = (x_i - S) / (M * D)          (0 when D = 0)
//   median/mad:         s_i = [i = sel],
//                       d_i = (above_i - below_i)/M - [i = sel] * ((M - kth) - (kth - 1))/M
//                       (d|t|/dt taken as 0 at the selected element itself)
//   quantile/superq.:   s_i = [i = sel],
//                       d_i = above_i/((1-alpha)M) - 1/M + [i = sel] * (1 - (M - kth)/((1-alpha)M))
//                       (the weight of the fractional atom at q_alpha; 0 when alpha*M is whole)
// An order statistic is a piecewise-linear function of x whose gradient away from ties is the
// indicator of the element holding that rank; with ties, these are the gradients of the linear
// piece that the (value, j) order selects (a Clarke subgradient). dx may alias dy.
// Mean/std against BatchNorm's backward: BN has xhat * mean(dy * xhat) where this has
// xhat * mean(dy * xhat) * (D + eps)/D, from d(D + eps)/dx = dD/dx instead of d sqrt(var + eps)/dx.
void gbn_backward(float* dx, double* sum_dy, double* sum_dy_xhat,   // (N,C,S), (C), (C)
                  const float* dy, const float* x,                   // (N,C,S), (N,C,S)
                  const double* center, const double* deviation,     // (C), (C)
                  const int64_t* selected, const float* gamma,       // (C), (C)
                  double eps, GbnPair pair, double level, int64_t N, int64_t C, int64_t S);

// ---- the layer ------------------------------------------------------------------------------

struct GeneralizedBatchNormOptions {
  int64_t channels = 0;
  std::string center = "mean";    // mean | median | quantile
  std::string deviation = "std";  // std | mad | superquantile (paired with the center, see above)
  double level = 0.5;             // alpha in (0, 1) of quantile/superquantile; unused by the others
  double eps = 1e-5;
  double momentum = 0.1;
  bool affine = true;
};

// The paper's partner of a center ("mean" -> "std", ...) or of a deviation ("std" -> "mean", ...);
// "" for an unknown name.
std::string gbn_partner(const std::string& center_or_deviation);

class GeneralizedBatchNorm : public NormLayer {
 public:
  explicit GeneralizedBatchNorm(const GeneralizedBatchNormOptions& options);
  const GeneralizedBatchNormOptions& options() const { return options_; }
  GbnPair pair() const { return pair_; }

  // AdaBN: runningCenter and runningDeviation become S and D of all of x.
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
  GeneralizedBatchNormOptions options_;
  GbnPair pair_ = GbnPair::kMeanStd;
  std::vector<double> center_, deviation_;  // (C) batch S and D of the last training forward
  std::vector<int64_t> selected_;           // (C) its order statistics' within-channel indices
};

// The method's description (method_info.h), collected by registry.h's method_table().
struct MethodInfo;
const MethodInfo& generalizedbatchnorm_info();

}  // namespace normlab
