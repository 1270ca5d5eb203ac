// A model is a sequence of Modules. It keeps each layer's input from the last forward, so backward
// can run the chain in reverse and the runner can read what flows into each normalization layer.
// build_model makes one from a description (model_spec.h): shapes planned and checked first, then
// the normalization slots filled and the weights drawn.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "normlab/core/rng.h"
#include "normlab/nn/model_spec.h"
#include "normlab/nn/module.h"
#include "normlab/nn/norm_module.h"

namespace normlab {

class Model {
 public:
  void add(std::unique_ptr<Module> layer);
  // An independent deep copy (every layer's clone(): parameters and running state copied, nothing
  // shared), e.g. for probes that must not move the model they measure. The copy has no last forward.
  Model clone() const;
  // The model's output (logits) for x; valid until the next forward.
  const Tensor& forward(const Tensor& x, bool training);
  // Backpropagates dL/dlogits through the last training forward, setting every parameter's grad.
  void backward(const Tensor& dlogits);
  std::vector<Param*> parameters();
  // The normalization layers in forward order, those inside residual blocks included, and the
  // input each received in the last forward.
  std::vector<NormModule*> norms();
  const Tensor& norm_input(size_t k) const;
  // The input of layer i in the last forward (i == size(): the output).
  const Tensor& activation(size_t i) const { return inputs_.at(i); }
  size_t size() const { return layers_.size(); }
  const Module& layer(size_t i) const { return *layers_[i]; }
  Module& layer(size_t i) { return *layers_[i]; }
  // "linear batchnorm relu linear ...", a residual block as "residual(conv2d batchnorm relu)"
  std::string summary() const;

 private:
  // The normalization layers (depth first through residual blocks) and, if `inputs` is given,
  // the tensor each received in the last forward.
  void find_norms(std::vector<NormModule*>* norms, std::vector<const Tensor*>* inputs) const;

  std::vector<std::unique_ptr<Module>> layers_;
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

// The most weights one Linear or Conv2d of a model may have (a 4096 x 4096 Linear, the widest
// hidden layer pair; a classifier on a large flattened image would otherwise pass it silently).
constexpr int64_t kMaxLayerWeights = int64_t{4096} * 4096;

// One layer of a model as build_model plans it, before anything is allocated.
struct PlannedLayer {
  LayerSpec spec;                  // what it is (also the flattens and the classifier it adds)
  std::string where;               // "layers[3]", "layers[4].layers[1]", "the classifier", ...
  Shape input, output;             // per sample: [F] or [C,H,W]
  std::vector<PlannedLayer> body;  // residual: its layers
  bool added = false;              // made by build_model, not described: a flatten, the classifier
};

// The layers build_model makes for `spec` (model_body), samples of `sample_shape` ([F] or [C,H,W])
// and `classes` outputs, every shape checked: a flatten before each Linear given images, then the
// body, then a flatten if the body ends with images, and the classifier Linear(F, classes).
// Throws Error naming the layer (its place and compact form) and the shapes: a conv2d, maxpool
// or gap given flat features, a kernel or window larger than its (padded) input, a residual block
// whose layers change the shape (both shapes named), a Linear of more than kMaxLayerWeights weights.
std::vector<PlannedLayer> plan_model(const ModelSpec& spec, const Shape& sample_shape, int32_t classes);

// The per-sample input shapes of the model's norm slots, in forward order.
std::vector<Shape> norm_slot_shapes(const ModelSpec& spec, const Shape& sample_shape);

// What a model of this description holds, in floats, as the runner's memory estimate counts it
// (estimate_memory in run/runner.h).
struct ModelSize {
  double parameters = 0;  // weights and biases, and a gamma and beta per channel of every norm slot
  double outputs = 0;     // per sample: every layer's output, residual blocks' layers included
  double widest = 0;      // per sample: the largest input or output of a layer
  double gradients = 0;   // per sample: each residual block's two gradient buffers (its widest each)
  double scratch = 0;     // per model: each Conv2d's column buffers, 2 x C*K*K*Ho*Wo
};
ModelSize model_size(const ModelSpec& spec, const Shape& sample_shape, int32_t classes);

// Builds the model planned by plan_model, with the normalization `method` (empty: none) and its
// `options` in every norm slot (make_norm_module: a slot given a shape the method does not take
// throws the method's error, named by the slot for a described model). Those layers are made first,
// then the Linear / Conv2d weights are drawn, so no weight is drawn for a model that cannot be built.
// The weight methods (weightnorm, cosinenorm: registry.h) instead make every described Linear /
// Conv2d in their weight mode and leave the norm slots empty; the classifier stays plain.
// Every weight is drawn from `rng` in layer order; normalization layers draw nothing, so models built
// from equal generators have identical weights whatever their normalization (weight norm's v is the
// plain weight and g its norms; cosine layers draw and discard the bias a plain layer would have).
// The named models give the modules the fixed builders made before descriptions, in their order:
//   mlp: [flatten,] [linear -> norm -> act] per hidden width, linear
//   cnn: [conv3x3 (padding 1) -> norm -> act -> maxpool 2] per channel count, flatten, linear
Model build_model(const ModelSpec& spec, const Shape& sample_shape, int32_t classes,
                  const std::string& method, const nlohmann::json& options, Rng rng);

}  // namespace normlab
