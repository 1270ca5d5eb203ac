// Local Response Normalization (Krizhevsky, Sutskever & Hinton 2012, "ImageNet Classification with
// Deep Convolutional Neural Networks", Section 3.3), with PyTorch LocalResponseNorm semantics:
// across channels, at every sample and spatial position, a channel is divided by a power of the sum
// of squares of its neighbouring channels ("lateral inhibition"). No parameters, no state, the same
// computation in training and inference; input rank >= 3 ([N,C,L,...]), as PyTorch requires.
//
//   y[n,c,s] = x[n,c,s] * D[n,c,s]^(-beta),   D = k + a * sum over c' in W(c) of x[n,c',s]^2
//   W(c)     = c - size/2 .. c + (size-1)/2 (integer division), channels outside [0, C) count 0
//   a        = alpha/size  (alphaScaling 'size': PyTorch, Caffe; torch pads with zeros and
//                           averages over the window with count_include_pad, i.e. divides by size)
//            = alpha       (alphaScaling 'none': the AlexNet paper's formula, and TensorFlow's
//                           tf.nn.local_response_normalization(depth_radius=r, bias, alpha, beta),
//                           which is size = 2r+1, k = bias, the same alpha and beta)
//
// The AlexNet paper uses k = 2, n = size = 5, alpha = 1e-4, beta = 0.75 with alphaScaling 'none';
// the seed text (004, Section 3) quotes alpha = 0.001 for the same setting, which is not the paper's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "normlab/norm/norm_layer.h"

namespace normlab {

// ---- stateless kernels ------------------------------------------------------------------------

// y = x * D^(-beta) and the cache D, for x viewed as (N, C, S). a is the effective alpha (alpha/size
// or alpha). y may alias x.
// reference: Krizhevsky et al. 2012, Section 3.3; torch.nn.functional.local_response_norm.
void lrn_forward(float* y, float* denom,                   // (N,C,S), (N,C,S): D
                 const float* x,                           // (N,C,S)
                 int64_t size, double a, double beta, double k,
                 int64_t N, int64_t C, int64_t S);

// With y_c = x_c * D_c^(-beta) and dD_c/dx_j = 2*a*x_j for every j in W(c):
//   dx_j = dy_j * D_j^(-beta) - 2*a*beta * x_j * sum over c with j in W(c) of dy_c * x_c * D_c^(-beta-1)
// where j in W(c) <=> c in j - (size-1)/2 .. j + size/2 (the window reflected). dx may alias dy.
void lrn_backward(float* dx,                               // (N,C,S)
                  const float* dy, const float* x,         // (N,C,S), (N,C,S)
                  const float* denom,                      // (N,C,S): D of the forward
                  int64_t size, double a, double beta,
                  int64_t N, int64_t C, int64_t S);

// ---- the layer ------------------------------------------------------------------------------

enum class AlphaScaling { kSize, kNone };

struct LrnOptions {
  int64_t size = 0;  // required; >= 1
  double alpha = 1e-4;
  double beta = 0.75;
  double k = 1.0;
  AlphaScaling alpha_scaling = AlphaScaling::kSize;
};

// The API's names of AlphaScaling: "size", "none".
const char* alpha_scaling_name(AlphaScaling s);
// Reads options[key] ("size" or "none"; absent or null: `fallback`); throws Error otherwise.
AlphaScaling alpha_scaling_from_json(const nlohmann::json& options, const std::string& who,
                                     const std::string& key, AlphaScaling fallback);

class LocalResponseNorm : public NormLayer {
 public:
  // Throws Error unless size >= 1, alpha and beta are finite and >= 0, k is finite and > 0 (so
  // D >= k > 0 and the power is always defined; PyTorch checks none of these).
  explicit LocalResponseNorm(const LrnOptions& options);
  const LrnOptions& options() const { return options_; }

 protected:
  void check_shape(const Shape& shape) const override;
  void forward_train(const float* x, const Shape& shape, float* y) override;
  void forward_infer(const float* x, const Shape& shape, float* y) override;
  void backward_impl(const float* dy, const Shape& shape, float* dx) override;

 private:
  double effective_alpha() const;

  LrnOptions options_;
  std::vector<float> denom_;  // (N,C,S) D of the last training forward
};

// The method's description (method_info.h), collected by registry.h's method_table().
struct MethodInfo;
const MethodInfo& lrn_info();

}  // namespace normlab
