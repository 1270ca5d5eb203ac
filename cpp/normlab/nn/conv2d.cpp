#include "normlab/nn/conv2d.h"

#include <algorithm>
#include <cstring>

#include "normlab/core/error.h"
#include "normlab/nn/gemm.h"
#include "normlab/nn/linear.h"

namespace normlab {

namespace {

// dst[i] = src[i] for i < n; the pointers do not overlap (lets short rows vectorise without
// runtime overlap checks).
inline void copy_row(float* __restrict dst, const float* __restrict src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

// dst[i] += src[i] for i < n; the pointers do not overlap.
inline void add_row(float* __restrict dst, const float* __restrict src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

// The output columns ow whose input column iw = ow*stride - padding + kj lies in [0, W):
// [lo, hi) (empty when lo >= hi).
inline void valid_columns(int64_t W, int64_t kj, int64_t stride, int64_t padding, int64_t Wo,
                          int64_t& lo, int64_t& hi) {
  const int64_t first = padding - kj;  // ow*stride >= first
  lo = first <= 0 ? 0 : (first + stride - 1) / stride;
  const int64_t last = W - 1 + padding - kj;  // ow*stride <= last
  hi = last < 0 ? 0 : std::min(Wo, last / stride + 1);
  if (lo > hi) lo = hi;
}

}  // namespace

void im2col(float* col, const float* x, int64_t C, int64_t H, int64_t W, int64_t K, int64_t stride,
            int64_t padding, int64_t Ho, int64_t Wo) {
  const int64_t L = Ho * Wo;
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = x + c * H * W;
    for (int64_t ki = 0; ki < K; ++ki) {
      for (int64_t kj = 0; kj < K; ++kj) {
        float* row = col + ((c * K + ki) * K + kj) * L;
        int64_t lo, hi;
        valid_columns(W, kj, stride, padding, Wo, lo, hi);
        if (stride == 1 && Ho == H && Wo == W) {
          // A "same" convolution: this row of col is the input plane shifted by dr rows and dc
          // columns. One contiguous copy over the valid rows, then zeros where a column wrapped
          // around a row's edge, and zero rows outside the input.
          const int64_t dr = ki - padding, dc = kj - padding, off = dr * W + dc;
          const int64_t oh_lo = std::max<int64_t>(0, -dr), oh_hi = std::max(oh_lo, std::min(Ho, H - dr));
          for (int64_t f = 0; f < oh_lo * W; ++f) row[f] = 0.0f;
          for (int64_t f = oh_hi * W; f < L; ++f) row[f] = 0.0f;
          const int64_t f0 = std::max(oh_lo * W, -off), f1 = std::min(oh_hi * W, H * W - off);
          if (f1 > f0) copy_row(row + f0, xc + (f0 + off), f1 - f0);
          for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
            float* out = row + oh * Wo;
            for (int64_t ow = 0; ow < lo; ++ow) out[ow] = 0.0f;
            for (int64_t ow = hi; ow < Wo; ++ow) out[ow] = 0.0f;
          }
          continue;
        }
        for (int64_t oh = 0; oh < Ho; ++oh) {
          const int64_t ih = oh * stride - padding + ki;
          float* out = row + oh * Wo;
          if (ih < 0 || ih >= H) {
            for (int64_t ow = 0; ow < Wo; ++ow) out[ow] = 0.0f;
            continue;
          }
          // Zeros left and right of the input, the input's row in between (no per-element test;
          // plain loops, as rows are short and a memcpy call per row costs more than the copy).
          const float* xr = xc + ih * W;
          const int64_t shift = kj - padding;  // iw = ow*stride + shift, >= 0 for ow >= lo
          for (int64_t ow = 0; ow < lo; ++ow) out[ow] = 0.0f;
          if (stride == 1) {
            if (hi > lo) copy_row(out + lo, xr + (lo + shift), hi - lo);
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] = xr[ow * stride + shift];
          }
          for (int64_t ow = hi; ow < Wo; ++ow) out[ow] = 0.0f;
        }
      }
    }
  }
}

void col2im(float* dx, const float* dcol, int64_t C, int64_t H, int64_t W, int64_t K,
            int64_t stride, int64_t padding, int64_t Ho, int64_t Wo) {
  const int64_t L = Ho * Wo;
  for (int64_t c = 0; c < C; ++c) {
    float* dxc = dx + c * H * W;
    for (int64_t ki = 0; ki < K; ++ki) {
      for (int64_t kj = 0; kj < K; ++kj) {
        const float* row = dcol + ((c * K + ki) * K + kj) * L;
        int64_t lo, hi;
        valid_columns(W, kj, stride, padding, Wo, lo, hi);
        for (int64_t oh = 0; oh < Ho; ++oh) {
          const int64_t ih = oh * stride - padding + ki;
          if (ih < 0 || ih >= H) continue;
          const float* in = row + oh * Wo;
          float* dxr = dxc + ih * W;
          const int64_t shift = kj - padding;  // iw = ow*stride + shift, >= 0 for ow >= lo
          if (stride == 1) {
            if (hi > lo) add_row(dxr + (lo + shift), in + lo, hi - lo);
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dxr[ow * stride + shift] += in[ow];
          }
        }
      }
    }
  }
}

namespace {

// y[o, l] += bias[o] for one sample's (O, L) output.
void add_channel_bias(float* y, const float* bias, int64_t O, int64_t L) {
  for (int64_t o = 0; o < O; ++o) {
    const float b = bias[o];
    float* row = y + o * L;
    for (int64_t l = 0; l < L; ++l) row[l] += b;
  }
}

}  // namespace

void conv2d_forward(float* y, float* col, const float* x, const float* weight, const float* bias,
                    int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t K,
                    int64_t stride, int64_t padding) {
  const int64_t Ho = conv_out_size(H, K, stride, padding), Wo = conv_out_size(W, K, stride, padding);
  const int64_t L = Ho * Wo, CKK = C * K * K;
  const bool direct = K == 1 && stride == 1 && padding == 0;
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x + n * C * H * W;
    if (!direct) im2col(col, xn, C, H, W, K, stride, padding, Ho, Wo);
    float* yn = y + n * O * L;
    gemm(false, Trans::N, Trans::N, O, L, CKK, weight, CKK, direct ? xn : col, L, yn, L);  // Wm Col
    if (bias != nullptr) add_channel_bias(yn, bias, O, L);
  }
}

void conv2d_backward(float* dx, float* dweight, float* dbias, float* col, float* dcol,
                     const float* dy, const float* x, const float* weight, int64_t N, int64_t C,
                     int64_t H, int64_t W, int64_t O, int64_t K, int64_t stride, int64_t padding) {
  const int64_t Ho = conv_out_size(H, K, stride, padding), Wo = conv_out_size(W, K, stride, padding);
  const int64_t L = Ho * Wo, CKK = C * K * K;
  const bool direct = K == 1 && stride == 1 && padding == 0;
  if (dbias != nullptr) std::memset(dbias, 0, static_cast<size_t>(O) * sizeof(float));
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x + n * C * H * W;
    const float* dyn = dy + n * O * L;
    if (!direct) im2col(col, xn, C, H, W, K, stride, padding, Ho, Wo);
    const float* coln = direct ? xn : col;
    gemm(n > 0, Trans::N, Trans::T, O, CKK, L, dyn, L, coln, L, dweight, CKK);  // dWm += dY Col^T
    if (dbias != nullptr) {
      for (int64_t o = 0; o < O; ++o) {
        const float* row = dyn + o * L;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;  // four partial sums: vectorisable
        int64_t l = 0;
        for (; l + 4 <= L; l += 4) {
          s0 += row[l];
          s1 += row[l + 1];
          s2 += row[l + 2];
          s3 += row[l + 3];
        }
        for (; l < L; ++l) s0 += row[l];
        dbias[o] += (s0 + s1) + (s2 + s3);
      }
    }
    if (dx == nullptr) continue;
    float* dxn = dx + n * C * H * W;
    if (direct) {
      gemm(false, Trans::T, Trans::N, CKK, L, O, weight, CKK, dyn, L, dxn, L);  // Wm^T dY
    } else {
      gemm(false, Trans::T, Trans::N, CKK, L, O, weight, CKK, dyn, L, dcol, L);
      std::memset(dxn, 0, static_cast<size_t>(C * H * W) * sizeof(float));
      col2im(dxn, dcol, C, H, W, K, stride, padding, Ho, Wo);
    }
  }
}

void cosine_conv2d_forward(float* y, float* col, float* colnorm, const float* x, const float* u,
                           const float* bias, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                           int64_t K, int64_t stride, int64_t padding, bool centered) {
  const int64_t Ho = conv_out_size(H, K, stride, padding), Wo = conv_out_size(W, K, stride, padding);
  const int64_t L = Ho * Wo, CKK = C * K * K;
  const bool direct = K == 1 && stride == 1 && padding == 0;
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x + n * C * H * W;
    if (!direct) im2col(col, xn, C, H, W, K, stride, padding, Ho, Wo);
    cosine_normalize(col, colnorm, direct ? xn : col, L, CKK, 1, L, centered);  // columns
    float* yn = y + n * O * L;
    gemm(false, Trans::N, Trans::N, O, L, CKK, u, CKK, col, L, yn, L);  // U Z
    if (bias != nullptr) add_channel_bias(yn, bias, O, L);
  }
}

void cosine_conv2d_backward(float* dx, float* dweight, float* dbias, float* col, float* dcol,
                            float* colnorm, const float* dy, const float* x, const float* u,
                            const float* unorm, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t O, int64_t K, int64_t stride, int64_t padding, bool centered) {
  const int64_t Ho = conv_out_size(H, K, stride, padding), Wo = conv_out_size(W, K, stride, padding);
  const int64_t L = Ho * Wo, CKK = C * K * K;
  const bool direct = K == 1 && stride == 1 && padding == 0;
  if (dbias != nullptr) std::memset(dbias, 0, static_cast<size_t>(O) * sizeof(float));
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x + n * C * H * W;
    const float* dyn = dy + n * O * L;
    if (!direct) im2col(col, xn, C, H, W, K, stride, padding, Ho, Wo);
    cosine_normalize(col, colnorm, direct ? xn : col, L, CKK, 1, L, centered);
    gemm(n > 0, Trans::N, Trans::T, O, CKK, L, dyn, L, col, L, dweight, CKK);  // dU += dY Z^T
    if (dbias != nullptr) {
      for (int64_t o = 0; o < O; ++o) {
        const float* row = dyn + o * L;
        double s = 0;
        for (int64_t l = 0; l < L; ++l) s += row[l];
        dbias[o] += static_cast<float>(s);
      }
    }
    if (dx == nullptr) continue;
    gemm(false, Trans::T, Trans::N, CKK, L, O, u, CKK, dyn, L, dcol, L);  // dZ = U^T dY
    cosine_normalize_backward(dcol, dcol, col, colnorm, L, CKK, 1, L, centered);
    float* dxn = dx + n * C * H * W;
    if (direct) {
      std::memcpy(dxn, dcol, static_cast<size_t>(CKK * L) * sizeof(float));
    } else {
      std::memset(dxn, 0, static_cast<size_t>(C * H * W) * sizeof(float));
      col2im(dxn, dcol, C, H, W, K, stride, padding, Ho, Wo);
    }
  }
  cosine_normalize_backward(dweight, dweight, u, unorm, O, CKK, CKK, 1, centered);
}

namespace {

void check_conv_sizes(int64_t in_ch, int64_t out_ch, int64_t kernel, int64_t stride,
                      int64_t padding) {
  if (in_ch < 1) fail("conv2d: in_channels must be a positive integer, got ", in_ch);
  if (out_ch < 1) fail("conv2d: out_channels must be a positive integer, got ", out_ch);
  if (kernel < 1) fail("conv2d: kernel must be a positive integer, got ", kernel);
  if (stride < 1) fail("conv2d: stride must be a positive integer, got ", stride);
  if (padding < 0) fail("conv2d: padding must be >= 0, got ", padding);
  // Bound each factor first so that the products below cannot overflow.
  if (kernel > kMaxElements || in_ch > kMaxElements || out_ch > kMaxElements ||
      padding > kMaxElements || stride > kMaxElements ||
      static_cast<double>(out_ch) * static_cast<double>(in_ch) * static_cast<double>(kernel) *
              static_cast<double>(kernel) > static_cast<double>(kMaxElements)) {
    fail("conv2d: weight of ", out_ch, "x", in_ch, "x", kernel, "x", kernel, " has more than ",
         kMaxElements, " elements");
  }
}

}  // namespace

Conv2d::Conv2d(int64_t in_ch, int64_t out_ch, int64_t kernel, int64_t stride, int64_t padding,
               Rng& rng, bool bias, WeightMode mode)
    : in_(in_ch), out_(out_ch), k_(kernel), stride_(stride), pad_(padding), has_bias_(bias),
      mode_(mode) {
  check_conv_sizes(in_ch, out_ch, kernel, stride, padding);
  const int64_t fan_in = in_ch * kernel * kernel;
  const size_t n = static_cast<size_t>(out_ch * fan_in);
  weight_ = Param{"weight", std::vector<float>(n), std::vector<float>(n, 0.0f), true};
  init_uniform_fan_in(weight_.value.data(), out_ch * fan_in, fan_in, rng);
  if (bias) {
    const size_t m = static_cast<size_t>(out_ch);
    bias_ = Param{"bias", std::vector<float>(m), std::vector<float>(m, 0.0f), false};
    init_uniform_fan_in(bias_.value.data(), out_ch, fan_in, rng);
  }
  if (mode == WeightMode::weight_norm) {
    weight_.name = "weight_v";
    const size_t m = static_cast<size_t>(out_ch);
    g_ = Param{"weight_g", std::vector<float>(m), std::vector<float>(m, 0.0f), false};
    for (int64_t o = 0; o < out_ch; ++o) {
      g_.value[static_cast<size_t>(o)] = l2_norm(weight_.value.data() + o * fan_in, fan_in);
    }
  }
}

std::string Conv2d::kind() const {
  return mode_ == WeightMode::plain ? "conv2d" : std::string("conv2d_") + weight_mode_name(mode_);
}

std::vector<float> Conv2d::effective_weight() const {
  if (mode_ == WeightMode::plain) return weight_.value;
  const int64_t F = in_ * k_ * k_;
  std::vector<float> w(weight_.value.size()), norms(static_cast<size_t>(out_));
  if (mode_ == WeightMode::weight_norm) {
    weight_norm_forward(w.data(), norms.data(), g_.value.data(), weight_.value.data(), out_, F);
  } else {
    cosine_normalize(w.data(), norms.data(), weight_.value.data(), out_, F, F, 1,
                     mode_ == WeightMode::centered_cosine);
  }
  return w;
}

Conv2d::Conv2d(int64_t in_ch, int64_t out_ch, int64_t kernel, int64_t stride, int64_t padding,
               std::vector<float> weight, std::vector<float> bias)
    : in_(in_ch), out_(out_ch), k_(kernel), stride_(stride), pad_(padding),
      has_bias_(!bias.empty()) {
  check_conv_sizes(in_ch, out_ch, kernel, stride, padding);
  const int64_t n = out_ch * in_ch * kernel * kernel;
  if (weight.size() != static_cast<size_t>(n)) {
    fail("conv2d: weight of ", out_ch, "x", in_ch, "x", kernel, "x", kernel, " needs ", n,
         " values, got ", weight.size());
  }
  if (has_bias_ && bias.size() != static_cast<size_t>(out_ch)) {
    fail("conv2d: bias needs ", out_ch, " values (or none), got ", bias.size());
  }
  const size_t m = bias.size();
  weight_ = Param{"weight", std::move(weight), std::vector<float>(static_cast<size_t>(n), 0.0f), true};
  if (has_bias_) bias_ = Param{"bias", std::move(bias), std::vector<float>(m, 0.0f), false};
}

Shape Conv2d::output_shape(const Shape& input) const {
  if (input.size() != 4) {
    fail("conv2d: input shape ", to_string(input), " must have 4 dims [N,C,H,W]");
  }
  if (input[1] != in_) {
    fail("conv2d: input shape ", to_string(input), " has ", input[1],
         " channels (dim 1), layer takes ", in_);
  }
  for (int64_t d : input) {
    if (d < 1) fail("conv2d: input shape ", to_string(input), " has an empty dim");
  }
  const int64_t H = input[2], W = input[3];
  if (H + 2 * pad_ < k_ || W + 2 * pad_ < k_) {
    fail("conv2d: kernel ", k_, " is larger than the padded input ", H + 2 * pad_, "x",
         W + 2 * pad_, " (input shape ", to_string(input), ", padding ", pad_, ")");
  }
  const Shape out = {input[0], out_, conv_out_size(H, k_, stride_, pad_),
                     conv_out_size(W, k_, stride_, pad_)};
  // The output and the column scratch (C*K*K x Ho*Wo) must both stay within kMaxElements.
  const double plane = static_cast<double>(out[2]) * static_cast<double>(out[3]);
  const double cols = static_cast<double>(in_ * k_ * k_) * plane;
  const double outs = static_cast<double>(out[0]) * static_cast<double>(out[1]) * plane;
  if (cols > static_cast<double>(kMaxElements) || outs > static_cast<double>(kMaxElements)) {
    fail("conv2d: input shape ", to_string(input), " needs more than ", kMaxElements,
         " elements for its output or its columns");
  }
  return out;
}

void Conv2d::forward(const Tensor& x, Tensor& y, bool training) {
  y.resize(output_shape(x.shape));
  if (training) x_ = x;
  const int64_t F = in_ * k_ * k_, L = y.shape[2] * y.shape[3];
  if (!direct() || is_cosine(mode_)) col_.resize(static_cast<size_t>(F * L));
  const float* bias = has_bias_ ? bias_.value.data() : nullptr;
  const float* weight = weight_.value.data();
  if (mode_ != WeightMode::plain) {
    w_.resize(weight_.value.size());
    wnorm_.resize(static_cast<size_t>(out_));
    if (mode_ == WeightMode::weight_norm) {
      weight_norm_forward(w_.data(), wnorm_.data(), g_.value.data(), weight, out_, F);
    } else {
      cosine_normalize(w_.data(), wnorm_.data(), weight, out_, F, F, 1,
                       mode_ == WeightMode::centered_cosine);
    }
    weight = w_.data();
  }
  if (is_cosine(mode_)) {
    colnorm_.resize(static_cast<size_t>(L));
    cosine_conv2d_forward(y.ptr(), col_.data(), colnorm_.data(), x.ptr(), weight, bias, x.shape[0],
                          in_, x.shape[2], x.shape[3], out_, k_, stride_, pad_,
                          mode_ == WeightMode::centered_cosine);
    return;
  }
  conv2d_forward(y.ptr(), col_.data(), x.ptr(), weight, bias, x.shape[0], in_, x.shape[2],
                 x.shape[3], out_, k_, stride_, pad_);
}

void Conv2d::backward(const Tensor& dy, Tensor& dx) {
  if (x_.shape.empty()) fail("conv2d: backward needs a training-mode forward first");
  const Shape out = output_shape(x_.shape);
  if (dy.shape != out) {
    fail("conv2d: dy shape ", to_string(dy.shape), " does not match the output shape ",
         to_string(out), " of the last training forward");
  }
  dx.resize(x_.shape);
  const int64_t F = in_ * k_ * k_, L = out[2] * out[3];
  if (!direct() || is_cosine(mode_)) {
    col_.resize(static_cast<size_t>(F * L));
    dcol_.resize(static_cast<size_t>(F * L));
  }
  float* dbias = has_bias_ ? bias_.grad.data() : nullptr;
  if (mode_ == WeightMode::plain) {
    conv2d_backward(dx.ptr(), weight_.grad.data(), dbias, col_.data(), dcol_.data(), dy.ptr(),
                    x_.ptr(), weight_.value.data(), x_.shape[0], in_, x_.shape[2], x_.shape[3],
                    out_, k_, stride_, pad_);
    return;
  }
  // The effective (or normalized) weight is recomputed from the current parameters.
  w_.resize(weight_.value.size());
  wnorm_.resize(static_cast<size_t>(out_));
  if (mode_ == WeightMode::weight_norm) {
    weight_norm_forward(w_.data(), wnorm_.data(), g_.value.data(), weight_.value.data(), out_, F);
    dw_.resize(weight_.value.size());
    conv2d_backward(dx.ptr(), dw_.data(), dbias, col_.data(), dcol_.data(), dy.ptr(), x_.ptr(),
                    w_.data(), x_.shape[0], in_, x_.shape[2], x_.shape[3], out_, k_, stride_, pad_);
    weight_norm_backward(g_.grad.data(), weight_.grad.data(), dw_.data(), g_.value.data(),
                         weight_.value.data(), wnorm_.data(), out_, F);
    return;
  }
  const bool centered = mode_ == WeightMode::centered_cosine;
  cosine_normalize(w_.data(), wnorm_.data(), weight_.value.data(), out_, F, F, 1, centered);
  colnorm_.resize(static_cast<size_t>(L));
  cosine_conv2d_backward(dx.ptr(), weight_.grad.data(), dbias, col_.data(), dcol_.data(),
                         colnorm_.data(), dy.ptr(), x_.ptr(), w_.data(), wnorm_.data(), x_.shape[0],
                         in_, x_.shape[2], x_.shape[3], out_, k_, stride_, pad_, centered);
}

std::vector<Param*> Conv2d::parameters() {
  std::vector<Param*> out;
  if (mode_ == WeightMode::weight_norm) out.push_back(&g_);
  out.push_back(&weight_);
  if (has_bias_) out.push_back(&bias_);
  return out;
}

}  // namespace normlab
