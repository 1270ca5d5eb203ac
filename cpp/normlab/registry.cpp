#include "normlab/registry.h"

#include <algorithm>

#include "normlab/batchnorm.h"
#include "normlab/batchrenorm.h"
#include "normlab/conv2d.h"
#include "normlab/linear.h"
#include "normlab/rng.h"
#include "normlab/error.h"
#include "normlab/frn.h"
#include "normlab/generalizedbatchnorm.h"
#include "normlab/switchablenorm.h"
#include "normlab/l1batchnorm.h"
#include "normlab/lrn.h"
#include "normlab/rmsnorm.h"
#include "normlab/groupnorm.h"
#include "normlab/instancenorm.h"
#include "normlab/layernorm.h"
#include "normlab/options.h"

namespace normlab {

const std::vector<std::string>& norm_methods() {
  static const std::vector<std::string> methods = {"batchnorm", "batchrenorm", "layernorm",
                                                   "groupnorm", "instancenorm",
                                                   "lrn", "rmsnorm", "frn", "l1batchnorm",
                                                   "generalizedbatchnorm", "switchablenorm"};
  return methods;
}

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

// The options most layers share, read in this order: channels (required), then eps.
template <class Options>
void read_channels_eps(const OptionReader& r, Options& o) {
  o.channels = r.integer("channels");
  o.eps = r.number("eps", o.eps);
}

// momentum of the methods whose running averages need a rate: null (the cumulative average, a
// batchnorm option) is refused, `detail` ending the message.
double read_momentum_not_null(const OptionReader& r, const std::string& method, double fallback,
                              const char* detail = "") {
  const std::optional<double> momentum = r.number_or_null("momentum", fallback);
  if (!momentum) fail(method, ": momentum must be in [0, 1], got null", detail);
  return *momentum;
}

// layernorm and rmsnorm: statistics over the trailing normalizedShape dims.
template <class Layer, class Options>
std::unique_ptr<NormLayer> create_over_trailing_dims(const std::string& method,
                                                     const nlohmann::json& options) {
  OptionReader r(options, method, {"normalizedShape", "eps", "affine"});
  Options o;
  o.normalized_shape = r.dims("normalizedShape");
  o.eps = r.number("eps", o.eps);
  o.affine = r.boolean("affine", o.affine);
  return std::make_unique<Layer>(o);
}

}  // namespace

std::unique_ptr<NormLayer> create_norm(const std::string& method, const nlohmann::json& options) {
  check_layer_size(method, options);
  if (method == "batchnorm") {
    OptionReader r(options, method, {"channels", "eps", "momentum", "affine", "trackRunningStats"});
    BatchNormOptions o;
    read_channels_eps(r, o);
    o.momentum = r.number_or_null("momentum", o.momentum);
    o.affine = r.boolean("affine", o.affine);
    o.track_running_stats = r.boolean("trackRunningStats", o.track_running_stats);
    return std::make_unique<BatchNorm>(o);
  }
  if (method == "batchrenorm") {
    OptionReader r(options, method, {"channels", "eps", "momentum", "rMax", "dMax", "affine"});
    BatchRenormOptions o;
    read_channels_eps(r, o);
    o.momentum = read_momentum_not_null(r, method, o.momentum,
                                        " (the cumulative average is a batchnorm option)");
    o.r_max = r.number("rMax", o.r_max);
    o.d_max = r.number("dMax", o.d_max);
    o.affine = r.boolean("affine", o.affine);
    return std::make_unique<BatchRenorm>(o);
  }
  if (method == "layernorm") {
    return create_over_trailing_dims<LayerNorm, LayerNormOptions>(method, options);
  }
  if (method == "groupnorm") {
    OptionReader r(options, method, {"channels", "groups", "eps", "affine"});
    GroupNormOptions o;
    o.channels = r.integer("channels");
    o.groups = r.integer("groups");
    o.eps = r.number("eps", o.eps);
    o.affine = r.boolean("affine", o.affine);
    return std::make_unique<GroupNorm>(o);
  }
  if (method == "instancenorm") {
    OptionReader r(options, method, {"channels", "eps", "affine"});
    InstanceNormOptions o;
    read_channels_eps(r, o);
    o.affine = r.boolean("affine", o.affine);
    return std::make_unique<InstanceNorm>(o);
  }
  if (method == "lrn") {
    OptionReader r(options, method, {"size", "alpha", "beta", "k", "alphaScaling"});
    LrnOptions o;
    o.size = r.integer("size");
    o.alpha = r.number("alpha", o.alpha);
    o.beta = r.number("beta", o.beta);
    o.k = r.number("k", o.k);
    o.alpha_scaling = alpha_scaling_from_json(options, method, "alphaScaling", o.alpha_scaling);
    return std::make_unique<LocalResponseNorm>(o);
  }
  if (method == "rmsnorm") {
    return create_over_trailing_dims<RmsNorm, RmsNormOptions>(method, options);
  }
  if (method == "frn") {
    OptionReader r(options, method, {"channels", "eps", "learnableEps"});
    FrnOptions o;
    read_channels_eps(r, o);
    o.learnable_eps = r.boolean("learnableEps", o.learnable_eps);
    return std::make_unique<FilterResponseNorm>(o);
  }
  if (method == "l1batchnorm") {
    OptionReader r(options, method, {"channels", "eps", "momentum", "affine", "scaleSqrtPiOver2"});
    L1BatchNormOptions o;
    read_channels_eps(r, o);
    o.momentum = read_momentum_not_null(r, method, o.momentum);
    o.affine = r.boolean("affine", o.affine);
    o.scale_sqrt_pi_over_2 = r.boolean("scaleSqrtPiOver2", o.scale_sqrt_pi_over_2);
    return std::make_unique<L1BatchNorm>(o);
  }
  if (method == "generalizedbatchnorm") {
    OptionReader r(options, method,
                   {"channels", "center", "deviation", "level", "eps", "momentum", "affine"});
    GeneralizedBatchNormOptions o;
    o.channels = r.integer("channels");
    // Either of center and deviation alone brings its partner (deviation 'mad' -> center 'median').
    const std::optional<std::string> center = r.text("center"), deviation = r.text("deviation");
    if (center) o.center = *center;
    if (deviation) o.deviation = *deviation;
    if (center && !deviation && !gbn_partner(*center).empty()) o.deviation = gbn_partner(*center);
    if (deviation && !center && !gbn_partner(*deviation).empty()) o.center = gbn_partner(*deviation);
    o.level = r.number("level", o.level);
    o.eps = r.number("eps", o.eps);
    o.momentum = read_momentum_not_null(r, method, o.momentum);
    o.affine = r.boolean("affine", o.affine);
    return std::make_unique<GeneralizedBatchNorm>(o);
  }
  if (method == "switchablenorm") {
    OptionReader r(options, method, {"channels", "eps", "momentum", "affine", "useIN", "useBN"});
    SwitchableNormOptions o;
    read_channels_eps(r, o);
    o.momentum = read_momentum_not_null(r, method, o.momentum);
    o.affine = r.boolean("affine", o.affine);
    o.use_in = r.boolean("useIN", o.use_in);
    o.use_bn = r.boolean("useBN", o.use_bn);
    return std::make_unique<SwitchableNorm>(o);
  }
  std::string list;
  for (const std::string& m : layer_methods()) list += (list.empty() ? "" : ", ") + m;
  if (is_weight_method(method)) {
    fail(method, ": not a normalization layer but a weight reparameterization of a Linear or "
         "Conv2d (create_weight_layer)");
  }
  fail("unknown normalization method '", method, "' (known: ", list, ")");
}

const std::vector<std::string>& weight_methods() {
  static const std::vector<std::string> methods = {"weightnorm", "cosinenorm"};
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
  if (auto* l = dynamic_cast<const BatchNorm*>(&layer)) {
    const BatchNormOptions& o = l->options();
    return {{"channels", o.channels},
            {"eps", o.eps},
            {"momentum", o.momentum ? nlohmann::json(*o.momentum) : nlohmann::json(nullptr)},
            {"affine", o.affine},
            {"trackRunningStats", o.track_running_stats}};
  }
  if (auto* l = dynamic_cast<const BatchRenorm*>(&layer)) {
    const BatchRenormOptions& o = l->options();
    return {{"channels", o.channels}, {"eps", o.eps}, {"momentum", o.momentum},
            {"rMax", o.r_max},        {"dMax", o.d_max}, {"affine", o.affine}};
  }
  if (auto* l = dynamic_cast<const LayerNorm*>(&layer)) {
    const LayerNormOptions& o = l->options();
    return {{"normalizedShape", o.normalized_shape}, {"eps", o.eps}, {"affine", o.affine}};
  }
  if (auto* l = dynamic_cast<const GroupNorm*>(&layer)) {
    const GroupNormOptions& o = l->options();
    return {{"channels", o.channels}, {"groups", o.groups}, {"eps", o.eps}, {"affine", o.affine}};
  }
  if (auto* l = dynamic_cast<const InstanceNorm*>(&layer)) {
    const InstanceNormOptions& o = l->options();
    return {{"channels", o.channels}, {"eps", o.eps}, {"affine", o.affine}};
  }
  if (auto* l = dynamic_cast<const LocalResponseNorm*>(&layer)) {
    const LrnOptions& o = l->options();
    return {{"size", o.size}, {"alpha", o.alpha}, {"beta", o.beta}, {"k", o.k},
            {"alphaScaling", alpha_scaling_name(o.alpha_scaling)}};
  }
  if (auto* l = dynamic_cast<const RmsNorm*>(&layer)) {
    const RmsNormOptions& o = l->options();
    return {{"normalizedShape", o.normalized_shape}, {"eps", o.eps}, {"affine", o.affine}};
  }
  if (auto* l = dynamic_cast<const FilterResponseNorm*>(&layer)) {
    const FrnOptions& o = l->options();
    return {{"channels", o.channels}, {"eps", o.eps}, {"learnableEps", o.learnable_eps}};
  }
  if (auto* l = dynamic_cast<const L1BatchNorm*>(&layer)) {
    const L1BatchNormOptions& o = l->options();
    return {{"channels", o.channels}, {"eps", o.eps}, {"momentum", o.momentum},
            {"affine", o.affine}, {"scaleSqrtPiOver2", o.scale_sqrt_pi_over_2}};
  }
  if (auto* l = dynamic_cast<const GeneralizedBatchNorm*>(&layer)) {
    const GeneralizedBatchNormOptions& o = l->options();
    return {{"channels", o.channels}, {"center", o.center},     {"deviation", o.deviation},
            {"level", o.level},       {"eps", o.eps},           {"momentum", o.momentum},
            {"affine", o.affine}};
  }
  if (auto* l = dynamic_cast<const SwitchableNorm*>(&layer)) {
    const SwitchableNormOptions& o = l->options();
    return {{"channels", o.channels}, {"eps", o.eps},        {"momentum", o.momentum},
            {"affine", o.affine},     {"useIN", o.use_in},   {"useBN", o.use_bn}};
  }
  fail(layer.method(), ": no options description");
}

}  // namespace normlab
