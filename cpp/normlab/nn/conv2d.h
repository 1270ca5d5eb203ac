// 2-D convolution with PyTorch nn.Conv2d semantics (cross-correlation, NCHW, square kernels, equal
// stride and zero padding on both axes, no dilation or groups) and PyTorch's default init.
// Computed as im2col + one GEMM per sample; col2im scatters the column gradient back for dx. With
// stride 1 the forward and the weight gradient take a direct path instead (conv2d.cpp): the same
// sums in the same order, bit for bit, read from a zero-padded copy of each sample rather than
// from its unfolded columns.
// Optionally with Weight Normalization or Cosine Normalization of its weight (weight_mode.h).
#pragma once

#include <cstdint>
#include <vector>

#include "normlab/core/rng.h"
#include "normlab/nn/module.h"
#include "normlab/nn/weight_mode.h"

namespace normlab {

// ---- stateless kernels ----------------------------------------------------------------------

// Output size of one spatial axis: (size + 2*padding - kernel) / stride + 1 (floor).
inline int64_t conv_out_size(int64_t size, int64_t kernel, int64_t stride, int64_t padding) {
  return (size + 2 * padding - kernel) / stride + 1;
}

// Unfolds one sample into columns: col[(c*K + ki)*K + kj, oh*Wo + ow] =
// x[c, oh*stride - padding + ki, ow*stride - padding + kj], 0 outside the input.
// reference: Chellapilla et al. 2006, "High Performance Convolutional Neural Networks for
// Document Processing" (unfolding); Caffe's im2col_cpu.
void im2col(float* col,                                   // (C*K*K, Ho*Wo)
            const float* x,                               // (C,H,W)
            int64_t C, int64_t H, int64_t W, int64_t K, int64_t stride, int64_t padding,
            int64_t Ho, int64_t Wo);

// The adjoint of im2col: dx[c, ih, iw] += dcol[row, l] for every (row, l) that im2col read from
// (c, ih, iw). dx is accumulated into (zero it first).
void col2im(float* dx,                                    // (C,H,W)
            const float* dcol,                            // (C*K*K, Ho*Wo)
            int64_t C, int64_t H, int64_t W, int64_t K, int64_t stride, int64_t padding,
            int64_t Ho, int64_t Wo);

// y[n] = weight * im2col(x[n]) + bias (per output channel), weight viewed as (O, C*K*K).
// col is scratch of C*K*K*Ho*Wo floats (unused, may be null, with stride 1: the direct path, or
// for K = 1 and padding 0 the sample itself is its column matrix). bias may be null.
// reference: torch.nn.functional.conv2d.
void conv2d_forward(float* y,                              // (N,O,Ho,Wo)
                    float* col,                            // (C*K*K, Ho*Wo) scratch
                    const float* x,                        // (N,C,H,W)
                    const float* weight, const float* bias,  // (O,C,K,K), (O) or null
                    int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t K,
                    int64_t stride, int64_t padding);

// With Y_n = Wm col_n + b (Wm = weight as (O, CKK), col_n = im2col(x_n), Y_n as (O, L)):
//   dWm = sum_n dY_n col_n^T                    (O,CKK) = (O,L)(L,CKK)
//   db  = sum_n sum_l dY_n[:, l]                (O)
//   dx_n = col2im(Wm^T dY_n)                    (CKK,L) = (CKK,O)(O,L), scattered back
// The columns are recomputed from x here rather than cached by the forward (a cache would hold
// N*CKK*L floats, CKK times the input; recomputing costs one unfold per sample, small next to the
// two GEMMs). col and dcol are scratch of C*K*K*Ho*Wo floats each (col unused with stride 1, dcol
// unused without dx). dweight and dbias are overwritten; dx and dbias may be null.
void conv2d_backward(float* dx, float* dweight, float* dbias,  // (N,C,H,W), (O,C,K,K), (O)
                     float* col, float* dcol,                  // scratch, scratch
                     const float* dy, const float* x,          // (N,O,Ho,Wo), (N,C,H,W)
                     const float* weight,                      // (O,C,K,K)
                     int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t K,
                     int64_t stride, int64_t padding);

// Cosine normalization of a convolution: every receptive field (im2col column, padding zeros
// included) z_{n,l} = col_n[:, l] / max(||col_n[:, l]||, eps) and every filter u_o (O rows of
// C*K*K, normalized by the caller with cosine_normalize), both centred first when `centered`:
//   y[n, o, l] = u_o . z_{n,l} (+ bias[o])
// col is scratch of C*K*K*Ho*Wo floats (always used: it holds the normalized columns), colnorm of
// Ho*Wo. bias may be null.
// reference: Luo et al. 2017, "Cosine Normalization" (arXiv 1702.05870), section 3.2 (convolution:
// the cosine of the filter and each receptive field); torch.nn.functional.unfold +
// cosine_similarity.
void cosine_conv2d_forward(float* y,                          // (N,O,Ho,Wo)
                           float* col, float* colnorm,        // (C*K*K, Ho*Wo), (Ho*Wo) scratch
                           const float* x,                    // (N,C,H,W)
                           const float* u, const float* bias, // (O,C*K*K) normalized, (O) or null
                           int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t K,
                           int64_t stride, int64_t padding, bool centered);

// With Y_n = U Z_n + b (Z_n the normalized columns of sample n, recomputed from x):
//   dU   = sum_n dY_n Z_n^T                     (O,CKK) = (O,L)(L,CKK)
//   dZ_n = U^T dY_n                             (CKK,L) = (CKK,O)(O,L)
//   db   = sum_n sum_l dY_n[:, l]               (O)
// then through the normalizations (cosine_normalize_backward):
//   dcol_n[:, l] = (dZ_n[:, l] - (dZ_n[:, l] . z) z) / colnorm_l, minus its mean when centred,
//   dx_n = col2im(dcol_n)
//   dweight_o = (dU_o - (dU_o . u_o) u_o) / unorm_o, minus its mean when centred
// u, unorm: the normalized filters and their norms (cosine_normalize of the weight rows).
// col, dcol: scratch of C*K*K*Ho*Wo floats, colnorm of Ho*Wo. dweight and dbias are overwritten;
// dx and dbias may be null.
void cosine_conv2d_backward(float* dx, float* dweight, float* dbias,  // (N,C,H,W), (O,CKK), (O)
                            float* col, float* dcol, float* colnorm,  // scratch
                            const float* dy, const float* x,          // (N,O,Ho,Wo), (N,C,H,W)
                            const float* u, const float* unorm,       // (O,CKK), (O)
                            int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t K,
                            int64_t stride, int64_t padding, bool centered);

// ---- the module -----------------------------------------------------------------------------

class Conv2d : public Module {
 public:
  // Draws the weight (row-major (out, in, k, k)) and then the bias from rng, each U(-1/sqrt(fan_in),
  // 1/sqrt(fan_in)) with fan_in = in_ch*kernel*kernel. Throws Error on in_ch, out_ch, kernel or
  // stride < 1 or padding < 0. Weight norm: weight_v is the drawn weight and weight_g the norms of
  // its filters, so the layer starts as the plain layer drawn from the same rng.
  Conv2d(int64_t in_ch, int64_t out_ch, int64_t kernel, int64_t stride, int64_t padding, Rng& rng,
         bool bias = true, WeightMode mode = WeightMode::plain);

  // "conv2d"; "conv2d_weightnorm", "conv2d_cosine", "conv2d_centered_cosine" in the other modes.
  // With the given values (a plain layer): weight (out*in*k*k, row-major (out, in, k, k)) and bias
  // (out values, or none for a layer without bias). Throws Error as above and on lengths that do
  // not match.
  Conv2d(int64_t in_ch, int64_t out_ch, int64_t kernel, int64_t stride, int64_t padding,
         std::vector<float> weight, std::vector<float> bias);

  std::string kind() const override;
  std::unique_ptr<Module> clone() const override { return std::make_unique<Conv2d>(*this); }
  Shape output_shape(const Shape& input) const override;
  void forward(const Tensor& x, Tensor& y, bool training) override;
  void backward(const Tensor& dy, Tensor& dx) override;
  std::vector<Param*> parameters() override;

  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  int64_t kernel() const { return k_; }
  int64_t stride() const { return stride_; }
  int64_t padding() const { return pad_; }
  bool has_bias() const { return has_bias_; }
  WeightMode mode() const { return mode_; }
  Param& weight() { return weight_; }  // (out, in, k, k): "weight", or "weight_v" with weight norm
  Param& weight_g() { return g_; }     // (out) with weight norm; empty otherwise
  Param& bias() { return bias_; }      // (out); empty without bias
  // The weight the layer convolves with (see Linear::effective_weight).
  std::vector<float> effective_weight() const;

 private:
  bool pointwise() const { return k_ == 1 && stride_ == 1 && pad_ == 0; }  // no unfolding needed

  int64_t in_ = 0, out_ = 0, k_ = 0, stride_ = 1, pad_ = 0;
  bool has_bias_ = true;
  WeightMode mode_ = WeightMode::plain;
  Param weight_, g_, bias_;
  Tensor x_;                       // input of the last training forward (empty shape: none)
  std::vector<float> col_, dcol_;  // (C*K*K, Ho*Wo) scratch, reused between calls
  // Weight norm / cosine: the effective (normalized) weight, its filter norms, dW; cosine: the
  // column norms.
  std::vector<float> w_, wnorm_, dw_, colnorm_;
};

}  // namespace normlab
