// The layer API's method names and the one place that turns a method name and JSON options into a
// layer. Later methods register here and are then available everywhere (bindings, runner, CLI).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "normlab/norm_layer.h"

namespace normlab {

// "batchnorm", "batchrenorm", "layernorm", "groupnorm", "instancenorm", "lrn", "rmsnorm", "frn",
// "l1batchnorm", "generalizedbatchnorm", "switchablenorm", ... (in the order they were added).
const std::vector<std::string>& norm_methods();

// Throws Error naming the problem: unknown method (listing the known ones), unknown option keys,
// options of the wrong type or out of range.
std::unique_ptr<NormLayer> create_norm(const std::string& method, const nlohmann::json& options);

// The options a layer was made with, defaults filled in, as JSON with the API's camelCase names.
nlohmann::json layer_options(const NormLayer& layer);

}  // namespace normlab
