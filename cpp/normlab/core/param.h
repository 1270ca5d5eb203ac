// What the training core optimizes and what layers keep between steps: a learnable parameter with
// its gradient, and a named running-state buffer. Shared by the normalization layers (norm/) and
// the modules and optimizers of the training core (nn/), which need nothing else of a layer.
#pragma once

#include <string>
#include <vector>

namespace normlab {

// A learnable parameter (PyTorch's weight/bias are named gamma/beta here) and its gradient.
struct Param {
  std::string name;
  std::vector<float> value;
  std::vector<float> grad;  // same length as value; overwritten (not summed) by each backward
  bool decay = false;       // subject to weight decay (weights are; biases and norm parameters not)
};

// A running-state buffer (runningMean, runningVar, runningStd, numBatchesTracked).
struct StateBuffer {
  std::string name;
  std::vector<float> value;
};

}  // namespace normlab
