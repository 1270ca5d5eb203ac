#include "normlab/nn/weight_layer.h"

#include "normlab/core/error.h"
#include "normlab/core/options.h"
#include "normlab/core/rng.h"
#include "normlab/nn/conv2d.h"
#include "normlab/nn/linear.h"
#include "normlab/norm/registry.h"

namespace normlab {

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

}  // namespace normlab
