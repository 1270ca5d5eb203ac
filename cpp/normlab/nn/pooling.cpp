#include "normlab/nn/pooling.h"

#include <cmath>
#include <cstring>

#include "normlab/core/error.h"
#include "normlab/core/simd.h"

namespace normlab {

namespace {

void check_cached(const char* who, const Shape& x_shape) {
  if (x_shape.empty()) fail(who, ": backward needs a training-mode forward first");
}

void check_dy(const char* who, const Shape& dy, const Shape& y) {
  if (dy != y) {
    fail(who, ": dy shape ", to_string(dy), " does not match the output shape ", to_string(y),
         " of the last training forward");
  }
}

void check_positive_dims(const char* who, const Shape& input) {
  for (int64_t d : input) {
    if (d < 1) fail(who, ": input shape ", to_string(input), " has an empty dim");
  }
}

}  // namespace

void maxpool2d_forward(float* y, int32_t* argmax, const float* x, int64_t N, int64_t C, int64_t H,
                       int64_t W, int64_t K, int64_t stride) {
  const int64_t Ho = (H - K) / stride + 1, Wo = (W - K) / stride + 1;
  // A later value replaces the maximum if greater or NaN, written as selects (no branches: the
  // comparisons are data-dependent and mispredict half the time).
  auto take = [](float v, float best) { return v > best || v != v; };
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const float* xp = x + nc * H * W;
    float* yp = y + nc * Ho * Wo;
    int32_t* ap = argmax != nullptr ? argmax + nc * Ho * Wo : nullptr;
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const int64_t h0 = oh * stride;
      if (K == 2) {
        // The usual 2x2 window, unrolled in scan order: (0,0), (0,1), (1,0), (1,1).
        const float* r0 = xp + h0 * W;
        const float* r1 = r0 + W;
        int64_t ow = 0;
        if (stride == 2) {
          // Four windows at a time: the even and odd columns of two rows, de-interleaved.
          using namespace simd;
          const v4i step = {0, 2, 4, 6};
          for (; ow + 4 <= Wo; ow += 4) {
            const int64_t w0 = ow * 2;
            const v4 p0 = load4(r0 + w0), p1 = load4(r0 + w0 + 4);
            const v4 q0 = load4(r1 + w0), q1 = load4(r1 + w0 + 4);
            const v4 a = __builtin_shufflevector(p0, p1, 0, 2, 4, 6);
            const v4 b = __builtin_shufflevector(p0, p1, 1, 3, 5, 7);
            const v4 c = __builtin_shufflevector(q0, q1, 0, 2, 4, 6);
            const v4 d = __builtin_shufflevector(q0, q1, 1, 3, 5, 7);
            const v4i i0 = step + static_cast<int32_t>(h0 * W + w0);
            v4 best = a;
            v4i bi = i0;
            v4i t = (b > best) | (b != b);
            best = select(t, b, best);
            bi = select(t, i0 + 1, bi);
            t = (c > best) | (c != c);
            best = select(t, c, best);
            bi = select(t, i0 + static_cast<int32_t>(W), bi);
            t = (d > best) | (d != d);
            best = select(t, d, best);
            bi = select(t, i0 + static_cast<int32_t>(W + 1), bi);
            store4(yp + oh * Wo + ow, best);
            if (ap != nullptr) store4i(ap + oh * Wo + ow, bi);
          }
        }
        for (; ow < Wo; ++ow) {
          const int64_t w0 = ow * stride;
          float best = r0[w0];
          int32_t bi = static_cast<int32_t>(h0 * W + w0);
          const float v1 = r0[w0 + 1], v2 = r1[w0], v3 = r1[w0 + 1];
          bool t = take(v1, best);
          best = t ? v1 : best;
          bi = t ? static_cast<int32_t>(h0 * W + w0 + 1) : bi;
          t = take(v2, best);
          best = t ? v2 : best;
          bi = t ? static_cast<int32_t>((h0 + 1) * W + w0) : bi;
          t = take(v3, best);
          best = t ? v3 : best;
          bi = t ? static_cast<int32_t>((h0 + 1) * W + w0 + 1) : bi;
          yp[oh * Wo + ow] = best;
          if (ap != nullptr) ap[oh * Wo + ow] = bi;
        }
        continue;
      }
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const int64_t w0 = ow * stride;
        int64_t best_i = h0 * W + w0;
        float best = xp[best_i];
        for (int64_t i = 0; i < K; ++i) {
          for (int64_t j = 0; j < K; ++j) {
            const int64_t idx = (h0 + i) * W + (w0 + j);
            const float v = xp[idx];
            const bool t = take(v, best);
            best = t ? v : best;
            best_i = t ? idx : best_i;
          }
        }
        yp[oh * Wo + ow] = best;
        if (ap != nullptr) ap[oh * Wo + ow] = static_cast<int32_t>(best_i);
      }
    }
  }
}

void maxpool2d_backward(float* dx, const float* dy, const int32_t* argmax, int64_t N, int64_t C,
                        int64_t H, int64_t W, int64_t Ho, int64_t Wo) {
  std::memset(dx, 0, static_cast<size_t>(N * C * H * W) * sizeof(float));
  for (int64_t nc = 0; nc < N * C; ++nc) {
    float* dxp = dx + nc * H * W;
    const float* dyp = dy + nc * Ho * Wo;
    const int32_t* ap = argmax + nc * Ho * Wo;
    for (int64_t o = 0; o < Ho * Wo; ++o) dxp[ap[o]] += dyp[o];
  }
}

void global_avgpool_forward(float* y, const float* x, int64_t N, int64_t C, int64_t S) {
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const float* xp = x + nc * S;
    double sum = 0;
    for (int64_t s = 0; s < S; ++s) sum += xp[s];
    y[nc] = static_cast<float>(sum / static_cast<double>(S));
  }
}

void global_avgpool_backward(float* dx, const float* dy, int64_t N, int64_t C, int64_t S) {
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const float g = static_cast<float>(static_cast<double>(dy[nc]) / static_cast<double>(S));
    float* dxp = dx + nc * S;
    for (int64_t s = 0; s < S; ++s) dxp[s] = g;
  }
}

// ---- MaxPool2d --------------------------------------------------------------------------------

MaxPool2d::MaxPool2d(int64_t kernel, int64_t stride) : k_(kernel), stride_(stride) {
  if (kernel < 1) fail("maxpool2d: kernel must be a positive integer, got ", kernel);
  if (stride < 1) fail("maxpool2d: stride must be a positive integer, got ", stride);
}

Shape MaxPool2d::output_shape(const Shape& input) const {
  if (input.size() != 4) {
    fail("maxpool2d: input shape ", to_string(input), " must have 4 dims [N,C,H,W]");
  }
  check_positive_dims("maxpool2d", input);
  if (input[2] < k_ || input[3] < k_) {
    fail("maxpool2d: kernel ", k_, " is larger than the input ", input[2], "x", input[3],
         " (input shape ", to_string(input), ")");
  }
  return {input[0], input[1], (input[2] - k_) / stride_ + 1, (input[3] - k_) / stride_ + 1};
}

void MaxPool2d::forward(const Tensor& x, Tensor& y, bool training) {
  y.resize(output_shape(x.shape));
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  if (!training) {
    maxpool2d_forward(y.ptr(), nullptr, x.ptr(), N, C, H, W, k_, stride_);
    return;
  }
  x_shape_.clear();
  argmax_.resize(static_cast<size_t>(y.numel()));
  maxpool2d_forward(y.ptr(), argmax_.data(), x.ptr(), N, C, H, W, k_, stride_);
  x_shape_ = x.shape;
  y_shape_ = y.shape;
}

void MaxPool2d::backward(const Tensor& dy, Tensor& dx) {
  check_cached("maxpool2d", x_shape_);
  check_dy("maxpool2d", dy.shape, y_shape_);
  dx.resize(x_shape_);
  maxpool2d_backward(dx.ptr(), dy.ptr(), argmax_.data(), x_shape_[0], x_shape_[1], x_shape_[2],
                     x_shape_[3], y_shape_[2], y_shape_[3]);
}

// ---- GlobalAvgPool ----------------------------------------------------------------------------

Shape GlobalAvgPool::output_shape(const Shape& input) const {
  if (input.size() < 3) {
    fail("globalavgpool: input shape ", to_string(input),
         " must have at least 3 dims [N,C,H,W] (or [N,C,L])");
  }
  check_positive_dims("globalavgpool", input);
  return {input[0], input[1]};
}

void GlobalAvgPool::forward(const Tensor& x, Tensor& y, bool training) {
  y.resize(output_shape(x.shape));
  const int64_t N = x.shape[0], C = x.shape[1];
  global_avgpool_forward(y.ptr(), x.ptr(), N, C, x.numel() / (N * C));
  if (training) x_shape_ = x.shape;
}

void GlobalAvgPool::backward(const Tensor& dy, Tensor& dx) {
  check_cached("globalavgpool", x_shape_);
  check_dy("globalavgpool", dy.shape, {x_shape_[0], x_shape_[1]});
  dx.resize(x_shape_);
  const int64_t N = x_shape_[0], C = x_shape_[1];
  global_avgpool_backward(dx.ptr(), dy.ptr(), N, C, dx.numel() / (N * C));
}

// ---- Flatten ----------------------------------------------------------------------------------

Shape Flatten::output_shape(const Shape& input) const {
  if (input.size() < 2) {
    fail("flatten: input shape ", to_string(input), " must have at least 2 dims [N,...]");
  }
  check_positive_dims("flatten", input);
  return {input[0], numel(input) / input[0]};
}

void Flatten::forward(const Tensor& x, Tensor& y, bool training) {
  const Shape out = output_shape(x.shape);
  if (training) x_shape_ = x.shape;
  if (&y != &x) y.data = x.data;
  y.shape = out;
}

void Flatten::backward(const Tensor& dy, Tensor& dx) {
  check_cached("flatten", x_shape_);
  check_dy("flatten", dy.shape, output_shape(x_shape_));
  if (&dx != &dy) dx.data = dy.data;
  dx.shape = x_shape_;
}

}  // namespace normlab
