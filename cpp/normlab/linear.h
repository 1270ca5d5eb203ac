// Fully connected layer with PyTorch nn.Linear semantics: y = x W^T + b, W stored (out, in)
// row-major, PyTorch's default initialisation.
#pragma once

#include <cstdint>
#include <vector>

#include "normlab/module.h"
#include "normlab/rng.h"

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

// ---- the module -----------------------------------------------------------------------------

class Linear : public Module {
 public:
  // Draws the weight (row-major) and then the bias from rng. Throws Error on sizes < 1.
  Linear(int64_t in_features, int64_t out_features, Rng& rng, bool bias = true);
  // With the given values: weight (out*in, row-major (out, in)) and bias (out values, or none for
  // a layer without bias). Throws Error on sizes < 1 or lengths that do not match.
  Linear(int64_t in_features, int64_t out_features, std::vector<float> weight,
         std::vector<float> bias);

  std::string kind() const override { return "linear"; }
  std::unique_ptr<Module> clone() const override { return std::make_unique<Linear>(*this); }
  Shape output_shape(const Shape& input) const override;
  void forward(const Tensor& x, Tensor& y, bool training) override;
  void backward(const Tensor& dy, Tensor& dx) override;
  std::vector<Param*> parameters() override;

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  bool has_bias() const { return has_bias_; }
  Param& weight() { return weight_; }  // (out, in)
  Param& bias() { return bias_; }      // (out); empty without bias

 private:
  int64_t in_ = 0, out_ = 0;
  bool has_bias_ = true;
  Param weight_, bias_;
  Tensor x_;  // input of the last training forward (empty shape: none)
};

}  // namespace normlab
