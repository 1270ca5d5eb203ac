#include "normlab/nn/norm_module.h"

#include <algorithm>
#include <cmath>

#include "normlab/core/error.h"
#include "normlab/norm/registry.h"

namespace normlab {

NormModule::NormModule(std::unique_ptr<NormLayer> layer) : layer_(std::move(layer)) {
  if (!layer_) fail("NormModule: layer must not be null");
  for (Param& p : layer_->params()) p.decay = false;
}

std::string NormModule::kind() const { return layer_->method(); }

Shape NormModule::output_shape(const Shape& input) const {
  layer_->check_input_shape(input);
  return input;
}

void NormModule::forward(const Tensor& x, Tensor& y, bool training) {
  y.resize(x.shape);
  layer_->forward(x.ptr(), x.shape, training, y.ptr());
}

void NormModule::backward(const Tensor& dy, Tensor& dx) {
  const Shape& cached = layer_->cached_shape();
  if (cached.empty()) fail(layer_->method(), ": backward needs a training-mode forward first");
  if (dy.shape != cached) {
    fail(layer_->method(), ": dy shape ", to_string(dy.shape), " does not match the output shape ",
         to_string(cached), " of the last training forward");
  }
  dx.resize(cached);
  layer_->backward(dy.ptr(), dx.ptr());
}

std::vector<Param*> NormModule::parameters() {
  std::vector<Param*> out;
  for (Param& p : layer_->params()) out.push_back(&p);
  return out;
}

std::unique_ptr<Module> NormModule::clone() const {
  std::unique_ptr<NormLayer> copy = create_norm(layer_->method(), layer_options(*layer_));
  for (const Param& p : layer_->params()) copy->set_param(p.name, p.value.data(), p.value.size());
  for (const StateBuffer& s : layer_->state()) copy->set_state(s.name, s.value.data(), s.value.size());
  return std::make_unique<NormModule>(std::move(copy));
}

std::unique_ptr<NormModule> make_norm_module(const std::string& method,
                                             const nlohmann::json& options,
                                             const Shape& input_shape) {
  if (input_shape.size() < 2) {
    fail(method, ": input shape ", to_string(input_shape), " must have at least 2 dims [N,C,...]");
  }
  nlohmann::json o = options.is_null() ? nlohmann::json::object() : options;
  // Anything but an object goes to create_norm unchanged, which reports it.
  if (o.is_object()) {
    auto absent = [&](const char* key) { return !o.contains(key) || o[key].is_null(); };
    const MethodInfo& info = method_info(method);
    if (info.fill == ModelFill::channels && absent("channels")) {
      o["channels"] = input_shape[1];
    }
    if (info.fill == ModelFill::normalized_shape && absent("normalizedShape")) {
      o["normalizedShape"] = Shape(input_shape.begin() + 1, input_shape.end());
    }
    if (info.model_defaults != nullptr) info.model_defaults(o, input_shape);
  }
  auto module = std::make_unique<NormModule>(create_norm(method, o));
  module->output_shape(input_shape);
  return module;
}

}  // namespace normlab
