#include "normlab/registry.h"

#include <algorithm>

#include "normlab/batchnorm.h"
#include "normlab/batchrenorm.h"
#include "normlab/conv2d.h"
#include "normlab/error.h"
#include "normlab/frn.h"
#include "normlab/generalizedbatchnorm.h"
#include "normlab/groupnorm.h"
#include "normlab/instancenorm.h"
#include "normlab/l1batchnorm.h"
#include "normlab/layernorm.h"
#include "normlab/linear.h"
#include "normlab/lrn.h"
#include "normlab/options.h"
#include "normlab/rmsnorm.h"
#include "normlab/rng.h"
#include "normlab/switchablenorm.h"

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
      &batchnorm_info(),   &batchrenorm_info(), &layernorm_info(),   &groupnorm_info(),
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
      if (m->create == nullptr) names.push_back(m->name);
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

namespace {

// The largest weight (elements) create_weight_layer makes: 2^24 floats, 64 MiB per buffer.
constexpr int64_t kMaxWeightElements = int64_t{1} << 24;

int64_t positive(const OptionReader& r, const std::string& method, const char* key) {
  const int64_t v = r.integer(key);
  if (v < 1) fail(method, ": ", key, " must be a positive integer, got ", v);
  if (v > kMaxWeightElements) fail(method, ": ", key, " must be at most ", kMaxWeightElements, ", got ", v);
  return v;
}

}  // namespace

std::unique_ptr<Module> create_weight_layer(const std::string& method, const nlohmann::json& options) {
  if (!is_weight_method(method)) {
    std::string list;
    for (const std::string& m : weight_methods()) list += (list.empty() ? "" : ", ") + m;
    fail("unknown weight method '", method, "' (known: ", list, ")");
  }
  if (!options.is_object()) fail(method, ": options must be an object");
  const bool cosine = method == "cosinenorm";
  const bool conv = options.contains("kernelSize");
  // Linear takes inFeatures/outFeatures; Conv2d (kernelSize given) inChannels/outChannels.
  for (const char* key : {"inFeatures", "outFeatures"}) {
    if (conv && options.contains(key)) {
      fail(method, ": ", key, " is a Linear option, but kernelSize makes a Conv2d, which takes "
           "inChannels and outChannels");
    }
  }
  for (const char* key : {"inChannels", "outChannels", "stride", "padding"}) {
    if (!conv && options.contains(key)) {
      fail(method, ": ", key, " is a Conv2d option: give kernelSize too for a Conv2d, or inFeatures "
           "and outFeatures for a Linear");
    }
  }
  std::vector<std::string> known = conv ? std::vector<std::string>{"inChannels", "outChannels", "kernelSize",
                                                                    "stride", "padding", "bias", "seed"}
                                        : std::vector<std::string>{"inFeatures", "outFeatures", "bias", "seed"};
  if (cosine) known.push_back("centered");
  OptionReader r(options, method, known);
  const bool bias = r.boolean("bias", !cosine);
  const bool centered = cosine && r.boolean("centered", false);
  const WeightMode mode = !cosine ? WeightMode::weight_norm
                                  : centered ? WeightMode::centered_cosine : WeightMode::cosine;
  int64_t seed = 0;
  if (r.has("seed")) {
    seed = r.integer("seed");
    if (seed < 0) fail(method, ": seed must be an integer >= 0, got ", seed);
  }
  Rng rng(static_cast<uint64_t>(seed));
  if (!conv) {
    const int64_t in = positive(r, method, "inFeatures"), out = positive(r, method, "outFeatures");
    if (in * out > kMaxWeightElements) {
      fail(method, ": the weight of ", out, "x", in, " has more than ", kMaxWeightElements, " elements");
    }
    return std::make_unique<Linear>(in, out, rng, bias, mode);
  }
  const int64_t in = positive(r, method, "inChannels"), out = positive(r, method, "outChannels");
  const int64_t k = positive(r, method, "kernelSize");
  int64_t stride = 1, padding = 0;
  if (r.has("stride")) stride = positive(r, method, "stride");
  if (r.has("padding")) {
    padding = r.integer("padding");
    if (padding < 0 || padding > kMaxWeightElements) {
      fail(method, ": padding must be an integer in [0, ", kMaxWeightElements, "], got ", padding);
    }
  }
  if (static_cast<double>(in) * static_cast<double>(out) * static_cast<double>(k) * static_cast<double>(k) >
      static_cast<double>(kMaxWeightElements)) {
    fail(method, ": the weight of ", out, "x", in, "x", k, "x", k, " has more than ", kMaxWeightElements,
         " elements");
  }
  return std::make_unique<Conv2d>(in, out, k, stride, padding, rng, bias, mode);
}

nlohmann::json weight_layer_options(const Module& layer, uint64_t seed) {
  auto common = [&](nlohmann::json o, WeightMode mode, bool bias) {
    o["bias"] = bias;
    o["seed"] = seed;
    if (is_cosine(mode)) o["centered"] = mode == WeightMode::centered_cosine;
    return o;
  };
  if (auto* l = dynamic_cast<const Linear*>(&layer)) {
    return common({{"inFeatures", l->in_features()}, {"outFeatures", l->out_features()}}, l->mode(),
                  l->has_bias());
  }
  if (auto* c = dynamic_cast<const Conv2d*>(&layer)) {
    return common({{"inChannels", c->in_channels()}, {"outChannels", c->out_channels()},
                   {"kernelSize", c->kernel()}, {"stride", c->stride()}, {"padding", c->padding()}},
                  c->mode(), c->has_bias());
  }
  fail(layer.kind(), ": no weight-layer options description");
}

WeightMode model_weight_mode(const std::string& method, const nlohmann::json& options) {
  if (method == "weightnorm") {
    if (options.is_object() && !options.empty()) {
      fail(method, ": unknown option '", options.begin().key(), "' (weightnorm takes no options)");
    }
    OptionReader r(options, method, {});  // an object (or null)
    return WeightMode::weight_norm;
  }
  if (method == "cosinenorm") {
    OptionReader r(options, method, {"centered"});
    return r.boolean("centered", false) ? WeightMode::centered_cosine : WeightMode::cosine;
  }
  fail("unknown weight method '", method, "' (known: weightnorm, cosinenorm)");
}

nlohmann::json layer_options(const NormLayer& layer) {
  return method_info(layer.method()).options_of(layer);
}

}  // namespace normlab
