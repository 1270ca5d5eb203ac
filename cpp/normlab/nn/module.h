// The training core's layer contract: a Module maps a Tensor to a Tensor, and its backward gives
// the input gradient for the last training-mode forward while overwriting its parameters' grads.
// Models are sequences of Modules (model.h); normalization layers enter through NormModule.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "normlab/core/param.h"
#include "normlab/core/tensor.h"

namespace normlab {

class Module {
 public:
  virtual ~Module() = default;
  // "linear", "conv2d", "relu", ... (for messages and model summaries).
  virtual std::string kind() const = 0;
  // The output shape for an input shape; throws Error naming the layer if it cannot take it.
  virtual Shape output_shape(const Shape& input) const = 0;
  // y = f(x). y is resized as needed. Training mode keeps what backward needs.
  virtual void forward(const Tensor& x, Tensor& y, bool training) = 0;
  // dx = dL/dx given dy = dL/dy, for the last training-mode forward; overwrites parameter grads.
  virtual void backward(const Tensor& dy, Tensor& dx) = 0;
  // Learnable parameters (pointers stay valid for the module's life).
  virtual std::vector<Param*> parameters() { return {}; }
  // An independent deep copy: parameters and state are copied, nothing is shared with this module
  // (e.g. to derive a deployment model, see fold.h, while the original goes on training).
  virtual std::unique_ptr<Module> clone() const = 0;
};

}  // namespace normlab
