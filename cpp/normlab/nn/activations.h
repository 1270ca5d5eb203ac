// Elementwise activations (any shape): ReLU and Tanh, with PyTorch semantics.
#pragma once

#include <cstdint>

#include "normlab/nn/module.h"

namespace normlab {

// ---- stateless kernels ----------------------------------------------------------------------

// y = max(x, 0) (NaN stays NaN, as in PyTorch). y may alias x.
// reference: torch.nn.ReLU.
void relu_forward(float* y, const float* x, int64_t n);  // (n), (n)

// dx = dy where y > 0, else 0 (so the gradient at x = 0 is 0, PyTorch's threshold_backward).
// Reads the forward's output y, not x. dx may alias dy.
void relu_backward(float* dx, const float* dy, const float* y, int64_t n);  // (n), (n), (n)

// y = tanh(x). y may alias x.
// reference: torch.nn.Tanh.
void tanh_forward(float* y, const float* x, int64_t n);  // (n), (n)

// d tanh(x)/dx = 1 - tanh(x)^2, so dx = dy * (1 - y*y) from the forward's output y. dx may alias dy.
void tanh_backward(float* dx, const float* dy, const float* y, int64_t n);  // (n), (n), (n)

// ---- the modules ----------------------------------------------------------------------------

// Both keep the output of the last training forward (backward needs only y).
class ReLU : public Module {
 public:
  std::string kind() const override { return "relu"; }
  std::unique_ptr<Module> clone() const override { return std::make_unique<ReLU>(*this); }
  Shape output_shape(const Shape& input) const override { return input; }
  void forward(const Tensor& x, Tensor& y, bool training) override;
  void backward(const Tensor& dy, Tensor& dx) override;

 private:
  Tensor y_;
  bool cached_ = false;
};

class Tanh : public Module {
 public:
  std::string kind() const override { return "tanh"; }
  std::unique_ptr<Module> clone() const override { return std::make_unique<Tanh>(*this); }
  Shape output_shape(const Shape& input) const override { return input; }
  void forward(const Tensor& x, Tensor& y, bool training) override;
  void backward(const Tensor& dy, Tensor& dx) override;

 private:
  Tensor y_;
  bool cached_ = false;
};

}  // namespace normlab
