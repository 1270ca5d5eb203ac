// The JS-facing wrapper of one normalization layer. Its methods never throw across the boundary
// (a C++ exception would reach JS as a bare number, and Embind would leak the call's temporaries):
// every method catches, and returns either its result or the error message as a JS string, which
// the TypeScript wrapper turns into an Error. Arrays leave WASM as JS-owned copies.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <emscripten/val.h>

#include "normlab/nn/module.h"
#include "normlab/norm/norm_layer.h"

namespace normlab::wasm {

class LayerHandle {
 public:
  LayerHandle();
  ~LayerHandle();
  LayerHandle(const LayerHandle&) = delete;
  LayerHandle& operator=(const LayerHandle&) = delete;

  // Makes the layer. Returns undefined, or the error message.
  emscripten::val create(const std::string& method, const std::string& options_json);
  // The options with defaults filled in, as a JSON string.
  std::string options() const;
  // y = layer(x) for a Float32Array x of the given shape (an array of numbers).
  emscripten::val forward(const emscripten::val& x, const emscripten::val& shape, bool training);
  // dx for the last training forward, given a Float32Array dy.
  emscripten::val backward(const emscripten::val& dy);
  // which: "params" | "grads" | "state" -> { name: Float32Array }
  emscripten::val get(const std::string& which) const;
  // which: "params" | "state"; values: a Float32Array. Returns undefined or the error message.
  emscripten::val set(const std::string& which, const std::string& name,
                      const emscripten::val& values);
  // AdaBN for this layer: its population statistics from a Float32Array x of the given shape.
  // Returns true, false (a method without population statistics), or the error message.
  emscripten::val set_population_statistics(const emscripten::val& x, const emscripten::val& shape);
  // Batch Renorm only.
  emscripten::val set_limits(double r_max, double d_max);
  emscripten::val last_correction() const;

  // Layers alive in this module instance (for leak tests).
  static int live_count();

 private:
  // Copies a Float32Array of n values into io_, refusing sizes the heap cannot hold.
  void read_input(const emscripten::val& array, size_t n, size_t extra_bytes);
  void release_buffers();

  std::unique_ptr<NormLayer> layer_;
  std::vector<float> io_;  // the input copy, then the output, of the last call
};

// The JS-facing wrapper of one weight layer (weightnorm, cosinenorm: a Linear or Conv2d in a weight
// mode, registry.h's create_weight_layer), with the same never-throw contract as LayerHandle. It
// counts as a layer in memory_stats().liveLayers.
class WeightLayerHandle {
 public:
  WeightLayerHandle();
  ~WeightLayerHandle();
  WeightLayerHandle(const WeightLayerHandle&) = delete;
  WeightLayerHandle& operator=(const WeightLayerHandle&) = delete;

  // Makes the layer. Returns undefined, or the error message.
  emscripten::val create(const std::string& method, const std::string& options_json);
  // The options with defaults filled in, as a JSON string.
  std::string options() const;
  // The output shape for an input shape (an array of numbers), or the error message.
  emscripten::val output_shape(const emscripten::val& shape) const;
  // y = layer(x) for a Float32Array x of the given shape.
  emscripten::val forward(const emscripten::val& x, const emscripten::val& shape, bool training);
  // dx for the last training forward, given a Float32Array dy of its output's length.
  emscripten::val backward(const emscripten::val& dy);
  // which: "params" | "grads" -> { name: Float32Array }
  emscripten::val get(const std::string& which) const;
  // Replaces a parameter's values (a Float32Array of its length, finite). Undefined or the message.
  emscripten::val set(const std::string& name, const emscripten::val& values);

 private:
  Shape read_shape(const emscripten::val& shape_array) const;

  std::string method_;
  uint64_t seed_ = 0;
  std::unique_ptr<Module> layer_;
  Shape out_shape_;  // output shape of the last training forward (empty: none)
};

// { heapBytes, usedBytes, heapMaxBytes, liveLayers }
emscripten::val memory_stats();

// JSON array of the layer API's method names.
std::string methods_json();
// describeMethods(): every method's descriptor (registry.h describe_methods) as JSON.
std::string describe_methods_json();

}  // namespace normlab::wasm
