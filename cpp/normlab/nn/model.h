// A model is a sequence of Modules. It keeps each layer's input from the last forward, so backward
// can run the chain in reverse and the runner can read what flows into each normalization layer.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "normlab/core/rng.h"
#include "normlab/nn/module.h"
#include "normlab/nn/norm_module.h"

namespace normlab {

class Model {
 public:
  void add(std::unique_ptr<Module> layer);
  // The model's output (logits) for x; valid until the next forward.
  const Tensor& forward(const Tensor& x, bool training);
  // Backpropagates dL/dlogits through the last training forward, setting every parameter's grad.
  void backward(const Tensor& dlogits);
  std::vector<Param*> parameters();
  // The normalization layers in order, and the input each received in the last forward.
  std::vector<NormModule*> norms();
  const Tensor& norm_input(size_t k) const;
  // The input of layer i in the last forward (i == size(): the output).
  const Tensor& activation(size_t i) const { return inputs_.at(i); }
  size_t size() const { return layers_.size(); }
  const Module& layer(size_t i) const { return *layers_[i]; }
  // "linear(64->128) batchnorm relu linear(128->128) ..."
  std::string summary() const;

 private:
  std::vector<std::unique_ptr<Module>> layers_;
  std::vector<size_t> norm_index_;  // positions of the NormModules in layers_
  std::vector<Tensor> inputs_;      // inputs_[i]: input of layer i in the last forward; back(): output
  Tensor grad_, grad_next_;
  // For backward's shortcut at the first layer with parameters, whose input gradient nobody reads
  // (layers before it have no parameters and are skipped): whether the last forward completed in
  // training mode, that layer's index, and column scratch for a Conv2d there.
  bool last_training_ = false;
  size_t first_param_ = 0;
  std::vector<float> col_scratch_;
};

// AdaBN (Li et al. 2016, arXiv 1603.04779): every normalization layer that keeps population
// statistics (its MethodInfo's population_statistics: the BatchNorm family, Switchable Norm's BN part)
// gets those of the target-domain inputs `x` ([n, ...] samples, unlabeled), layer by layer in
// order: layer k's statistics come from what it receives through layers 0..k-1, already adapted.
// Weights do not change. Forwards run in inference mode in chunks of `chunk` samples. Returns the
// number of layers adapted (0: nothing to adapt). Throws Error on an empty x or a wrong shape.
int adapt_batch_norm(Model& model, const Tensor& x, int64_t chunk = 100);

struct ModelSpec {
  std::string kind = "mlp";               // "mlp" | "cnn"
  std::vector<int64_t> hidden = {128, 128};  // mlp: widths of the hidden layers
  std::vector<int64_t> channels = {8, 16};   // cnn: channels of the conv blocks
  std::string activation = "relu";        // "relu" | "tanh"
};

// Reads {"kind", "hidden", "channels", "activation"}; validates.
ModelSpec model_spec_from_json(const nlohmann::json& json);

// Builds the model for samples of `sample_shape` ([F] or [C,H,W]) and `classes` outputs, with the
// normalization `method` (empty: none) and its `options` after every hidden Linear / Conv2d:
//   mlp: flatten, [linear -> norm -> act] per hidden width, linear
//   cnn: [conv3x3 (padding 1) -> norm -> act -> maxpool 2] per channel count, flatten, linear
// The weight methods (weightnorm, cosinenorm: registry.h) instead make every hidden Linear / Conv2d
// in their weight mode and add no layer after it; the final Linear stays plain.
// Every weight is drawn from `rng` in layer order; normalization layers draw nothing, so models built
// from equal generators have identical weights whatever their normalization (weight norm's v is the
// plain weight and g its norms; cosine layers draw and discard the bias a plain layer would have).
Model build_model(const ModelSpec& spec, const Shape& sample_shape, int32_t classes,
                  const std::string& method, const nlohmann::json& options, Rng rng);

}  // namespace normlab
