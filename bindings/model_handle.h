// The JS-facing wrapper of a Trainer (the package's nl.model). Like RunnerHandle, it never throws
// across the boundary: each method returns its result or { error: message }, which the TypeScript
// wrapper (model.ts) turns into an Error. Arrays cross as copies.
#pragma once

#include <memory>
#include <string>

#include <emscripten/val.h>

#include "normlab/run/trainer.h"

namespace normlab::wasm {

class ModelHandle {
 public:
  ModelHandle();
  ~ModelHandle();
  ModelHandle(const ModelHandle&) = delete;
  ModelHandle& operator=(const ModelHandle&) = delete;

  // config: JSON text (trainer_config_from_json). Returns { summary, parameters } as JSON text, or
  // { error }.
  emscripten::val create(const std::string& config_json);
  // Makes this handle the folded copy of `source`'s model (Trainer::folded): the fold report as
  // JSON text ({ folded, kept }), or { error }.
  emscripten::val fold_of(ModelHandle& source);
  // Starts a fit on a Float32Array x and Int32Array labels: the number of steps, or { error }.
  emscripten::val fit_begin(const emscripten::val& x, const emscripten::val& labels, double epochs, double batch_size);
  // The fit's next step: its loss, or { error }.
  emscripten::val fit_step();
  // Ends a fit early (an abort); the steps taken stay.
  void fit_end();
  // { loss, accuracy } in inference mode, or { error }.
  emscripten::val evaluate(const emscripten::val& x, const emscripten::val& labels);
  // Float32Array of class probabilities (n x classes), or { error }.
  emscripten::val predict(const emscripten::val& x);
  // { name: Float32Array } for every parameter and running-state buffer, in model order.
  emscripten::val get_weights();
  // Replaces every weight from { name: Float32Array }: undefined, or { error } (nothing changed).
  emscripten::val set_weights(const emscripten::val& weights);
  int steps_done() const;

  static int live_count();

 private:
  std::unique_ptr<Trainer> trainer_;
};

}  // namespace normlab::wasm
