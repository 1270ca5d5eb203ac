#include "normlab/nn/activations.h"

#include <cmath>

#include "normlab/core/error.h"

namespace normlab {

namespace {

void check_dy(const char* who, bool cached, const Tensor& y, const Tensor& dy) {
  if (!cached) fail(who, ": backward needs a training-mode forward first");
  if (dy.shape != y.shape) {
    fail(who, ": dy shape ", to_string(dy.shape), " does not match the output shape ",
         to_string(y.shape), " of the last training forward");
  }
}

}  // namespace

// Both loops read every operand unconditionally and select, so they compile to vector compares and
// blends (a conditional load, `y > 0 ? dy[i] : 0`, keeps them scalar and branchy).
void relu_forward(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = v < 0.0f ? 0.0f : v;
  }
}

void relu_backward(float* dx, const float* dy, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = dy[i];
    dx[i] = y[i] > 0.0f ? g : 0.0f;
  }
}

void tanh_forward(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

void tanh_backward(float* dx, const float* dy, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

void ReLU::forward(const Tensor& x, Tensor& y, bool training) {
  y.resize(x.shape);
  relu_forward(y.ptr(), x.ptr(), x.numel());
  if (training) {
    y_ = y;
    cached_ = true;
  }
}

void ReLU::backward(const Tensor& dy, Tensor& dx) {
  check_dy("relu", cached_, y_, dy);
  dx.resize(dy.shape);
  relu_backward(dx.ptr(), dy.ptr(), y_.ptr(), dy.numel());
}

void Tanh::forward(const Tensor& x, Tensor& y, bool training) {
  y.resize(x.shape);
  tanh_forward(y.ptr(), x.ptr(), x.numel());
  if (training) {
    y_ = y;
    cached_ = true;
  }
}

void Tanh::backward(const Tensor& dy, Tensor& dx) {
  check_dy("tanh", cached_, y_, dy);
  dx.resize(dy.shape);
  tanh_backward(dx.ptr(), dy.ptr(), y_.ptr(), dy.numel());
}

}  // namespace normlab
