// Adapts a normalization layer of the layer API (NormLayer) to the training core's Module contract,
// and builds one from a method name and JSON options with the shape-dependent options filled in.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "normlab/nn/module.h"
#include "normlab/norm/norm_layer.h"

namespace normlab {

class NormModule : public Module {
 public:
  // Takes ownership; marks the layer's parameters as not subject to weight decay (PyTorch
  // practice: normalization gammas and betas are excluded). Throws Error on a null layer.
  explicit NormModule(std::unique_ptr<NormLayer> layer);

  std::string kind() const override;  // the layer's method name: "batchnorm", ...
  // The input shape itself, if the layer takes it (NormLayer::check_input_shape). Conditions on the
  // batch size itself (batchnorm's "more than 1 value per channel") are left to forward: model
  // builders pass N = 1 as a placeholder batch.
  Shape output_shape(const Shape& input) const override;
  void forward(const Tensor& x, Tensor& y, bool training) override;
  void backward(const Tensor& dy, Tensor& dx) override;
  std::vector<Param*> parameters() override;
  // A new layer of the same method and options (registry's layer_options) with this one's
  // parameters and state. Throws Error if a value cannot be set (e.g. a NaN after divergence).
  std::unique_ptr<Module> clone() const override;

  NormLayer& layer() { return *layer_; }
  const NormLayer& layer() const { return *layer_; }

 private:
  std::unique_ptr<NormLayer> layer_;
};

// create_norm(method, options) with the options that follow from the input shape [N,C,...] filled
// in when the caller did not give them (absent or null), as the method's table entry says
// (method_info.h): `fill` channels = input_shape[1], or normalizedShape = input_shape[1:] (all
// dims after N: over (C,H,W) in CNNs, over the features in MLPs), then its `model_defaults`
// (GroupNorm's groups, Switchable Norm's useIN on [N,C]). Then checks that the layer takes input_shape (e.g. instancenorm on a rank-2 input throws the
// layer's own error). Throws Error on an input shape of rank < 2 or any create_norm error.
std::unique_ptr<NormModule> make_norm_module(const std::string& method,
                                             const nlohmann::json& options,
                                             const Shape& input_shape);

}  // namespace normlab
