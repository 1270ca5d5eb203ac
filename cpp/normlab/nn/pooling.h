// Pooling and reshaping modules with PyTorch semantics: MaxPool2d (no padding, floor output size),
// global average pooling ([N,C,H,W] -> [N,C], i.e. AdaptiveAvgPool2d(1) + flatten) and Flatten.
#pragma once

#include <cstdint>
#include <vector>

#include "normlab/nn/module.h"

namespace normlab {

// ---- stateless kernels ----------------------------------------------------------------------

// y[n,c,oh,ow] = max over the K x K window at (oh*stride, ow*stride); Ho = (H-K)/stride + 1.
// The window is scanned row-major and a later value replaces the current maximum only if it is
// greater (or NaN), so on ties the first maximum wins, as in PyTorch's CPU kernel. argmax (may be
// null) receives the winner's index within its (H,W) plane.
// reference: torch.nn.MaxPool2d (aten max_pool2d_with_indices).
void maxpool2d_forward(float* y, int32_t* argmax,      // (N,C,Ho,Wo), (N,C,Ho,Wo) or null
                       const float* x,                 // (N,C,H,W)
                       int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t stride);

// dx[n,c,argmax[n,c,o]] += dy[n,c,o]; every other dx is 0 (overlapping windows, stride < K, may
// route several outputs to one input, whose gradients then add up).
void maxpool2d_backward(float* dx,                     // (N,C,H,W)
                        const float* dy, const int32_t* argmax,  // (N,C,Ho,Wo), (N,C,Ho,Wo)
                        int64_t N, int64_t C, int64_t H, int64_t W, int64_t Ho, int64_t Wo);

// y[n,c] = (1/S) sum_s x[n,c,s] (accumulated in double).
void global_avgpool_forward(float* y,                 // (N,C)
                            const float* x,           // (N,C,S)
                            int64_t N, int64_t C, int64_t S);

// dx[n,c,s] = dy[n,c] / S.
void global_avgpool_backward(float* dx,               // (N,C,S)
                             const float* dy,         // (N,C)
                             int64_t N, int64_t C, int64_t S);

// ---- the modules ----------------------------------------------------------------------------

class MaxPool2d : public Module {
 public:
  // Throws Error on kernel or stride < 1.
  MaxPool2d(int64_t kernel, int64_t stride);

  std::string kind() const override { return "maxpool2d"; }
  std::unique_ptr<Module> clone() const override { return std::make_unique<MaxPool2d>(*this); }
  Shape output_shape(const Shape& input) const override;  // [N,C,H,W] -> [N,C,Ho,Wo]
  void forward(const Tensor& x, Tensor& y, bool training) override;
  void backward(const Tensor& dy, Tensor& dx) override;

  int64_t kernel() const { return k_; }
  int64_t stride() const { return stride_; }

 private:
  int64_t k_ = 1, stride_ = 1;
  Shape x_shape_, y_shape_;     // of the last training forward (empty: none)
  std::vector<int32_t> argmax_;  // (N,C,Ho,Wo) of the last training forward
};

// Mean over the spatial dims: [N,C,d1,...] (at least one spatial dim) -> [N,C].
class GlobalAvgPool : public Module {
 public:
  std::string kind() const override { return "globalavgpool"; }
  std::unique_ptr<Module> clone() const override { return std::make_unique<GlobalAvgPool>(*this); }
  Shape output_shape(const Shape& input) const override;
  void forward(const Tensor& x, Tensor& y, bool training) override;
  void backward(const Tensor& dy, Tensor& dx) override;

 private:
  Shape x_shape_;  // of the last training forward (empty: none)
};

// [N, d1, d2, ...] -> [N, d1*d2*...] (at least 2 dims; values unchanged, row-major).
class Flatten : public Module {
 public:
  std::string kind() const override { return "flatten"; }
  std::unique_ptr<Module> clone() const override { return std::make_unique<Flatten>(*this); }
  Shape output_shape(const Shape& input) const override;
  void forward(const Tensor& x, Tensor& y, bool training) override;
  void backward(const Tensor& dy, Tensor& dx) override;

 private:
  Shape x_shape_;  // of the last training forward (empty: none)
};

}  // namespace normlab
