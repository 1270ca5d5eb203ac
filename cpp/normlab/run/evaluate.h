// What the runner's evaluation shares with the rest of run/ (internal, not for users of runner.h):
// the sizes of its batches, rows of a data set, and snapshots of the running state that an
// evaluation must not move. The evaluations themselves are Runner members, in evaluate.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "normlab/core/param.h"
#include "normlab/core/tensor.h"
#include "normlab/data/datasets.h"
#include "normlab/nn/model.h"

namespace normlab {
namespace detail {

constexpr int64_t kProbeSize = 256;        // test examples whose activations are summarised
constexpr int64_t kEvalBatch = 100;        // inference-mode evaluation batch (bounds its buffers)

// Rows [begin, begin + count) of a data set.
void slice(const Dataset& data, int64_t begin, int64_t count, Tensor& x, std::vector<int32_t>& labels);

// The running state of every normalization layer of a model, to put back after evaluations that
// must not move it (batch-statistics forwards, AdaBN).
using NormStates = std::vector<std::vector<StateBuffer>>;

NormStates snapshot(Model& model);
void restore(Model& model, const NormStates& states);

}  // namespace detail
}  // namespace normlab
