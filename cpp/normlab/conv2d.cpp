#include "normlab/conv2d.h"

#include <cstring>

#include <Eigen/Core>

#include "normlab/error.h"
#include "normlab/linear.h"

namespace normlab {

namespace {

using MatRM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vec = Eigen::Matrix<float, Eigen::Dynamic, 1>;

}  // namespace

void im2col(float* col, const float* x, int64_t C, int64_t H, int64_t W, int64_t K, int64_t stride,
            int64_t padding, int64_t Ho, int64_t Wo) {
  const int64_t L = Ho * Wo;
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = x + c * H * W;
    for (int64_t ki = 0; ki < K; ++ki) {
      for (int64_t kj = 0; kj < K; ++kj) {
        float* row = col + ((c * K + ki) * K + kj) * L;
        for (int64_t oh = 0; oh < Ho; ++oh) {
          const int64_t ih = oh * stride - padding + ki;
          float* out = row + oh * Wo;
          if (ih < 0 || ih >= H) {
            std::memset(out, 0, static_cast<size_t>(Wo) * sizeof(float));
            continue;
          }
          const float* xr = xc + ih * W;
          for (int64_t ow = 0; ow < Wo; ++ow) {
            const int64_t iw = ow * stride - padding + kj;
            out[ow] = (iw >= 0 && iw < W) ? xr[iw] : 0.0f;
          }
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
        for (int64_t oh = 0; oh < Ho; ++oh) {
          const int64_t ih = oh * stride - padding + ki;
          if (ih < 0 || ih >= H) continue;
          const float* in = row + oh * Wo;
          float* dxr = dxc + ih * W;
          for (int64_t ow = 0; ow < Wo; ++ow) {
            const int64_t iw = ow * stride - padding + kj;
            if (iw >= 0 && iw < W) dxr[iw] += in[ow];
          }
        }
      }
    }
  }
}

void conv2d_forward(float* y, float* col, const float* x, const float* weight, const float* bias,
                    int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t K,
                    int64_t stride, int64_t padding) {
  const int64_t Ho = conv_out_size(H, K, stride, padding), Wo = conv_out_size(W, K, stride, padding);
  const int64_t L = Ho * Wo, CKK = C * K * K;
  const bool direct = K == 1 && stride == 1 && padding == 0;
  Eigen::Map<const MatRM> Wm(weight, O, CKK);
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x + n * C * H * W;
    if (!direct) im2col(col, xn, C, H, W, K, stride, padding, Ho, Wo);
    Eigen::Map<const MatRM> Col(direct ? xn : col, CKK, L);
    Eigen::Map<MatRM> Y(y + n * O * L, O, L);
    Y.noalias() = Wm * Col;
    if (bias != nullptr) Y.colwise() += Eigen::Map<const Vec>(bias, O);
  }
}

void conv2d_backward(float* dx, float* dweight, float* dbias, float* col, float* dcol,
                     const float* dy, const float* x, const float* weight, int64_t N, int64_t C,
                     int64_t H, int64_t W, int64_t O, int64_t K, int64_t stride, int64_t padding) {
  const int64_t Ho = conv_out_size(H, K, stride, padding), Wo = conv_out_size(W, K, stride, padding);
  const int64_t L = Ho * Wo, CKK = C * K * K;
  const bool direct = K == 1 && stride == 1 && padding == 0;
  Eigen::Map<const MatRM> Wm(weight, O, CKK);
  Eigen::Map<MatRM> dWm(dweight, O, CKK);
  dWm.setZero();
  if (dbias != nullptr) Eigen::Map<Vec>(dbias, O).setZero();
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x + n * C * H * W;
    Eigen::Map<const MatRM> dY(dy + n * O * L, O, L);
    if (!direct) im2col(col, xn, C, H, W, K, stride, padding, Ho, Wo);
    Eigen::Map<const MatRM> Col(direct ? xn : col, CKK, L);
    dWm.noalias() += dY * Col.transpose();
    if (dbias != nullptr) Eigen::Map<Vec>(dbias, O) += dY.rowwise().sum();
    if (dx == nullptr) continue;
    float* dxn = dx + n * C * H * W;
    if (direct) {
      Eigen::Map<MatRM>(dxn, CKK, L).noalias() = Wm.transpose() * dY;
    } else {
      Eigen::Map<MatRM>(dcol, CKK, L).noalias() = Wm.transpose() * dY;
      std::memset(dxn, 0, static_cast<size_t>(C * H * W) * sizeof(float));
      col2im(dxn, dcol, C, H, W, K, stride, padding, Ho, Wo);
    }
  }
}

Conv2d::Conv2d(int64_t in_ch, int64_t out_ch, int64_t kernel, int64_t stride, int64_t padding,
               Rng& rng, bool bias)
    : in_(in_ch), out_(out_ch), k_(kernel), stride_(stride), pad_(padding), has_bias_(bias) {
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
  const int64_t fan_in = in_ch * kernel * kernel;
  const size_t n = static_cast<size_t>(out_ch * fan_in);
  weight_ = Param{"weight", std::vector<float>(n), std::vector<float>(n, 0.0f), true};
  init_uniform_fan_in(weight_.value.data(), out_ch * fan_in, fan_in, rng);
  if (bias) {
    const size_t m = static_cast<size_t>(out_ch);
    bias_ = Param{"bias", std::vector<float>(m), std::vector<float>(m, 0.0f), false};
    init_uniform_fan_in(bias_.value.data(), out_ch, fan_in, rng);
  }
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
  if (!direct()) col_.resize(static_cast<size_t>(in_ * k_ * k_ * y.shape[2] * y.shape[3]));
  conv2d_forward(y.ptr(), col_.data(), x.ptr(), weight_.value.data(),
                 has_bias_ ? bias_.value.data() : nullptr, x.shape[0], in_, x.shape[2], x.shape[3],
                 out_, k_, stride_, pad_);
}

void Conv2d::backward(const Tensor& dy, Tensor& dx) {
  if (x_.shape.empty()) fail("conv2d: backward needs a training-mode forward first");
  const Shape out = output_shape(x_.shape);
  if (dy.shape != out) {
    fail("conv2d: dy shape ", to_string(dy.shape), " does not match the output shape ",
         to_string(out), " of the last training forward");
  }
  dx.resize(x_.shape);
  if (!direct()) {
    const size_t n = static_cast<size_t>(in_ * k_ * k_ * out[2] * out[3]);
    col_.resize(n);
    dcol_.resize(n);
  }
  conv2d_backward(dx.ptr(), weight_.grad.data(), has_bias_ ? bias_.grad.data() : nullptr,
                  col_.data(), dcol_.data(), dy.ptr(), x_.ptr(), weight_.value.data(), x_.shape[0],
                  in_, x_.shape[2], x_.shape[3], out_, k_, stride_, pad_);
}

std::vector<Param*> Conv2d::parameters() {
  if (has_bias_) return {&weight_, &bias_};
  return {&weight_};
}

}  // namespace normlab
