// Fully connected layer with PyTorch nn.Linear semantics: y = x W^T + b, W stored (out, in)
// row-major, PyTorch's default initialisation. Optionally with Weight Normalization (parameters
// weight_g and weight_v, torch.nn.utils.weight_norm) or Cosine Normalization (y = cos(w_o, x_n),
// plain or centred) of its weight (weight_mode.h).
#pragma once

#include <cstdint>
#include <vector>

#include "normlab/core/rng.h"
#include "normlab/nn/module.h"
#include "normlab/nn/weight_mode.h"

namespace normlab {

// ---- stateless kernels ----------------------------------------------------------------------

// y[n, o] = sum_i x[n, i] * weight[o, i] + bias[o]; bias may be null (no bias).
// reference: torch.nn.functional.linear.
void linear_forward(float* y,                                  // (N,O)
                    const float* x,                            // (N,I)
                    const float* weight, const float* bias,    // (O,I), (O) or null
                    int64_t N, int64_t I, int64_t O);

// With y = x W^T + b:
//   dW = dy^T x          (O,I) = (O,N)(N,I)
//   db = sum_n dy[n, :]  (O)
//   dx = dy W            (N,I) = (N,O)(O,I)
// dweight and dbias are overwritten; dx and dbias may be null (not wanted / no bias).
void linear_backward(float* dx, float* dweight, float* dbias,  // (N,I), (O,I), (O)
                     const float* dy, const float* x,          // (N,O), (N,I)
                     const float* weight,                      // (O,I)
                     int64_t N, int64_t I, int64_t O);

// PyTorch's default init of Linear and Conv2d weights and biases: n draws of U(-bound, bound),
// bound = 1/sqrt(fan_in), in order, each rng.uniform(-bound, bound) rounded to float (and kept
// strictly below bound if rounding reaches it). For weights this is kaiming_uniform_(a=sqrt(5)):
// gain = sqrt(2/(1+a^2)) = sqrt(1/3), bound = sqrt(3)*gain/sqrt(fan_in) = 1/sqrt(fan_in).
// reference: torch.nn.Linear.reset_parameters, torch.nn.init.kaiming_uniform_.
void init_uniform_fan_in(float* out, int64_t n, int64_t fan_in, Rng& rng);

// Cosine normalization of a fully connected layer: with z_n = x_n/max(||x_n||, eps) and
// u_o = w_o/max(||w_o||, eps) (both centred first when `centered`),
//   y[n, o] = z_n . u_o (+ bias[o])
// i.e. linear_forward on the normalized rows. z (N,I), zn (N), u (O,I), un (O) receive the
// normalized rows and their (clamped) norms for cosine_linear_backward. bias may be null.
// reference: Luo et al. 2017, "Cosine Normalization" (arXiv 1702.05870), eq. 3;
// torch.nn.functional.cosine_similarity(x[:, None, :], w[None, :, :], dim=2).
void cosine_linear_forward(float* y,                                 // (N,O)
                           float* z, float* zn, float* u, float* un, // (N,I), (N), (O,I), (O)
                           const float* x,                           // (N,I)
                           const float* weight, const float* bias,   // (O,I), (O) or null
                           int64_t N, int64_t I, int64_t O, bool centered);

// With Y = Z U^T + b (Z, U the normalized rows of the forward):
//   dZ = dY U            (N,I) = (N,O)(O,I)
//   dU = dY^T Z          (O,I) = (O,N)(N,I)
//   db = sum_n dY[n, :]  (O)
// then dx and dweight through the normalization (cosine_normalize_backward):
//   dx_n = (dZ_n - (dZ_n . z_n) z_n) / zn_n,  dw_o = (dU_o - (dU_o . u_o) u_o) / un_o
// each minus its row mean when centred. dweight and dbias are overwritten; dx and dbias may be
// null. dz is scratch of N*I floats (unused when dx is null).
void cosine_linear_backward(float* dx, float* dweight, float* dbias,  // (N,I), (O,I), (O)
                            float* dz,                                // (N,I) scratch
                            const float* dy,                          // (N,O)
                            const float* z, const float* zn,          // (N,I), (N)
                            const float* u, const float* un,          // (O,I), (O)
                            int64_t N, int64_t I, int64_t O, bool centered);

// ---- the module -----------------------------------------------------------------------------

class Linear : public Module {
 public:
  // Draws the weight (row-major) and then the bias from rng. Throws Error on sizes < 1.
  // Weight norm: weight_v is the drawn weight and weight_g its row norms, so the layer starts as
  // the plain layer drawn from the same rng (same effective weight, bit for bit).
  Linear(int64_t in_features, int64_t out_features, Rng& rng, bool bias = true,
         WeightMode mode = WeightMode::plain);

  // "linear"; "linear_weightnorm", "linear_cosine", "linear_centered_cosine" in the other modes.
  // With the given values (a plain layer): weight (out*in, row-major (out, in)) and bias (out
  // values, or none for a layer without bias). Throws Error on sizes < 1 or lengths that do not match.
  Linear(int64_t in_features, int64_t out_features, std::vector<float> weight,
         std::vector<float> bias);

  std::string kind() const override;
  std::unique_ptr<Module> clone() const override { return std::make_unique<Linear>(*this); }
  Shape output_shape(const Shape& input) const override;
  void forward(const Tensor& x, Tensor& y, bool training) override;
  void backward(const Tensor& dy, Tensor& dx) override;
  std::vector<Param*> parameters() override;

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  bool has_bias() const { return has_bias_; }
  WeightMode mode() const { return mode_; }
  Param& weight() { return weight_; }  // (out, in): "weight", or "weight_v" with weight norm
  Param& weight_g() { return g_; }     // (out) with weight norm; empty otherwise
  Param& bias() { return bias_; }      // (out); empty without bias
  // The weight the layer multiplies by: weight, or g * v/||v|| with weight norm, or the
  // normalized rows w/max(||w||, eps) with cosine (centred first in the centred mode).
  std::vector<float> effective_weight() const;

 private:
  int64_t in_ = 0, out_ = 0;
  bool has_bias_ = true;
  WeightMode mode_ = WeightMode::plain;
  Param weight_, g_, bias_;
  Tensor x_;  // input of the last training forward (empty shape: none)
  // Weight norm / cosine scratch: the effective (or normalized) weight and its row norms, dW;
  // cosine: the normalized input rows, their norms, dZ.
  std::vector<float> w_, wnorm_, dw_, z_, znorm_, dz_;
};

}  // namespace normlab
