#include "normlab/nn/model.h"

#include <cmath>
#include <sstream>

#include "normlab/core/error.h"
#include "normlab/core/options.h"
#include "normlab/nn/activations.h"
#include "normlab/nn/conv2d.h"
#include "normlab/nn/linear.h"
#include "normlab/nn/pooling.h"
#include "normlab/nn/weight_layer.h"
#include "normlab/norm/registry.h"

namespace normlab {

void Model::add(std::unique_ptr<Module> layer) {
  if (dynamic_cast<NormModule*>(layer.get()) != nullptr) norm_index_.push_back(layers_.size());
  // Until a layer with parameters arrives, the next one is the first that may have some.
  const bool none_yet = first_param_ == layers_.size();
  layers_.push_back(std::move(layer));
  if (none_yet && layers_.back()->parameters().empty()) first_param_ = layers_.size();
  inputs_.resize(layers_.size() + 1);
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

std::vector<NormModule*> Model::norms() {
  std::vector<NormModule*> out;
  for (size_t i : norm_index_) out.push_back(static_cast<NormModule*>(layers_[i].get()));
  return out;
}

const Tensor& Model::norm_input(size_t k) const { return inputs_.at(norm_index_.at(k)); }

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

ModelSpec model_spec_from_json(const nlohmann::json& json) {
  OptionReader r(json, "model", {"kind", "hidden", "channels", "activation"});
  ModelSpec s;
  auto text = [&](const char* key, std::string fallback) {
    if (!r.has(key)) return fallback;
    const nlohmann::json& v = json.at(key);
    if (!v.is_string()) fail("model: ", key, " must be a string, got ", v.dump());
    return v.get<std::string>();
  };
  s.kind = text("kind", s.kind);
  s.activation = text("activation", s.activation);
  if (s.kind != "mlp" && s.kind != "cnn") fail("model: unknown kind '", s.kind, "' (known: mlp, cnn)");
  if (s.activation != "relu" && s.activation != "tanh") {
    fail("model: unknown activation '", s.activation, "' (known: relu, tanh)");
  }
  // Widths one by one (read as a shape, [4096, 4096, 4096] would count as too many elements).
  auto widths = [&](const char* key) {
    const nlohmann::json& v = json.at(key);
    if (!v.is_array() || v.empty()) {
      fail("model: ", key, " must be a non-empty array of positive integers, got ", v.dump());
    }
    std::vector<int64_t> out;
    for (size_t i = 0; i < v.size(); ++i) {
      const double d = v[i].is_number() ? v[i].get<double>() : 0;
      if (!v[i].is_number() || !(d >= 1) || d != std::floor(d) || d > 1e9) {
        fail("model: ", key, "[", i, "] must be a positive integer, got ", v[i].dump());
      }
      out.push_back(static_cast<int64_t>(d));
    }
    return out;
  };
  if (r.has("hidden")) s.hidden = widths("hidden");
  if (r.has("channels")) s.channels = widths("channels");
  for (int64_t w : s.hidden) {
    if (w > 4096) fail("model: hidden widths must be at most 4096, got ", w);
  }
  for (int64_t c : s.channels) {
    if (c > 256) fail("model: channel counts must be at most 256, got ", c);
  }
  if (s.hidden.size() > 8) fail("model: at most 8 hidden layers, got ", s.hidden.size());
  if (s.channels.size() > 4) fail("model: at most 4 conv blocks, got ", s.channels.size());
  return s;
}

namespace {

std::unique_ptr<Module> activation(const std::string& name) {
  if (name == "tanh") return std::make_unique<Tanh>();
  return std::make_unique<ReLU>();
}

}  // namespace

Model build_model(const ModelSpec& spec, const Shape& sample_shape, int32_t classes,
                  const std::string& method, const nlohmann::json& options, Rng rng) {
  Model model;
  Shape shape = {1};  // a batch of one sample, to track shapes while building
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  auto push = [&](std::unique_ptr<Module> layer) {
    shape = layer->output_shape(shape);
    model.add(std::move(layer));
  };
  // Weight methods change the hidden layers themselves and add no layer after them.
  const bool weight_method = is_weight_method(method);
  const WeightMode mode = weight_method ? model_weight_mode(method, options) : WeightMode::plain;
  // Cosine units have no bias (the paper's); the bias draws a plain layer would make are still
  // taken from rng and discarded, so that every later layer gets the same weights as with any
  // other method.
  const bool bias = !is_cosine(mode);
  auto skip_bias_draws = [&](int64_t out, int64_t fan_in) {
    if (bias) return;
    std::vector<float> discarded(static_cast<size_t>(out));
    init_uniform_fan_in(discarded.data(), out, fan_in, rng);
  };
  auto norm = [&] {
    if (!method.empty() && !weight_method) push(make_norm_module(method, options, shape));
  };
  if (spec.kind == "cnn") {
    if (sample_shape.size() != 3) {
      fail("model: a cnn needs image samples [C,H,W], got ", to_string(sample_shape));
    }
    for (int64_t c : spec.channels) {
      if (shape[2] < 2 || shape[3] < 2) {
        fail("model: the input ", to_string(sample_shape), " is too small for ", spec.channels.size(),
             " conv blocks (each halves H and W)");
      }
      const int64_t in = shape[1];
      push(std::make_unique<Conv2d>(in, c, 3, 1, 1, rng, bias, mode));
      skip_bias_draws(c, in * 9);
      norm();
      push(activation(spec.activation));
      push(std::make_unique<MaxPool2d>(2, 2));
    }
    push(std::make_unique<Flatten>());
  } else {
    if (sample_shape.size() != 1) push(std::make_unique<Flatten>());
    for (int64_t width : spec.hidden) {
      const int64_t in = shape[1];
      push(std::make_unique<Linear>(in, width, rng, bias, mode));
      skip_bias_draws(width, in);
      norm();
      push(activation(spec.activation));
    }
  }
  push(std::make_unique<Linear>(shape[1], classes, rng));
  return model;
}

}  // namespace normlab
