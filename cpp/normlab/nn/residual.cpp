#include "normlab/nn/residual.h"

#include "normlab/core/error.h"

namespace normlab {

void residual_forward(float* y, const float* x, const float* fx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] + fx[i];
}

void residual_backward(float* dx, const float* dy, const float* dfx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] + dfx[i];
}

Residual::Residual(std::vector<std::unique_ptr<Module>> body) : body_(std::move(body)) {
  for (const auto& m : body_) {
    if (!m) fail("residual: a layer of the block is null");
  }
  outs_.resize(body_.size());
}

std::string Residual::kind() const {
  std::string out = "residual(";
  for (size_t i = 0; i < body_.size(); ++i) out += (i ? " " : "") + body_[i]->kind();
  return out + ")";
}

std::unique_ptr<Module> Residual::clone() const {
  std::vector<std::unique_ptr<Module>> copy;
  for (const auto& m : body_) copy.push_back(m->clone());
  return std::make_unique<Residual>(std::move(copy));
}

Shape Residual::output_shape(const Shape& input) const {
  Shape shape = input;
  for (const auto& m : body_) shape = m->output_shape(shape);
  if (shape != input) {
    fail("residual: y = x + f(x) needs f(x) shaped as x, but x is ", to_string(input), " and f(x) is ",
         to_string(shape), " (", kind(), ")");
  }
  return input;
}

void Residual::forward(const Tensor& x, Tensor& y, bool training) {
  if (training) y_shape_.clear();
  for (size_t i = 0; i < body_.size(); ++i) body_[i]->forward(i == 0 ? x : outs_[i - 1], outs_[i], training);
  const Tensor& fx = body_.empty() ? x : outs_.back();
  if (fx.shape != x.shape) {
    fail("residual: y = x + f(x) needs f(x) shaped as x, but x is ", to_string(x.shape), " and f(x) is ",
         to_string(fx.shape), " (", kind(), ")");
  }
  y.resize(x.shape);
  residual_forward(y.ptr(), x.ptr(), fx.ptr(), x.numel());
  if (training) y_shape_ = x.shape;
}

void Residual::backward(const Tensor& dy, Tensor& dx) {
  if (y_shape_.empty()) fail("residual: backward needs a training-mode forward first");
  if (dy.shape != y_shape_) {
    fail("residual: dy shape ", to_string(dy.shape), " does not match the output shape ", to_string(y_shape_),
         " of the last training forward");
  }
  if (body_.empty()) {
    dx.resize(dy.shape);
    residual_backward(dx.ptr(), dy.ptr(), dy.ptr(), dy.numel());
    return;
  }
  body_.back()->backward(dy, grad_);
  for (size_t i = body_.size() - 1; i-- > 0;) {
    body_[i]->backward(grad_, grad_next_);
    std::swap(grad_, grad_next_);
  }
  dx.resize(dy.shape);
  residual_backward(dx.ptr(), dy.ptr(), grad_.ptr(), dy.numel());
}

std::vector<Param*> Residual::parameters() {
  std::vector<Param*> all;
  for (auto& m : body_) {
    for (Param* p : m->parameters()) all.push_back(p);
  }
  return all;
}

}  // namespace normlab
