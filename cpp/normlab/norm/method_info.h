// One description per method, defined in the method's own .cpp and collected in one list by the
// registry (registry.h: method_table()). Everything that used to keep its own per-method list reads
// it: create_norm, make_norm_module (what the model fills in), the runner's aliases, labels, ids and
// batch-size check, and, through the bindings, describeMethods(), the CLI and the playground.
// Adding a method is: its .h/.cpp pair with a MethodInfo, one line in method_table().
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "normlab/core/options.h"
#include "normlab/norm/norm_layer.h"

namespace normlab {

// One option of a method, as the layer API names it.
struct OptionInfo {
  std::string key;                 // camelCase, as in the JS options objects
  std::string type;                // "number", "integer", "boolean", "string", "integer[]"
  nlohmann::json default_value;    // null: required, filled in by the model, or PyTorch's None
  std::optional<double> min, max;  // inclusive bounds of numbers
  std::vector<std::string> values; // the allowed strings of a "string" option
  std::string help;                // one line
  std::string member;              // the C++ member of the options struct it sets
  bool min_exclusive = false;      // min itself is out of range (eps > 0)
  bool nullable = false;           // null is a value of its own (BatchNorm's cumulative momentum)
  bool from_model = false;         // the model fills it in from the input shape when absent
};

// What a model fills in for a method's layer from the shape of the activations it normalizes.
enum class ModelFill {
  channels,          // options.channels = C of [N, C, ...]
  normalized_shape,  // options.normalizedShape = the trailing dims after N
  none,              // nothing (LRN's size is the user's; weight methods have no layer)
};

struct MethodInfo {
  std::string name;                  // the layer API's method name: "batchnorm"
  std::vector<std::string> aliases;  // short names, the first is the result's id: "bn"
  std::string label;                 // for tables and legends: "BatchNorm"
  std::vector<OptionInfo> options;
  ModelFill fill = ModelFill::channels;
  // Training normalizes with statistics over the batch (differs from inference, needs more than one
  // value per channel).
  bool uses_batch_statistics = false;
  bool needs_spatial_dims = false;  // only for inputs [N, C, H, W, ...] (CNN only)
  bool foldable = false;            // fold.h folds it into the layer before it for inference
  // "none": the comparisons' baseline without normalization (no layer, no weight mode).
  bool baseline = false;
  // Running statistics that AdaBN (set_population_statistics) replaces; empty when none.
  std::vector<std::string> population_statistics;
  // A normalization layer from validated options; null for the weight methods (weightnorm,
  // cosinenorm), which are weight modes of a Linear or Conv2d rather than layers, and the baseline.
  std::unique_ptr<NormLayer> (*create)(const nlohmann::json& options) = nullptr;
  // The options a layer of this method was made with, defaults filled in (layer_options).
  nlohmann::json (*options_of)(const NormLayer& layer) = nullptr;
  // What a model fills in beyond `fill`, from the activations' shape, for options the user left
  // out (GroupNorm's groups, Switchable Norm's useIN for [N, C]); null when nothing.
  void (*model_defaults)(nlohmann::json& options, const Shape& input_shape) = nullptr;
  // The label of a comparison's arm with these (user-given) options, e.g. "GroupNorm (4 groups)";
  // null: `label` whatever the options.
  std::string (*label_of)(const nlohmann::json& options) = nullptr;

  const OptionInfo* option(const std::string& key) const;
  // label_of(options), or label.
  std::string label_for(const nlohmann::json& options) const;
  // A weight reparameterization of a Linear or Conv2d rather than a layer (weightnorm, cosinenorm).
  bool weight_method() const { return create == nullptr && !baseline; }
  // The short id of a comparison's arm: the first alias, or the name.
  const std::string& id() const { return aliases.empty() ? name : aliases.front(); }
  // The keys of `options`, for OptionReader.
  std::vector<std::string> option_keys() const;
};

// The descriptor as describeMethods() returns it: {name, aliases, label, options: [{key, type,
// default, min?, max?, values?, help}], usesBatchStatistics, needsSpatialDims, foldable,
// populationStatistics, weightMethod, baseline}.
nlohmann::json method_info_json(const MethodInfo& info);

// Builders for the descriptors' option lists (the shared options read the same everywhere).
OptionInfo number_option(std::string key, std::string member, double default_value, std::optional<double> min,
                         std::optional<double> max, std::string help);
OptionInfo integer_option(std::string key, std::string member, nlohmann::json default_value,
                          std::optional<double> min, std::string help);
OptionInfo boolean_option(std::string key, std::string member, bool default_value, std::string help);
OptionInfo string_option(std::string key, std::string member, std::string default_value,
                         std::vector<std::string> values, std::string help);
OptionInfo channels_option();                     // filled in by the model
OptionInfo normalized_shape_option();             // filled in by the model
OptionInfo eps_option(double default_value);      // > 0
OptionInfo momentum_option(double default_value); // in [0, 1]
OptionInfo affine_option(bool default_value = true);

// Helpers for the methods' factories: channels (required) then eps; momentum that may not be null.
template <class Options>
void read_channels_eps(const OptionReader& r, Options& o) {
  o.channels = r.integer("channels");
  o.eps = r.number("eps", o.eps);
}
// layernorm and rmsnorm: statistics over the trailing normalizedShape dims.
template <class Layer, class Options>
std::unique_ptr<NormLayer> create_over_trailing_dims(const MethodInfo& info, const nlohmann::json& options) {
  OptionReader r(options, info.name, info.option_keys());
  Options o;
  o.normalized_shape = r.dims("normalizedShape");
  o.eps = r.number("eps", o.eps);
  o.affine = r.boolean("affine", o.affine);
  return std::make_unique<Layer>(o);
}
double read_momentum_not_null(const OptionReader& r, const std::string& method, double fallback,
                              const char* detail = "");

}  // namespace normlab
