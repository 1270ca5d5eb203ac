// Registers the names JS sees; the conversions live in layer_handle.cpp.
#include <emscripten/bind.h>

#include "layer_handle.h"

EMSCRIPTEN_BINDINGS(normlab) {
  using normlab::wasm::LayerHandle;
  emscripten::class_<LayerHandle>("LayerHandle")
      .constructor<>()
      .function("create", &LayerHandle::create)
      .function("options", &LayerHandle::options)
      .function("forward", &LayerHandle::forward)
      .function("backward", &LayerHandle::backward)
      .function("get", &LayerHandle::get)
      .function("set", &LayerHandle::set)
      .function("setLimits", &LayerHandle::set_limits)
      .function("lastCorrection", &LayerHandle::last_correction);
  emscripten::function("memoryStats", &normlab::wasm::memory_stats);
  emscripten::function("methodsJson", &normlab::wasm::methods_json);
}
