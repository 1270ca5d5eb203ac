// 2-D convolution with PyTorch nn.Conv2d semantics (cross-correlation, NCHW, square kernels, equal
// stride and zero padding on both axes, no dilation or groups) and PyTorch's default init.
// Computed as im2col + one GEMM per sample; col2im scatters the column gradient back for dx.
#pragma once

#include <cstdint>
#include <vector>

#include "normlab/module.h"
#include "normlab/rng.h"

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
// col is scratch of C*K*K*Ho*Wo floats (unused, may be null, when K = 1, stride 1, padding 0:
// the sample itself is then its column matrix). bias may be null.
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
// two GEMMs). col and dcol are scratch of C*K*K*Ho*Wo floats each (col unused for the 1x1/stride
// 1/padding 0 case). dweight and dbias are overwritten; dx and dbias may be null.
void conv2d_backward(float* dx, float* dweight, float* dbias,  // (N,C,H,W), (O,C,K,K), (O)
                     float* col, float* dcol,                  // scratch, scratch
                     const float* dy, const float* x,          // (N,O,Ho,Wo), (N,C,H,W)
                     const float* weight,                      // (O,C,K,K)
                     int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t K,
                     int64_t stride, int64_t padding);

// ---- the module -----------------------------------------------------------------------------

class Conv2d : public Module {
 public:
  // Draws the weight (row-major (out, in, k, k)) and then the bias from rng, each U(-1/sqrt(fan_in),
  // 1/sqrt(fan_in)) with fan_in = in_ch*kernel*kernel. Throws Error on in_ch, out_ch, kernel or
  // stride < 1 or padding < 0.
  Conv2d(int64_t in_ch, int64_t out_ch, int64_t kernel, int64_t stride, int64_t padding, Rng& rng,
         bool bias = true);
  // With the given values: weight (out*in*k*k, row-major (out, in, k, k)) and bias (out values, or
  // none for a layer without bias). Throws Error as above and on lengths that do not match.
  Conv2d(int64_t in_ch, int64_t out_ch, int64_t kernel, int64_t stride, int64_t padding,
         std::vector<float> weight, std::vector<float> bias);

  std::string kind() const override { return "conv2d"; }
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
  Param& weight() { return weight_; }  // (out, in, k, k)
  Param& bias() { return bias_; }      // (out); empty without bias

 private:
  bool direct() const { return k_ == 1 && stride_ == 1 && pad_ == 0; }  // no unfolding needed

  int64_t in_ = 0, out_ = 0, k_ = 0, stride_ = 1, pad_ = 0;
  bool has_bias_ = true;
  Param weight_, bias_;
  Tensor x_;                       // input of the last training forward (empty shape: none)
  std::vector<float> col_, dcol_;  // (C*K*K, Ho*Wo) scratch, reused between calls
};

}  // namespace normlab
