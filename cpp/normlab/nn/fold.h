// Folding normalization layers into the Linear / Conv2d before them, for deployment.
//
// A method whose inference forward is a fixed per-channel affine map of its input (its table entry
// says `foldable`) answers it itself (NormLayer::inference_affine):
//   y = (x - centre[c]) * scale[c] + beta[c],  scale = gamma / deviation,
// from its running statistics (gamma = 1, beta = 0 without affine). Directly after a layer
// computing z = W x + b per output channel o, the pair is the same layer with
//   W'[o, ...] = W[o, ...] * scale[o],   b'[o] = (b[o] - centre[o]) * scale[o] + beta[o]
// (b = 0 for a layer without bias, which gains one), computed in double and rounded to float once.
// Everything else is kept as it is: normalizations whose inference depends on the sample,
// batchnorm with trackRunningStats false (batch statistics at inference), and any normalization
// not directly after a Linear or Conv2d. Inside a residual block (y = x + f(x)) the same holds for
// f's layers, which fold among themselves: f(x) is unchanged, and so is y; a normalization first in
// a block, or right after one, has no Linear or Conv2d before it and is kept.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "normlab/nn/model.h"

namespace normlab {

struct FoldEntry {
  size_t layer = 0;    // index in the original model of the normalization layer, or of the
                       // residual block it is in
  std::vector<size_t> path;  // inside residual blocks: its index in each block's layers,
                             // outermost first (empty: a layer of the model itself)
  std::string method;  // "batchnorm", ...
  std::string note;    // folded: the kind of layer it went into ("linear", "conv2d"); kept: why
};

struct FoldResult {
  Model model;                    // independent of the original (deep copies of every layer)
  std::vector<FoldEntry> folded;  // in model order
  std::vector<FoldEntry> kept;    // normalization layers left in the model, in model order
};

// The folded model, for inference-mode forwards only (its folded layers do not train like the
// original pair). The original is left untouched and usable. Throws Error if a layer cannot be
// copied (e.g. non-finite parameters after divergence).
FoldResult fold_norms(const Model& model);

}  // namespace normlab
