#include "normlab/nn/linear.h"

#include <cmath>

#include "normlab/core/error.h"
#include "normlab/nn/gemm.h"

namespace normlab {

namespace {

void check_size(const char* who, const char* what, int64_t v) {
  if (v < 1) fail(who, ": ", what, " must be a positive integer, got ", v);
}

}  // namespace

void linear_forward(float* y, const float* x, const float* weight, const float* bias, int64_t N,
                    int64_t I, int64_t O) {
  gemm(false, Trans::N, Trans::T, N, O, I, x, I, weight, I, y, O);  // Y = X W^T
  if (bias == nullptr) return;
  for (int64_t n = 0; n < N; ++n) {
    float* yn = y + n * O;
    for (int64_t o = 0; o < O; ++o) yn[o] += bias[o];
  }
}

void linear_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                     const float* weight, int64_t N, int64_t I, int64_t O) {
  gemm(false, Trans::T, Trans::N, O, I, N, dy, O, x, I, dweight, I);  // dW = dY^T X
  if (dbias != nullptr) {
    // db = sum over n of dY's rows, in row order (vectorised along o).
    for (int64_t o = 0; o < O; ++o) dbias[o] = dy[o];
    for (int64_t n = 1; n < N; ++n) {
      const float* dyn = dy + n * O;
      for (int64_t o = 0; o < O; ++o) dbias[o] += dyn[o];
    }
  }
  if (dx != nullptr) gemm(false, Trans::N, Trans::N, N, I, O, dy, O, weight, I, dx, I);  // dX = dY W
}

void cosine_linear_forward(float* y, float* z, float* zn, float* u, float* un, const float* x,
                           const float* weight, const float* bias, int64_t N, int64_t I, int64_t O,
                           bool centered) {
  cosine_normalize(u, un, weight, O, I, I, 1, centered);
  cosine_normalize(z, zn, x, N, I, I, 1, centered);
  linear_forward(y, z, u, bias, N, I, O);
}

void cosine_linear_backward(float* dx, float* dweight, float* dbias, float* dz, const float* dy,
                            const float* z, const float* zn, const float* u, const float* un,
                            int64_t N, int64_t I, int64_t O, bool centered) {
  // dU = dY^T Z into dweight, dZ = dY U into dz: linear_backward's products with x = Z, W = U.
  linear_backward(dx != nullptr ? dz : nullptr, dweight, dbias, dy, z, u, N, I, O);
  cosine_normalize_backward(dweight, dweight, u, un, O, I, I, 1, centered);
  if (dx != nullptr) cosine_normalize_backward(dx, dz, z, zn, N, I, I, 1, centered);
}

void init_uniform_fan_in(float* out, int64_t n, int64_t fan_in, Rng& rng) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  for (int64_t i = 0; i < n; ++i) {
    float v = static_cast<float>(rng.uniform(-bound, bound));
    while (static_cast<double>(v) >= bound) v = std::nextafter(v, 0.0f);
    out[i] = v;
  }
}

Linear::Linear(int64_t in_features, int64_t out_features, Rng& rng, bool bias, WeightMode mode)
    : in_(in_features), out_(out_features), has_bias_(bias), mode_(mode) {
  check_size("linear", "in_features", in_features);
  check_size("linear", "out_features", out_features);
  if (in_features * out_features > kMaxElements) {
    fail("linear: weight of ", out_features, "x", in_features, " has more than ", kMaxElements,
         " elements");
  }
  const size_t n = static_cast<size_t>(in_features * out_features);
  weight_ = Param{"weight", std::vector<float>(n), std::vector<float>(n, 0.0f), true};
  init_uniform_fan_in(weight_.value.data(), in_features * out_features, in_features, rng);
  if (bias) {
    const size_t m = static_cast<size_t>(out_features);
    bias_ = Param{"bias", std::vector<float>(m), std::vector<float>(m, 0.0f), false};
    init_uniform_fan_in(bias_.value.data(), out_features, in_features, rng);
  }
  if (mode == WeightMode::weight_norm) {
    weight_.name = "weight_v";
    const size_t m = static_cast<size_t>(out_features);
    g_ = Param{"weight_g", std::vector<float>(m), std::vector<float>(m, 0.0f), false};
    for (int64_t o = 0; o < out_features; ++o) {
      g_.value[static_cast<size_t>(o)] = l2_norm(weight_.value.data() + o * in_features, in_features);
    }
  }
}

std::string Linear::kind() const {
  return mode_ == WeightMode::plain ? "linear" : std::string("linear_") + weight_mode_name(mode_);
}

std::vector<float> Linear::effective_weight() const {
  if (mode_ == WeightMode::plain) return weight_.value;
  std::vector<float> w(weight_.value.size()), norms(static_cast<size_t>(out_));
  if (mode_ == WeightMode::weight_norm) {
    weight_norm_forward(w.data(), norms.data(), g_.value.data(), weight_.value.data(), out_, in_);
  } else {
    cosine_normalize(w.data(), norms.data(), weight_.value.data(), out_, in_, in_, 1,
                     mode_ == WeightMode::centered_cosine);
  }
  return w;
}

Linear::Linear(int64_t in_features, int64_t out_features, std::vector<float> weight,
               std::vector<float> bias)
    : in_(in_features), out_(out_features), has_bias_(!bias.empty()) {
  check_size("linear", "in_features", in_features);
  check_size("linear", "out_features", out_features);
  if (in_features * out_features > kMaxElements ||
      weight.size() != static_cast<size_t>(in_features * out_features)) {
    fail("linear: weight of ", out_features, "x", in_features, " needs ",
         in_features * out_features, " values, got ", weight.size());
  }
  if (has_bias_ && bias.size() != static_cast<size_t>(out_features)) {
    fail("linear: bias needs ", out_features, " values (or none), got ", bias.size());
  }
  const size_t n = weight.size(), m = bias.size();
  weight_ = Param{"weight", std::move(weight), std::vector<float>(n, 0.0f), true};
  if (has_bias_) bias_ = Param{"bias", std::move(bias), std::vector<float>(m, 0.0f), false};
}

Shape Linear::output_shape(const Shape& input) const {
  if (input.size() != 2) {
    fail("linear: input shape ", to_string(input), " must have 2 dims [N,features]");
  }
  if (input[1] != in_) {
    fail("linear: input shape ", to_string(input), " has ", input[1], " features, layer takes ",
         in_);
  }
  if (input[0] < 1) fail("linear: input shape ", to_string(input), " has an empty batch");
  if (input[0] * out_ > kMaxElements) {
    fail("linear: output of input shape ", to_string(input), " would have more than ",
         kMaxElements, " elements");
  }
  return {input[0], out_};
}

void Linear::forward(const Tensor& x, Tensor& y, bool training) {
  y.resize(output_shape(x.shape));
  if (training) x_ = x;
  const float* bias = has_bias_ ? bias_.value.data() : nullptr;
  const int64_t N = x.shape[0];
  if (mode_ == WeightMode::plain) {
    linear_forward(y.ptr(), x.ptr(), weight_.value.data(), bias, N, in_, out_);
    return;
  }
  w_.resize(weight_.value.size());
  wnorm_.resize(static_cast<size_t>(out_));
  if (mode_ == WeightMode::weight_norm) {
    weight_norm_forward(w_.data(), wnorm_.data(), g_.value.data(), weight_.value.data(), out_, in_);
    linear_forward(y.ptr(), x.ptr(), w_.data(), bias, N, in_, out_);
    return;
  }
  z_.resize(static_cast<size_t>(N * in_));
  znorm_.resize(static_cast<size_t>(N));
  cosine_linear_forward(y.ptr(), z_.data(), znorm_.data(), w_.data(), wnorm_.data(), x.ptr(),
                        weight_.value.data(), bias, N, in_, out_,
                        mode_ == WeightMode::centered_cosine);
}

void Linear::backward(const Tensor& dy, Tensor& dx) {
  if (x_.shape.empty()) fail("linear: backward needs a training-mode forward first");
  const Shape out = {x_.shape[0], out_};
  if (dy.shape != out) {
    fail("linear: dy shape ", to_string(dy.shape), " does not match the output shape ",
         to_string(out), " of the last training forward");
  }
  dx.resize(x_.shape);
  float* dbias = has_bias_ ? bias_.grad.data() : nullptr;
  const int64_t N = x_.shape[0];
  if (mode_ == WeightMode::plain) {
    linear_backward(dx.ptr(), weight_.grad.data(), dbias, dy.ptr(), x_.ptr(), weight_.value.data(),
                    N, in_, out_);
    return;
  }
  // The normalized (or effective) weight and inputs are recomputed from the current parameters
  // and the cached input, as a plain layer's backward reads its current weight.
  w_.resize(weight_.value.size());
  wnorm_.resize(static_cast<size_t>(out_));
  if (mode_ == WeightMode::weight_norm) {
    weight_norm_forward(w_.data(), wnorm_.data(), g_.value.data(), weight_.value.data(), out_, in_);
    dw_.resize(weight_.value.size());
    linear_backward(dx.ptr(), dw_.data(), dbias, dy.ptr(), x_.ptr(), w_.data(), N, in_, out_);
    weight_norm_backward(g_.grad.data(), weight_.grad.data(), dw_.data(), g_.value.data(),
                         weight_.value.data(), wnorm_.data(), out_, in_);
    return;
  }
  const bool centered = mode_ == WeightMode::centered_cosine;
  z_.resize(static_cast<size_t>(N * in_));
  znorm_.resize(static_cast<size_t>(N));
  dz_.resize(static_cast<size_t>(N * in_));
  cosine_normalize(w_.data(), wnorm_.data(), weight_.value.data(), out_, in_, in_, 1, centered);
  cosine_normalize(z_.data(), znorm_.data(), x_.ptr(), N, in_, in_, 1, centered);
  cosine_linear_backward(dx.ptr(), weight_.grad.data(), dbias, dz_.data(), dy.ptr(), z_.data(),
                         znorm_.data(), w_.data(), wnorm_.data(), N, in_, out_, centered);
}

std::vector<Param*> Linear::parameters() {
  std::vector<Param*> out;
  if (mode_ == WeightMode::weight_norm) out.push_back(&g_);
  out.push_back(&weight_);
  if (has_bias_) out.push_back(&bias_);
  return out;
}

}  // namespace normlab
