// The JS-facing wrapper of a fitted data Preprocessor; like the other handles it never throws across
// the boundary (results, or the error message as a string).
#pragma once

#include <memory>
#include <string>

#include <emscripten/val.h>

#include "normlab/data/preprocess.h"

namespace normlab::wasm {

class PreprocessHandle {
 public:
  PreprocessHandle();
  ~PreprocessHandle();
  PreprocessHandle(const PreprocessHandle&) = delete;
  PreprocessHandle& operator=(const PreprocessHandle&) = delete;

  // Fits on a Float32Array of n samples of f features; undefined or the error message.
  emscripten::val fit(const std::string& kind, double eps, const emscripten::val& x, double n, double f);
  // A Float32Array of n samples (the fitted feature count each) -> a new Float32Array, or the message.
  emscripten::val transform(const emscripten::val& x, double n) const;
  emscripten::val inverse(const emscripten::val& y, double n) const;
  int features() const;

  static int live_count();

 private:
  emscripten::val apply(const emscripten::val& in, double n, bool forward) const;
  std::unique_ptr<Preprocessor> pre_;
};

}  // namespace normlab::wasm
