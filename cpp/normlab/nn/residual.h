// A residual block (He et al. 2016, "Deep Residual Learning for Image Recognition", arXiv
// 1512.03385): y = x + f(x), f a sequence of modules whose output has the shape of its input.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "normlab/nn/module.h"

namespace normlab {

// ---- stateless kernels ----------------------------------------------------------------------

// y = x + fx. y may alias either input.
void residual_forward(float* y, const float* x, const float* fx, int64_t n);  // (n), (n), (n)

// With y = x + f(x): dL/dx = dy + (df/dx)^T dy, the second term being what f's backward gives for
// dy (dfx here). dx may alias either input.
void residual_backward(float* dx, const float* dy, const float* dfx, int64_t n);  // (n), (n), (n)

// ---- the module -----------------------------------------------------------------------------

class Residual : public Module {
 public:
  // f is `body`, applied in order; an empty body is the identity (y = 2x). Throws Error on a null
  // module.
  explicit Residual(std::vector<std::unique_ptr<Module>> body);

  // "residual(conv2d batchnorm relu conv2d batchnorm)": the body's kinds.
  std::string kind() const override;
  std::unique_ptr<Module> clone() const override;
  // The input shape, if the body takes it and gives it back; throws Error naming both shapes.
  Shape output_shape(const Shape& input) const override;
  void forward(const Tensor& x, Tensor& y, bool training) override;
  void backward(const Tensor& dy, Tensor& dx) override;
  std::vector<Param*> parameters() override;

  size_t size() const { return body_.size(); }
  Module& layer(size_t i) { return *body_.at(i); }
  const Module& layer(size_t i) const { return *body_.at(i); }
  // The output of body layer i in the last forward (the input of layer i + 1).
  const Tensor& output(size_t i) const { return outs_.at(i); }

 private:
  std::vector<std::unique_ptr<Module>> body_;
  std::vector<Tensor> outs_;   // outs_[i]: output of body layer i in the last forward
  Tensor grad_, grad_next_;    // gradients flowing back through the body
  Shape y_shape_;              // output shape of the last training forward (empty: none)
};

}  // namespace normlab
