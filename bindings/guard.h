// The boundary between C++ and JavaScript, one rule for every handle: an exception thrown by the
// core becomes a message in the user's terms that the TypeScript wrapper throws as a JS Error
// (handle.ts); no C++ exception ever propagates into JavaScript. Out-of-memory says so and names
// the heap's limit, so a user knows what to make smaller.
#pragma once

#include <emscripten/heap.h>
#include <emscripten/val.h>

#include <exception>
#include <new>
#include <sstream>
#include <string>

#include "normlab/core/error.h"

namespace normlab::wasm {

// "12.5 MiB"
inline std::string mib(double bytes) {
  std::ostringstream out;
  out.precision(1);
  out << std::fixed << bytes / (1024.0 * 1024.0) << " MiB";
  return out.str();
}

// How a handle hands an error to the wrapper: as the message itself (a string, where the result
// is otherwise never a string) or as { error: message } (where a result can be a string).
enum class ErrorForm { kString, kObject };

// Runs f and returns its result; an exception becomes its message in `form`. `who` prefixes
// messages that do not already say where they come from (the core's Errors do).
template <typename F>
emscripten::val guarded(const std::string& who, ErrorForm form, F&& f) {
  const auto fail = [form](const std::string& message) {
    if (form == ErrorForm::kString) return emscripten::val(message);
    emscripten::val out = emscripten::val::object();
    out.set("error", message);
    return out;
  };
  try {
    return f();
  } catch (const Error& e) {
    return fail(e.what());
  } catch (const std::bad_alloc&) {
    return fail(who + ": out of WebAssembly memory (heap limit " +
                mib(static_cast<double>(emscripten_get_heap_max())) + ")");
  } catch (const std::exception& e) {
    return fail(who + ": " + e.what());
  }
}

}  // namespace normlab::wasm
