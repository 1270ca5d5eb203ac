// The memory estimate: what a run will hold at its peak, from its configuration and data set sizes
// alone, so an oversized run is refused before any model is built.
#pragma once

#include <cstdint>

#include "normlab/core/shape.h"
#include "normlab/run/config.h"

namespace normlab {

// What a run holds at its peak, in bytes, estimated from its configuration and data set sizes:
// the data sets, each method's parameters with their gradients and optimizer state, and its
// activations (the model's saved layer inputs, the layers' caches and the gradient buffers for a
// training batch, and the evaluation batches). Meant as an upper estimate, within about half again
// of what a run allocates (tests/cpp/runner_test.cpp measures it).
struct MemoryEstimate {
  double data = 0, parameters = 0, activations = 0;
  double total() const { return data + parameters + activations; }
};
MemoryEstimate estimate_memory(const RunConfig& config, const Shape& sample_shape, int32_t classes,
                               int64_t train_size, int64_t test_size);

// The up-front refusal: throws an Error when a run of `config` needing `need` bytes does not fit in
// `limit` bytes (0: no limit), giving both in MiB and what to reduce. The message starts with
// "config: " for the built-in data sets and with the data set's name for the user's own data.
void check_memory(const MemoryEstimate& need, const RunConfig& config, double limit);

}  // namespace normlab
