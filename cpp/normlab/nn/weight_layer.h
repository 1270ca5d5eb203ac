// The weight methods of the layer API (weightnorm, cosinenorm: registry.h's weight_methods()) as
// layers: a Linear or Conv2d whose weight is reparameterized (weight_mode.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "normlab/nn/module.h"
#include "normlab/nn/weight_mode.h"

namespace normlab {

// A Linear or Conv2d with the method's weight mode, from the layer API's options:
//   Linear: {inFeatures, outFeatures, bias?, seed?}
//   Conv2d: {inChannels, outChannels, kernelSize, stride? = 1, padding? = 0, bias?, seed?}
//   cosinenorm also {centered? = false}
// bias defaults to true for weightnorm (PyTorch's Linear / Conv2d) and false for cosinenorm (the
// paper's units have none). The weights are drawn from Rng(seed) (default 0) as the plain layer's.
// Throws Error naming the field: unknown method or keys, Linear and Conv2d options mixed, sizes.
std::unique_ptr<Module> create_weight_layer(const std::string& method, const nlohmann::json& options);
// The options a create_weight_layer layer was made with, defaults filled in (seed not kept: 0).
nlohmann::json weight_layer_options(const Module& layer, uint64_t seed);

// The weight mode of a model's hidden layers for a weight method and its runner options
// (weightnorm: {}; cosinenorm: {centered? = false}); throws Error on other keys or values.
WeightMode model_weight_mode(const std::string& method, const nlohmann::json& options);

}  // namespace normlab
