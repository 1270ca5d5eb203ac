// The JS-facing wrapper of a comparison Runner. Like LayerHandle, it never throws across the
// boundary: each method returns its result (JSON text, parsed by the TypeScript wrapper) or
// { error: message }.
#pragma once

#include <memory>
#include <string>

#include <emscripten/val.h>

#include "normlab/run/runner.h"

namespace normlab::wasm {

class RunnerHandle {
 public:
  RunnerHandle();
  ~RunnerHandle();
  RunnerHandle(const RunnerHandle&) = delete;
  RunnerHandle& operator=(const RunnerHandle&) = delete;

  // config: JSON text; data: a Uint8Array with the data set's file (digits, mnist) or undefined.
  // Returns the normalized configuration (JSON text) or { error }.
  emscripten::val create(const std::string& config_json, const emscripten::val& data);
  // The user's own data (the config's dataset has a source): x, a Float32Array of N examples of
  // `shape` (one example's, e.g. [F] or [C, H, W]), labels an Int32Array of N class indices in
  // [0, class_names.length), and test_x / test_labels likewise or undefined (then the config's
  // testFraction is held out). Each array is copied into the module once; the memory estimate is
  // checked before the copy. Returns the normalized configuration (JSON text) or { error }.
  emscripten::val create_with_data(const std::string& config_json, const emscripten::val& x,
                                   const emscripten::val& labels, const emscripten::val& shape,
                                   const emscripten::val& test_x, const emscripten::val& test_labels,
                                   const emscripten::val& class_names);
  // Runs up to n steps of every method; returns the new records (JSON text) or { error }.
  emscripten::val step(int n);
  // The whole result so far (JSON text).
  emscripten::val result() const;
  emscripten::val timing() const;
  // Class probabilities (Float32Array, n x classes) of one method's model for a Float32Array of n
  // samples of the data set's sample shape, or { error }. folded: with the model folded for
  // deployment (Runner::predict).
  emscripten::val predict(const std::string& id, const emscripten::val& x, bool folded);
  // Folds one method's model and compares it with the unfolded one (Runner::fold): JSON text or
  // { error }.
  emscripten::val fold(const std::string& id);
  // AdaBN on one method's model with a Float32Array of target samples: the number of layers
  // adapted, or { error }.
  emscripten::val adapt_batch_norm(const std::string& id, const emscripten::val& x);
  // { x: Float32Array, labels: Int32Array } of up to max samples of "train" or "test", or { error }.
  emscripten::val samples(const std::string& which, int max) const;
  // { sampleShape: number[], classes: number }, and classNames for the user's own data
  emscripten::val data_info() const;
  int steps_done() const;
  bool done() const;

  static int live_count();

 private:
  // A copy of a Float32Array of whole samples of the data set's sample shape; throws Error naming
  // `call` otherwise. samples_in: how many samples such a copy holds.
  std::vector<float> read_samples(const emscripten::val& x, const char* call) const;
  int64_t samples_in(const std::vector<float>& values) const;

  std::unique_ptr<Runner> runner_;
};

}  // namespace normlab::wasm
