// The layer API's method names and the one place that turns a method name and JSON options into a
// layer. Later methods register here and are then available everywhere (bindings, runner, CLI).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "normlab/norm/method_info.h"
#include "normlab/norm/norm_layer.h"

namespace normlab {

// Every method's description (method_info.h): the baseline "none" first, then the normalization
// layers, then the weight methods, in the order they were added. Adding a method adds one line here.
const std::vector<const MethodInfo*>& method_table();
// The descriptor of a method by name or alias ("bn"); null when there is none.
const MethodInfo* find_method(const std::string& name_or_alias);
// Like find_method; throws Error listing the known methods when there is none.
const MethodInfo& method_info(const std::string& name_or_alias);
// method_info_json of every method, as describeMethods() returns it.
nlohmann::json describe_methods();

// The names of the methods that are normalization layers (those with a factory), in the table's
// order: "batchnorm", "batchrenorm", "layernorm", ...
const std::vector<std::string>& norm_methods();

// `method` may be an alias ("bn"). Throws Error naming the problem: unknown method (listing the known ones), unknown option keys,
// options of the wrong type or out of range.
std::unique_ptr<NormLayer> create_norm(const std::string& method, const nlohmann::json& options);

// The options a layer was made with, defaults filled in, as JSON with the API's camelCase names.
nlohmann::json layer_options(const NormLayer& layer);

// The methods that are not normalization layers but weight reparameterizations of a Linear or
// Conv2d (weight_mode.h): "weightnorm", "cosinenorm".
const std::vector<std::string>& weight_methods();
// norm_methods() then weight_methods(): every method of the layer API.
std::vector<std::string> layer_methods();
bool is_weight_method(const std::string& method);

}  // namespace normlab
