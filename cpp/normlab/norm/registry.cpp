#include "normlab/norm/registry.h"

#include <algorithm>

#include "normlab/core/error.h"
#include "normlab/core/options.h"
#include "normlab/norm/batchnorm.h"
#include "normlab/norm/batchrenorm.h"
#include "normlab/norm/frn.h"
#include "normlab/norm/generalizedbatchnorm.h"
#include "normlab/norm/groupnorm.h"
#include "normlab/norm/instancenorm.h"
#include "normlab/norm/l1batchnorm.h"
#include "normlab/norm/layernorm.h"
#include "normlab/norm/lrn.h"
#include "normlab/norm/rmsnorm.h"
#include "normlab/norm/switchablenorm.h"

namespace normlab {

namespace {

// The most per-channel (or per-element) parameters a layer may have: 2^24 floats are 64 MiB per
// buffer. Larger requests are refused before anything is allocated (found by fuzz/fuzz_layer).
constexpr double kMaxLayerWidth = 1 << 24;

void check_layer_size(const std::string& method, const nlohmann::json& options) {
  if (!options.is_object()) return;  // OptionReader names that problem
  auto it = options.find("channels");
  if (it != options.end() && it->is_number() && it->get<double>() > kMaxLayerWidth) {
    fail(method, ": channels must be at most ", static_cast<int64_t>(kMaxLayerWidth), ", got ", it->dump());
  }
  it = options.find("normalizedShape");
  if (it != options.end() && it->is_array()) {
    double product = 1;
    for (const auto& d : *it) product *= d.is_number() ? std::max(1.0, d.get<double>()) : 1.0;
    if (product > kMaxLayerWidth) {
      fail(method, ": normalizedShape must have at most ", static_cast<int64_t>(kMaxLayerWidth),
           " elements, got ", it->dump());
    }
  }
}

}  // namespace

namespace {

// The comparisons' baseline: the same model with nothing in the norm slot.
const MethodInfo& none_info() {
  static const MethodInfo info = [] {
    MethodInfo m;
    m.name = "none";
    m.label = "No normalization";
    m.fill = ModelFill::none;
    m.baseline = true;
    return m;
  }();
  return info;
}

// The weight methods are weight modes of a Linear or Conv2d (create_weight_layer below), not
// layers: their descriptors have no factory, and their options are the model's weight mode.
const MethodInfo& weightnorm_info() {
  static const MethodInfo info = [] {
    MethodInfo m;
    m.name = "weightnorm";
    m.aliases = {"wn"};
    m.label = "Weight Norm";
    m.fill = ModelFill::none;
    m.foldable = true;  // into the plain weight g * v / ||v||
    return m;
  }();
  return info;
}

std::string cosinenorm_label(const nlohmann::json& options) {
  const bool centred = options.contains("centered") && options.at("centered") == true;
  return centred ? "Cosine Norm (centred)" : "Cosine Norm";
}

const MethodInfo& cosinenorm_info() {
  static const MethodInfo info = [] {
    MethodInfo m;
    m.name = "cosinenorm";
    m.aliases = {"cn"};
    m.label = "Cosine Norm";
    m.options = {boolean_option("centered", "centered", false,
                                "subtract the means first (Pearson correlation instead of cosine)")};
    m.fill = ModelFill::none;
    m.label_of = cosinenorm_label;
    return m;
  }();
  return info;
}

}  // namespace

const std::vector<const MethodInfo*>& method_table() {
  // The order methods were added in, which is the order of every list shown to users.
  static const std::vector<const MethodInfo*> table = {
      &none_info(),        &batchnorm_info(),   &batchrenorm_info(), &layernorm_info(),   &groupnorm_info(),
      &instancenorm_info(), &lrn_info(),        &rmsnorm_info(),     &frn_info(),
      &l1batchnorm_info(), &generalizedbatchnorm_info(), &switchablenorm_info(),
      &weightnorm_info(),  &cosinenorm_info()};
  return table;
}

const MethodInfo* find_method(const std::string& name_or_alias) {
  for (const MethodInfo* m : method_table()) {
    if (m->name == name_or_alias) return m;
    for (const std::string& alias : m->aliases) {
      if (alias == name_or_alias) return m;
    }
  }
  return nullptr;
}

const MethodInfo& method_info(const std::string& method) {
  const MethodInfo* m = find_method(method);
  if (m == nullptr) {
    std::string list;
    for (const std::string& name : layer_methods()) list += (list.empty() ? "" : ", ") + name;
    fail("unknown normalization method '", method, "' (known: ", list, ")");
  }
  return *m;
}

const std::vector<std::string>& norm_methods() {
  static const std::vector<std::string> methods = [] {
    std::vector<std::string> names;
    for (const MethodInfo* m : method_table()) {
      if (m->create != nullptr) names.push_back(m->name);
    }
    return names;
  }();
  return methods;
}

nlohmann::json describe_methods() {
  nlohmann::json all = nlohmann::json::array();
  for (const MethodInfo* m : method_table()) all.push_back(method_info_json(*m));
  return all;
}

std::unique_ptr<NormLayer> create_norm(const std::string& method, const nlohmann::json& options) {
  check_layer_size(method, options);
  const MethodInfo& info = method_info(method);
  if (info.baseline) fail("none: the comparisons' baseline without normalization, not a layer");
  if (info.create == nullptr) {
    fail(info.name, ": not a normalization layer but a weight reparameterization of a Linear or "
         "Conv2d (create_weight_layer)");
  }
  return info.create(options);
}

const std::vector<std::string>& weight_methods() {
  static const std::vector<std::string> methods = [] {
    std::vector<std::string> names;
    for (const MethodInfo* m : method_table()) {
      if (m->weight_method()) names.push_back(m->name);
    }
    return names;
  }();
  return methods;
}

std::vector<std::string> layer_methods() {
  std::vector<std::string> all = norm_methods();
  all.insert(all.end(), weight_methods().begin(), weight_methods().end());
  return all;
}

bool is_weight_method(const std::string& method) {
  const auto& w = weight_methods();
  return std::find(w.begin(), w.end(), method) != w.end();
}

nlohmann::json layer_options(const NormLayer& layer) {
  return method_info(layer.method()).options_of(layer);
}

}  // namespace normlab
