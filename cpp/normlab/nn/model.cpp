#include "normlab/nn/model.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "normlab/core/error.h"
#include "normlab/nn/activations.h"
#include "normlab/nn/conv2d.h"
#include "normlab/nn/linear.h"
#include "normlab/nn/pooling.h"
#include "normlab/nn/residual.h"
#include "normlab/nn/weight_layer.h"
#include "normlab/norm/registry.h"

namespace normlab {

void Model::add(std::unique_ptr<Module> layer) {
  // Until a layer with parameters arrives, the next one is the first that may have some.
  const bool none_yet = first_param_ == layers_.size();
  layers_.push_back(std::move(layer));
  if (none_yet && layers_.back()->parameters().empty()) first_param_ = layers_.size();
  inputs_.resize(layers_.size() + 1);
}

Model Model::clone() const {
  Model copy;
  for (const auto& layer : layers_) copy.add(layer->clone());
  return copy;
}

const Tensor& Model::forward(const Tensor& x, bool training) {
  last_training_ = false;
  inputs_[0] = x;
  for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->forward(inputs_[i], inputs_[i + 1], training);
  last_training_ = training;
  return inputs_.back();
}

namespace {

// The parameter grads of the model's first parameterised layer without its input gradient, which
// nobody reads (a Linear's dX GEMM, or a Conv2d's dcol GEMM and col2im): the same arithmetic as the
// layer's own backward for dW and db. x is the layer's input in the last (training) forward, which
// the layer cached too. Returns false, computing nothing, for other layers or unexpected shapes
// (the layer's own backward then runs and reports any error).
bool backward_params_only(Module& layer, const Tensor& x, const Tensor& dy, std::vector<float>& col) {
  if (auto* lin = dynamic_cast<Linear*>(&layer)) {
    if (lin->mode() != WeightMode::plain) return false;
    if (x.shape.size() != 2 || dy.shape != Shape{x.shape[0], lin->out_features()}) return false;
    linear_backward(nullptr, lin->weight().grad.data(), lin->has_bias() ? lin->bias().grad.data() : nullptr,
                    dy.ptr(), x.ptr(), lin->weight().value.data(), x.shape[0], lin->in_features(),
                    lin->out_features());
    return true;
  }
  if (auto* conv = dynamic_cast<Conv2d*>(&layer)) {
    if (conv->mode() != WeightMode::plain) return false;
    if (x.shape.size() != 4 || dy.shape != conv->output_shape(x.shape)) return false;
    const int64_t K = conv->kernel();
    col.resize(static_cast<size_t>(x.shape[1] * K * K * dy.shape[2] * dy.shape[3]));
    conv2d_backward(nullptr, conv->weight().grad.data(), conv->has_bias() ? conv->bias().grad.data() : nullptr,
                    col.data(), nullptr, dy.ptr(), x.ptr(), conv->weight().value.data(), x.shape[0],
                    x.shape[1], x.shape[2], x.shape[3], conv->out_channels(), K, conv->stride(),
                    conv->padding());
    return true;
  }
  return false;
}

}  // namespace

void Model::backward(const Tensor& dlogits) {
  grad_ = dlogits;
  // Layers before first_param_ have no parameters: their input gradients are never read. (With no
  // parameterised layer at all, every backward still runs, for its checks.)
  const size_t stop = first_param_ < layers_.size() ? first_param_ : 0;
  for (size_t i = layers_.size(); i-- > stop;) {
    if (i == first_param_ && last_training_ &&
        backward_params_only(*layers_[i], inputs_[i], grad_, col_scratch_)) {
      break;
    }
    layers_[i]->backward(grad_, grad_next_);
    std::swap(grad_, grad_next_);
  }
}

std::vector<Param*> Model::parameters() {
  std::vector<Param*> all;
  for (auto& layer : layers_) {
    for (Param* p : layer->parameters()) all.push_back(p);
  }
  return all;
}

namespace {

// The normalization layers under `m` in forward order, and the tensor each received (`input`: m's).
void collect_norms(const Module& m, const Tensor* input, std::vector<NormModule*>* norms,
                   std::vector<const Tensor*>* inputs) {
  if (const auto* norm = dynamic_cast<const NormModule*>(&m)) {
    // The model owns its layers as mutable objects; norms() hands them out for changing.
    norms->push_back(const_cast<NormModule*>(norm));
    if (inputs != nullptr) inputs->push_back(input);
  } else if (const auto* res = dynamic_cast<const Residual*>(&m)) {
    for (size_t j = 0; j < res->size(); ++j) {
      collect_norms(res->layer(j), j == 0 ? input : &res->output(j - 1), norms, inputs);
    }
  }
}

}  // namespace

void Model::find_norms(std::vector<NormModule*>* norms, std::vector<const Tensor*>* inputs) const {
  for (size_t i = 0; i < layers_.size(); ++i) collect_norms(*layers_[i], &inputs_[i], norms, inputs);
}

std::vector<NormModule*> Model::norms() {
  std::vector<NormModule*> out;
  find_norms(&out, nullptr);
  return out;
}

const Tensor& Model::norm_input(size_t k) const {
  std::vector<NormModule*> norms;
  std::vector<const Tensor*> inputs;
  find_norms(&norms, &inputs);
  return *inputs.at(k);
}

std::string Model::summary() const {
  std::ostringstream out;
  for (size_t i = 0; i < layers_.size(); ++i) out << (i ? " " : "") << layers_[i]->kind();
  return out.str();
}

int adapt_batch_norm(Model& model, const Tensor& x, int64_t chunk) {
  if (x.shape.empty() || x.shape[0] < 1) fail("adaptBatchNorm: needs at least one target sample");
  if (chunk < 1) fail("adaptBatchNorm: chunk must be >= 1, got ", chunk);
  const int64_t n = x.shape[0], per = x.numel() / n;
  Tensor part, inputs;
  auto norms = model.norms();
  int adapted = 0;
  for (size_t k = 0; k < norms.size(); ++k) {
    for (int64_t b = 0; b < n; b += chunk) {
      const int64_t count = std::min(chunk, n - b);
      Shape shape = x.shape;
      shape[0] = count;
      part.resize(shape);
      std::copy(x.ptr() + b * per, x.ptr() + (b + count) * per, part.ptr());
      model.forward(part, false);
      const Tensor& in = model.norm_input(k);
      if (b == 0) {
        Shape all = in.shape;
        all[0] = n;
        inputs.resize(all);
      }
      std::copy(in.data.begin(), in.data.end(), inputs.ptr() + b * (in.numel() / count));
    }
    if (norms[k]->layer().set_population_statistics(inputs.ptr(), inputs.shape)) ++adapted;
  }
  return adapted;
}


// ---- planning ---------------------------------------------------------------------------------

namespace {

void check_weights(const std::string& who, int64_t in, int64_t out, int64_t per_input = 1) {
  const double n = static_cast<double>(in) * static_cast<double>(out) * static_cast<double>(per_input);
  if (n > static_cast<double>(kMaxLayerWeights)) {
    fail(who, ": ", static_cast<int64_t>(n), " weights (", in * per_input, " inputs x ", out,
         " outputs), more than the ", kMaxLayerWeights, " a layer may have; make its input smaller first ",
         "(pool, gap or a strided conv) or give it fewer outputs");
  }
}

PlannedLayer flatten_before(const std::string& what, const Shape& shape) {
  PlannedLayer p;
  p.spec.type = LayerType::flatten;
  p.where = "the flatten before " + what;
  p.input = shape;
  p.output = {numel(shape)};
  p.added = true;
  return p;
}

// Plans `layers` from the per-sample input `shape` into `out`; returns the output shape.
Shape plan_layers(const std::vector<LayerSpec>& layers, Shape shape, const std::string& prefix,
                  std::vector<PlannedLayer>& out) {
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerSpec& l = layers[i];
    PlannedLayer p;
    p.spec = l;
    p.where = prefix + "[" + std::to_string(i) + "]";
    const std::string who = "model: " + p.where + " (" + layer_to_compact(l) + ")";
    auto images = [&] {
      if (shape.size() != 3) {
        fail(who, ": takes images [C,H,W], got ", shape.size() == 1 ? "the flat features " : "", to_string(shape));
      }
    };
    switch (l.type) {
      case LayerType::linear:
        if (shape.size() != 1) {
          out.push_back(flatten_before(p.where, shape));
          shape = out.back().output;
        }
        check_weights(who, shape[0], l.units);
        p.output = {l.units};
        break;
      case LayerType::conv2d: {
        images();
        const int64_t ho = conv_out_size(shape[1], l.kernel, l.stride, l.padding);
        const int64_t wo = conv_out_size(shape[2], l.kernel, l.stride, l.padding);
        if (shape[1] + 2 * l.padding < l.kernel || shape[2] + 2 * l.padding < l.kernel) {
          fail(who, ": the input ", to_string(shape), " is smaller than the kernel ", l.kernel, "x", l.kernel,
               " (with padding ", l.padding, " on each side)");
        }
        check_weights(who, shape[0], l.channels, l.kernel * l.kernel);
        p.output = {l.channels, ho, wo};
        break;
      }
      case LayerType::maxpool:
        images();
        if (shape[1] < l.size || shape[2] < l.size) {
          fail(who, ": the input ", to_string(shape), " is smaller than the window ", l.size, "x", l.size);
        }
        p.output = {shape[0], (shape[1] - l.size) / l.size + 1, (shape[2] - l.size) / l.size + 1};
        break;
      case LayerType::gap:
        images();
        p.output = {shape[0]};
        break;
      case LayerType::flatten:
        p.output = {numel(shape)};
        break;
      case LayerType::norm:
      case LayerType::relu:
      case LayerType::tanh:
        p.output = shape;
        break;
      case LayerType::residual: {
        const Shape fx = plan_layers(l.layers, shape, p.where + ".layers", p.body);
        if (fx != shape) {
          fail(who, ": y = x + f(x) needs f(x) shaped as x, but x is ", to_string(shape), " and f(x) is ",
               to_string(fx));
        }
        p.output = shape;
        break;
      }
    }
    p.input = shape;
    shape = p.output;
    out.push_back(std::move(p));
  }
  return shape;
}

}  // namespace

std::vector<PlannedLayer> plan_model(const ModelSpec& spec, const Shape& sample_shape, int32_t classes) {
  if (sample_shape.empty()) fail("model: samples need a shape, [F] or [C,H,W]; got []");
  if (classes < 1) fail("model: needs at least one class, got ", classes);
  // The named cnn's own messages (its blocks are fixed, so they say what to change).
  if (spec.kind == "cnn") {
    if (sample_shape.size() != 3) {
      fail("model: a cnn needs image samples [C,H,W], got ", to_string(sample_shape));
    }
    int64_t h = sample_shape[1], w = sample_shape[2];
    for (size_t b = 0; b < spec.channels.size(); ++b, h /= 2, w /= 2) {
      if (h < 2 || w < 2) {
        fail("model: the input ", to_string(sample_shape), " is too small for ", spec.channels.size(),
             " conv blocks (each halves H and W)");
      }
    }
  }
  std::vector<PlannedLayer> plan;
  Shape shape = plan_layers(model_body(spec), sample_shape, "layers", plan);
  if (shape.size() != 1) {
    plan.push_back(flatten_before("the classifier", shape));
    shape = plan.back().output;
  }
  PlannedLayer classifier;
  classifier.spec.type = LayerType::linear;
  classifier.spec.units = classes;
  classifier.where = "the classifier";
  classifier.input = shape;
  classifier.output = {classes};
  classifier.added = true;
  check_weights("model: the classifier (" + layer_to_compact(classifier.spec) + ")", shape[0], classes);
  plan.push_back(std::move(classifier));
  return plan;
}

namespace {

void collect_slots(const std::vector<PlannedLayer>& plan, std::vector<const PlannedLayer*>& out) {
  for (const PlannedLayer& p : plan) {
    if (p.spec.type == LayerType::norm) out.push_back(&p);
    collect_slots(p.body, out);
  }
}

void add_sizes(const std::vector<PlannedLayer>& plan, ModelSize& s) {
  for (const PlannedLayer& p : plan) {
    const double in = static_cast<double>(numel(p.input)), out = static_cast<double>(numel(p.output));
    s.outputs += out;
    s.widest = std::max({s.widest, in, out});
    if (p.spec.type == LayerType::linear) s.parameters += (in + 1) * out;
    if (p.spec.type == LayerType::norm) s.parameters += 2.0 * static_cast<double>(p.input[0]);
    if (p.spec.type == LayerType::conv2d) {
      const double fan_in = static_cast<double>(p.input[0] * p.spec.kernel * p.spec.kernel);
      s.parameters += static_cast<double>(p.spec.channels) * (fan_in + 1);
      s.scratch += 2 * fan_in * static_cast<double>(p.output[1] * p.output[2]);
    }
    if (p.spec.type == LayerType::residual) {
      ModelSize body;
      add_sizes(p.body, body);
      s.parameters += body.parameters;
      s.outputs += body.outputs;
      s.widest = std::max(s.widest, body.widest);
      s.gradients += body.gradients + 2 * body.widest;
      s.scratch += body.scratch;
    }
  }
}

}  // namespace

std::vector<Shape> norm_slot_shapes(const ModelSpec& spec, const Shape& sample_shape) {
  std::vector<const PlannedLayer*> slots;
  const std::vector<PlannedLayer> plan = plan_model(spec, sample_shape, 1);
  collect_slots(plan, slots);
  std::vector<Shape> out;
  for (const PlannedLayer* p : slots) out.push_back(p->input);
  return out;
}

ModelSize model_size(const ModelSpec& spec, const Shape& sample_shape, int32_t classes) {
  ModelSize s;
  add_sizes(plan_model(spec, sample_shape, classes), s);
  return s;
}

// ---- building ---------------------------------------------------------------------------------

namespace {

// Makes the modules of a plan, drawing every weight from rng in layer order.
class Builder {
 public:
  Builder(WeightMode mode, std::vector<std::unique_ptr<NormModule>> norms, Rng& rng)
      : mode_(mode), bias_(!is_cosine(mode)), norms_(std::move(norms)), rng_(rng) {}

  // The module of one planned layer; null for a norm slot the method leaves empty.
  std::unique_ptr<Module> make(const PlannedLayer& p) {
    const LayerSpec& l = p.spec;
    switch (l.type) {
      case LayerType::linear: {
        const int64_t in = p.input[0];
        if (p.added) return std::make_unique<Linear>(in, l.units, rng_);  // the classifier: plain
        auto layer = std::make_unique<Linear>(in, l.units, rng_, bias_, mode_);
        skip_bias_draws(l.units, in);
        return layer;
      }
      case LayerType::conv2d: {
        const int64_t in = p.input[0];
        auto layer = std::make_unique<Conv2d>(in, l.channels, l.kernel, l.stride, l.padding, rng_, bias_, mode_);
        skip_bias_draws(l.channels, in * l.kernel * l.kernel);
        return layer;
      }
      case LayerType::norm:
        if (next_norm_ == norms_.size()) return nullptr;
        return std::move(norms_[next_norm_++]);
      case LayerType::relu:
        return std::make_unique<ReLU>();
      case LayerType::tanh:
        return std::make_unique<Tanh>();
      case LayerType::maxpool:
        return std::make_unique<MaxPool2d>(l.size, l.size);
      case LayerType::gap:
        return std::make_unique<GlobalAvgPool>();
      case LayerType::flatten:
        return std::make_unique<Flatten>();
      case LayerType::residual: {
        std::vector<std::unique_ptr<Module>> body;
        for (const PlannedLayer& q : p.body) {
          if (auto m = make(q)) body.push_back(std::move(m));
        }
        return std::make_unique<Residual>(std::move(body));
      }
    }
    return nullptr;
  }

 private:
  // Cosine units have no bias (the paper's); the bias draws a plain layer would make are still
  // taken from rng and discarded, so that every later layer gets the same weights as with any
  // other method.
  void skip_bias_draws(int64_t out, int64_t fan_in) {
    if (bias_) return;
    std::vector<float> discarded(static_cast<size_t>(out));
    init_uniform_fan_in(discarded.data(), out, fan_in, rng_);
  }

  WeightMode mode_;
  bool bias_;
  std::vector<std::unique_ptr<NormModule>> norms_;  // one per norm slot in forward order, or none
  size_t next_norm_ = 0;
  Rng& rng_;
};

}  // namespace

Model build_model(const ModelSpec& spec, const Shape& sample_shape, int32_t classes,
                  const std::string& method, const nlohmann::json& options, Rng rng) {
  // Weight methods change the described layers themselves and leave the norm slots empty.
  const bool weight_method = is_weight_method(method);
  const WeightMode mode = weight_method ? model_weight_mode(method, options) : WeightMode::plain;
  const std::vector<PlannedLayer> plan = plan_model(spec, sample_shape, classes);
  std::vector<std::unique_ptr<NormModule>> norms;
  if (!method.empty() && !weight_method) {
    std::vector<const PlannedLayer*> slots;
    collect_slots(plan, slots);
    for (const PlannedLayer* slot : slots) {
      Shape shape = {1};  // a batch of one sample
      shape.insert(shape.end(), slot->input.begin(), slot->input.end());
      if (spec.kind != "layers") {
        norms.push_back(make_norm_module(method, options, shape));
        continue;
      }
      try {
        norms.push_back(make_norm_module(method, options, shape));
      } catch (const Error& e) {
        fail("model: ", slot->where, " (norm, given ", to_string(slot->input), "): ", e.what());
      }
    }
  }
  Builder builder(mode, std::move(norms), rng);
  Model model;
  Shape shape = {1};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  for (const PlannedLayer& p : plan) {
    std::unique_ptr<Module> layer = builder.make(p);
    if (!layer) continue;
    shape = layer->output_shape(shape);  // the module's own check agrees with the plan
    model.add(std::move(layer));
  }
  return model;
}

}  // namespace normlab
