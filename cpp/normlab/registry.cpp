#include "normlab/registry.h"

#include "normlab/batchnorm.h"
#include "normlab/batchrenorm.h"
#include "normlab/error.h"
#include "normlab/groupnorm.h"
#include "normlab/instancenorm.h"
#include "normlab/layernorm.h"
#include "normlab/options.h"

namespace normlab {

const std::vector<std::string>& norm_methods() {
  static const std::vector<std::string> methods = {"batchnorm", "batchrenorm", "layernorm",
                                                   "groupnorm", "instancenorm"};
  return methods;
}

std::unique_ptr<NormLayer> create_norm(const std::string& method, const nlohmann::json& options) {
  if (method == "batchnorm") {
    OptionReader r(options, method, {"channels", "eps", "momentum", "affine", "trackRunningStats"});
    BatchNormOptions o;
    o.channels = r.integer("channels");
    o.eps = r.number("eps", o.eps);
    o.momentum = r.number_or_null("momentum", o.momentum);
    o.affine = r.boolean("affine", o.affine);
    o.track_running_stats = r.boolean("trackRunningStats", o.track_running_stats);
    return std::make_unique<BatchNorm>(o);
  }
  if (method == "batchrenorm") {
    OptionReader r(options, method, {"channels", "eps", "momentum", "rMax", "dMax", "affine"});
    BatchRenormOptions o;
    o.channels = r.integer("channels");
    o.eps = r.number("eps", o.eps);
    const std::optional<double> momentum = r.number_or_null("momentum", o.momentum);
    if (!momentum) {
      fail(method, ": momentum must be in [0, 1], got null (the cumulative average is a batchnorm option)");
    }
    o.momentum = *momentum;
    o.r_max = r.number("rMax", o.r_max);
    o.d_max = r.number("dMax", o.d_max);
    o.affine = r.boolean("affine", o.affine);
    return std::make_unique<BatchRenorm>(o);
  }
  if (method == "layernorm") {
    OptionReader r(options, method, {"normalizedShape", "eps", "affine"});
    LayerNormOptions o;
    o.normalized_shape = r.dims("normalizedShape");
    o.eps = r.number("eps", o.eps);
    o.affine = r.boolean("affine", o.affine);
    return std::make_unique<LayerNorm>(o);
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
    o.channels = r.integer("channels");
    o.eps = r.number("eps", o.eps);
    o.affine = r.boolean("affine", o.affine);
    return std::make_unique<InstanceNorm>(o);
  }
  std::string list;
  for (const std::string& m : norm_methods()) list += (list.empty() ? "" : ", ") + m;
  fail("unknown normalization method '", method, "' (known: ", list, ")");
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
  fail(layer.method(), ": no options description");
}

}  // namespace normlab
