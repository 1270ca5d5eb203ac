// A dense float32 tensor: a shape and its row-major values. The training core passes these between
// layers; the normalization layers' own API stays on raw buffers.
#pragma once

#include <vector>

#include "normlab/core/shape.h"

namespace normlab {

struct Tensor {
  Shape shape;
  std::vector<float> data;  // numel(shape) values, row-major

  Tensor() = default;
  explicit Tensor(Shape s, float fill = 0.0f)
      : shape(std::move(s)), data(static_cast<size_t>(normlab::numel(shape)), fill) {}

  int64_t numel() const { return static_cast<int64_t>(data.size()); }
  float* ptr() { return data.data(); }
  const float* ptr() const { return data.data(); }
  // Reshapes in place, reusing the allocation (values are unspecified when the size changes).
  void resize(const Shape& s) {
    shape = s;
    data.resize(static_cast<size_t>(normlab::numel(shape)));
  }
};

}  // namespace normlab
