#include "layer_handle.h"

#include <malloc.h>

#include <cmath>

#include <emscripten/heap.h>
#include <new>
#include <nlohmann/json.hpp>

#include "guard.h"
#include "normlab/core/error.h"
#include "normlab/core/tensor.h"
#include "normlab/nn/weight_layer.h"
#include "normlab/norm/batchrenorm.h"
#include "normlab/norm/registry.h"
#include "model_handle.h"
#include "preprocess_handle.h"
#include "runner_handle.h"

using emscripten::typed_memory_view;
using emscripten::val;

namespace normlab::wasm {

namespace {

int g_live = 0;

// A JS-owned copy of n floats.
val copy_out(const float* data, size_t n) {
  return val(typed_memory_view(n, data)).call<val>("slice");
}

// The shape of an input of n values from a JS array of numbers; throws Error unless it is a valid
// shape of exactly n elements.
Shape input_shape(const val& shape_array, size_t n, const std::string& who) {
  std::vector<double> dims;
  const size_t rank = shape_array["length"].as<size_t>();
  for (size_t i = 0; i < rank; ++i) dims.push_back(shape_array[i].as<double>());
  const Shape shape = shape_from_doubles(dims, who + ": input", 1);
  if (static_cast<int64_t>(n) != numel(shape)) {
    fail(who, ": input has ", n, " values but shape ", to_string(shape), " needs ", numel(shape));
  }
  return shape;
}

}  // namespace

LayerHandle::LayerHandle() { ++g_live; }
LayerHandle::~LayerHandle() { --g_live; }
int LayerHandle::live_count() { return g_live; }

val LayerHandle::create(const std::string& method, const std::string& options_json) {
  return guarded(method, ErrorForm::kString, [&] {
    const nlohmann::json options = nlohmann::json::parse(options_json, nullptr, false);
    if (options.is_discarded()) fail(method, ": options are not valid JSON");
    layer_ = create_norm(method, options);
    return val::undefined();
  });
}

std::string LayerHandle::options() const { return layer_options(*layer_).dump(); }

void LayerHandle::read_input(const val& array, size_t n, size_t extra_bytes) {
  // Refuse up front what cannot fit: the input copy plus what the call allocates beside it.
  const double need = static_cast<double>(n) * sizeof(float) + static_cast<double>(extra_bytes);
  const double limit = static_cast<double>(emscripten_get_heap_max());
  if (need > limit) {
    fail(layer_->method(), ": a tensor of ", n, " values needs about ", mib(need),
         " of WebAssembly memory, more than its limit of ", mib(limit));
  }
  try {
    io_.resize(n);
  } catch (const std::bad_alloc&) {
    release_buffers();
    fail(layer_->method(), ": out of WebAssembly memory for a tensor of ", n, " values (",
         mib(need), " needed, heap limit ", mib(limit), ")");
  }
  val(typed_memory_view(n, io_.data())).call<void>("set", array);
}

void LayerHandle::release_buffers() { std::vector<float>().swap(io_); }

val LayerHandle::forward(const val& x, const val& shape_array, bool training) {
  return guarded(layer_->method(), ErrorForm::kString, [&] {
    const std::string& who = layer_->method();
    const size_t n = x["length"].as<size_t>();
    const Shape shape = input_shape(shape_array, n, who);
    // A training forward keeps its own copy of the input for backward.
    read_input(x, n, training ? n * sizeof(float) : 0);
    try {
      layer_->forward(io_.data(), shape, training, io_.data());
    } catch (const std::bad_alloc&) {
      release_buffers();
      throw;
    }
    return copy_out(io_.data(), n);
  });
}

val LayerHandle::backward(const val& dy) {
  return guarded(layer_->method(), ErrorForm::kString, [&] {
    const std::string& who = layer_->method();
    const Shape& shape = layer_->cached_shape();
    if (shape.empty()) fail(who, ": backward needs a training-mode forward first");
    const size_t n = dy["length"].as<size_t>();
    if (static_cast<int64_t>(n) != numel(shape)) {
      fail(who, ": dy has ", n, " values but the last training forward's input ", to_string(shape),
           " has ", numel(shape));
    }
    read_input(dy, n, 0);
    layer_->backward(io_.data(), io_.data());
    return copy_out(io_.data(), n);
  });
}

val LayerHandle::get(const std::string& which) const {
  val out = val::object();
  if (which == "state") {
    for (const StateBuffer& s : layer_->state()) out.set(s.name, copy_out(s.value.data(), s.value.size()));
  } else {
    const bool grads = which == "grads";
    for (const Param& p : layer_->params()) {
      const std::vector<float>& v = grads ? p.grad : p.value;
      out.set(p.name, copy_out(v.data(), v.size()));
    }
  }
  return out;
}

val LayerHandle::set(const std::string& which, const std::string& name, const val& values) {
  return guarded(layer_->method(), ErrorForm::kString, [&] {
    const size_t n = values["length"].as<size_t>();
    std::vector<float> buffer(n);
    val(typed_memory_view(n, buffer.data())).call<void>("set", values);
    if (which == "state") {
      layer_->set_state(name, buffer.data(), n);
    } else {
      layer_->set_param(name, buffer.data(), n);
    }
    return val::undefined();
  });
}

val LayerHandle::set_population_statistics(const val& x, const val& shape_array) {
  return guarded(layer_->method(), ErrorForm::kString, [&] {
    const std::string& who = layer_->method();
    const size_t n = x["length"].as<size_t>();
    const Shape shape = input_shape(shape_array, n, who);
    layer_->check_input_shape(shape);
    read_input(x, n, 0);
    for (float v : io_) {
      if (!std::isfinite(v)) fail(who, ": setPopulationStatistics needs finite inputs, got ", v);
    }
    return val(layer_->set_population_statistics(io_.data(), shape));
  });
}

val LayerHandle::set_limits(double r_max, double d_max) {
  return guarded(layer_->method(), ErrorForm::kString, [&] {
    auto* brn = dynamic_cast<BatchRenorm*>(layer_.get());
    if (brn == nullptr) fail(layer_->method(), ": setLimits is a batchrenorm method");
    brn->set_limits(r_max, d_max);
    return val::undefined();
  });
}

val LayerHandle::last_correction() const {
  auto* brn = dynamic_cast<const BatchRenorm*>(layer_.get());
  if (brn == nullptr || brn->last_r().empty()) return val::null();
  val out = val::object();
  out.set("r", copy_out(brn->last_r().data(), brn->last_r().size()));
  out.set("d", copy_out(brn->last_d().data(), brn->last_d().size()));
  return out;
}

WeightLayerHandle::WeightLayerHandle() { ++g_live; }
WeightLayerHandle::~WeightLayerHandle() { --g_live; }

val WeightLayerHandle::create(const std::string& method, const std::string& options_json) {
  return guarded(method, ErrorForm::kString, [&] {
    const nlohmann::json options = nlohmann::json::parse(options_json, nullptr, false);
    if (options.is_discarded()) fail(method, ": options are not valid JSON");
    layer_ = create_weight_layer(method, options);
    method_ = method;
    seed_ = options.contains("seed") ? static_cast<uint64_t>(options.at("seed").get<double>()) : 0;
    return val::undefined();
  });
}

std::string WeightLayerHandle::options() const { return weight_layer_options(*layer_, seed_).dump(); }

Shape WeightLayerHandle::read_shape(const val& shape_array) const {
  std::vector<double> dims;
  const size_t rank = shape_array["length"].as<size_t>();
  for (size_t i = 0; i < rank; ++i) dims.push_back(shape_array[i].as<double>());
  return shape_from_doubles(dims, method_ + ": input", 1);
}

val WeightLayerHandle::output_shape(const val& shape_array) const {
  return guarded(method_, ErrorForm::kString, [&] {
    const Shape out = layer_->output_shape(read_shape(shape_array));
    val dims = val::array();
    for (int64_t d : out) dims.call<void>("push", static_cast<double>(d));
    return dims;
  });
}

val WeightLayerHandle::forward(const val& x, const val& shape_array, bool training) {
  return guarded(method_, ErrorForm::kString, [&] {
    const Shape shape = read_shape(shape_array);
    const size_t n = x["length"].as<size_t>();
    if (static_cast<int64_t>(n) != numel(shape)) {
      fail(method_, ": input has ", n, " values but shape ", to_string(shape), " needs ", numel(shape));
    }
    const Shape out = layer_->output_shape(shape);  // checks the shape before anything is copied
    Tensor input(shape), y;
    val(typed_memory_view(n, input.ptr())).call<void>("set", x);
    layer_->forward(input, y, training);
    if (training) out_shape_ = out;
    return copy_out(y.ptr(), y.data.size());
  });
}

val WeightLayerHandle::backward(const val& dy) {
  return guarded(method_, ErrorForm::kString, [&] {
    if (out_shape_.empty()) fail(method_, ": backward needs a training-mode forward first");
    const size_t n = dy["length"].as<size_t>();
    if (static_cast<int64_t>(n) != numel(out_shape_)) {
      fail(method_, ": dy has ", n, " values but the last training forward's output ",
           to_string(out_shape_), " has ", numel(out_shape_));
    }
    Tensor grad(out_shape_), dx;
    val(typed_memory_view(n, grad.ptr())).call<void>("set", dy);
    layer_->backward(grad, dx);
    return copy_out(dx.ptr(), dx.data.size());
  });
}

val WeightLayerHandle::get(const std::string& which) const {
  val out = val::object();
  for (Param* p : layer_->parameters()) {
    const std::vector<float>& v = which == "grads" ? p->grad : p->value;
    out.set(p->name, copy_out(v.data(), v.size()));
  }
  return out;
}

val WeightLayerHandle::set(const std::string& name, const val& values) {
  return guarded(method_, ErrorForm::kString, [&] {
    Param* param = nullptr;
    std::string known;
    for (Param* p : layer_->parameters()) {
      if (p->name == name) param = p;
      known += (known.empty() ? "" : ", ") + p->name;
    }
    if (param == nullptr) fail(method_, ": no parameter '", name, "' (known: ", known, ")");
    const size_t n = values["length"].as<size_t>();
    if (n != param->value.size()) {
      fail(method_, ": ", name, " needs ", param->value.size(), " values, got ", n);
    }
    std::vector<float> buffer(n);
    val(typed_memory_view(n, buffer.data())).call<void>("set", values);
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(buffer[i])) fail(method_, ": ", name, "[", i, "] is not finite");
    }
    param->value = std::move(buffer);
    return val::undefined();
  });
}

val memory_stats() {
  const struct mallinfo info = mallinfo();
  val out = val::object();
  out.set("heapBytes", static_cast<double>(emscripten_get_heap_size()));
  out.set("heapMaxBytes", static_cast<double>(emscripten_get_heap_max()));
  out.set("usedBytes", static_cast<double>(info.uordblks));
  out.set("liveLayers", LayerHandle::live_count());
  out.set("liveRunners", RunnerHandle::live_count());
  out.set("livePreprocessors", PreprocessHandle::live_count());
  out.set("liveModels", ModelHandle::live_count());
  return out;
}

std::string methods_json() { return nlohmann::json(layer_methods()).dump(); }

std::string describe_methods_json() { return describe_methods().dump(); }

}  // namespace normlab::wasm
