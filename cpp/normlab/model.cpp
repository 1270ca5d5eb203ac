#include "normlab/model.h"

#include <sstream>

#include "normlab/activations.h"
#include "normlab/conv2d.h"
#include "normlab/error.h"
#include "normlab/linear.h"
#include "normlab/options.h"
#include "normlab/pooling.h"

namespace normlab {

void Model::add(std::unique_ptr<Module> layer) {
  if (dynamic_cast<NormModule*>(layer.get()) != nullptr) norm_index_.push_back(layers_.size());
  layers_.push_back(std::move(layer));
  inputs_.resize(layers_.size() + 1);
}

const Tensor& Model::forward(const Tensor& x, bool training) {
  inputs_[0] = x;
  for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->forward(inputs_[i], inputs_[i + 1], training);
  return inputs_.back();
}

void Model::backward(const Tensor& dlogits) {
  grad_ = dlogits;
  for (size_t i = layers_.size(); i-- > 0;) {
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
  if (r.has("hidden")) s.hidden = r.dims("hidden");
  if (r.has("channels")) s.channels = r.dims("channels");
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
  auto norm = [&] {
    if (!method.empty()) push(make_norm_module(method, options, shape));
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
      push(std::make_unique<Conv2d>(shape[1], c, 3, 1, 1, rng));
      norm();
      push(activation(spec.activation));
      push(std::make_unique<MaxPool2d>(2, 2));
    }
    push(std::make_unique<Flatten>());
  } else {
    if (sample_shape.size() != 1) push(std::make_unique<Flatten>());
    for (int64_t width : spec.hidden) {
      push(std::make_unique<Linear>(shape[1], width, rng));
      norm();
      push(activation(spec.activation));
    }
  }
  push(std::make_unique<Linear>(shape[1], classes, rng));
  return model;
}

}  // namespace normlab
