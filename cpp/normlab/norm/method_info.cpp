#include "normlab/norm/method_info.h"

#include "normlab/core/error.h"

namespace normlab {

std::string MethodInfo::label_for(const nlohmann::json& options) const {
  return label_of != nullptr && options.is_object() ? label_of(options) : label;
}

const OptionInfo* MethodInfo::option(const std::string& key) const {
  for (const OptionInfo& o : options) {
    if (o.key == key) return &o;
  }
  return nullptr;
}

std::vector<std::string> MethodInfo::option_keys() const {
  std::vector<std::string> keys;
  for (const OptionInfo& o : options) keys.push_back(o.key);
  return keys;
}

nlohmann::json method_info_json(const MethodInfo& info) {
  nlohmann::json options = nlohmann::json::array();
  for (const OptionInfo& o : info.options) {
    nlohmann::json j = {{"key", o.key}, {"type", o.type}, {"default", o.default_value}, {"help", o.help}};
    if (o.min) j["min"] = *o.min;
    if (o.min_exclusive) j["exclusiveMin"] = true;
    if (o.max) j["max"] = *o.max;
    if (!o.values.empty()) j["values"] = o.values;
    if (o.nullable) j["nullable"] = true;
    if (o.from_model) j["fromModel"] = true;
    options.push_back(std::move(j));
  }
  return {{"name", info.name},
          {"aliases", info.aliases},
          {"label", info.label},
          {"options", std::move(options)},
          {"usesBatchStatistics", info.uses_batch_statistics},
          {"needsSpatialDims", info.needs_spatial_dims},
          {"foldable", info.foldable},
          {"populationStatistics", info.population_statistics},
          {"weightMethod", info.weight_method()},
          {"baseline", info.baseline}};
}

OptionInfo number_option(std::string key, std::string member, double default_value, std::optional<double> min,
                         std::optional<double> max, std::string help) {
  OptionInfo o;
  o.key = std::move(key);
  o.type = "number";
  o.member = std::move(member);
  o.default_value = default_value;
  o.min = min;
  o.max = max;
  o.help = std::move(help);
  return o;
}

OptionInfo integer_option(std::string key, std::string member, nlohmann::json default_value,
                          std::optional<double> min, std::string help) {
  OptionInfo o;
  o.key = std::move(key);
  o.type = "integer";
  o.member = std::move(member);
  o.default_value = std::move(default_value);
  o.min = min;
  o.help = std::move(help);
  return o;
}

OptionInfo boolean_option(std::string key, std::string member, bool default_value, std::string help) {
  OptionInfo o;
  o.key = std::move(key);
  o.type = "boolean";
  o.member = std::move(member);
  o.default_value = default_value;
  o.help = std::move(help);
  return o;
}

OptionInfo string_option(std::string key, std::string member, std::string default_value,
                         std::vector<std::string> values, std::string help) {
  OptionInfo o;
  o.key = std::move(key);
  o.type = "string";
  o.member = std::move(member);
  o.default_value = std::move(default_value);
  o.values = std::move(values);
  o.help = std::move(help);
  return o;
}

OptionInfo channels_option() {
  OptionInfo o = integer_option("channels", "channels", nullptr, 1,
                                "number of channels C of inputs [N, C, ...] (a model fills it in)");
  o.from_model = true;
  return o;
}

OptionInfo normalized_shape_option() {
  OptionInfo o;
  o.key = "normalizedShape";
  o.type = "integer[]";
  o.member = "normalized_shape";
  o.default_value = nullptr;
  o.help = "the trailing dims normalized over, e.g. [C] or [C, H, W] (a model fills in all but N)";
  o.from_model = true;
  return o;
}

OptionInfo eps_option(double default_value) {
  OptionInfo o = number_option("eps", "eps", default_value, 0, std::nullopt,
                               "added to the variance (or deviation) for numerical stability");
  o.min_exclusive = true;
  return o;
}

OptionInfo momentum_option(double default_value) {
  return number_option("momentum", "momentum", default_value, 0, 1,
                       "running = (1 - momentum) * running + momentum * batch (PyTorch's convention)");
}

OptionInfo affine_option(bool default_value) {
  return boolean_option("affine", "affine", default_value, "learn a per-channel scale gamma and shift beta");
}

double read_momentum_not_null(const OptionReader& r, const std::string& method, double fallback,
                              const char* detail) {
  const std::optional<double> momentum = r.number_or_null("momentum", fallback);
  if (!momentum) fail(method, ": momentum must be in [0, 1], got null", detail);
  return *momentum;
}

}  // namespace normlab
