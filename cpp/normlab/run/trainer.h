// A model of the user's own, trained in their code (the package's nl.model): one Model built by
// build_model, its Optimizer, and fit / evaluate / predict over the user's arrays. A fit step is the
// runner's training step for one method (runner.cpp): a training-mode forward, softmax
// cross-entropy, backward, an optimizer step; weights come from the seed's init stream and batch
// order from its order stream, as the runner forks them, so a model fitted on a runner's training
// set with the runner's seed, batch size and optimizer equals that runner's arm step for step.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "normlab/core/rng.h"
#include "normlab/data/batching.h"
#include "normlab/data/datasets.h"
#include "normlab/nn/model.h"
#include "normlab/nn/optim.h"
#include "normlab/run/config.h"

namespace normlab {

struct TrainerConfig {
  ModelSpec model;            // kind "layers" (or a named mlp / cnn)
  Shape input;                // one sample: [F] or [C,H,W]
  int32_t classes = 2;
  std::string method;         // the layer API's name ("" for none)
  nlohmann::json options = nlohmann::json::object();  // the method's options
  OptimizerOptions optimizer;
  uint64_t seed = 1;
};

// Reads {input, layers, classes, norm, optimizer, seed}: `layers` a compact string or the JSON form
// (model_spec.h), `norm` a method name or alias, "none", or {method, options}. Validates; throws
// Error in these terms ("model: input must be [F] or [C, H, W], got [0]").
TrainerConfig trainer_config_from_json(const nlohmann::json& json);

class Trainer {
 public:
  // Builds the model (build_model with Rng(seed).fork(kInitStream)) and its optimizer.
  explicit Trainer(const TrainerConfig& config);
  // An inference-only model (e.g. fold()'s result): fit refuses it.
  Trainer(const TrainerConfig& config, Model model);

  // Starts a fit of `epochs` passes over n samples x (n * sample size floats) with labels, in
  // batches of batch_size (each epoch a new seeded order; the n % batch_size left over are dropped,
  // as in the runner). The data are copied. The first fit's order equals the runner's for this
  // seed; later fits continue the order stream. Returns the number of steps (epochs * n / batch_size).
  // Throws Error, before changing anything, on a wrong length, a non-finite value (naming the
  // sample and feature), a label outside [0, classes), a batch size outside [1, n], ...
  int64_t begin_fit(const float* x, int64_t n_values, const int32_t* labels, int64_t n_labels,
                    int64_t epochs, int64_t batch_size);
  // Runs the fit's next step; returns its loss. Throws Error if no fit is under way or the loss is
  // not finite (the running statistics are then put back as they were before the step, the fit
  // ends).
  double fit_step();
  int64_t fit_steps_left() const { return fit_total_ - fit_done_; }
  void end_fit();

  // Mean loss and accuracy over n samples in inference mode (in the runner's evaluation batches).
  std::pair<double, double> evaluate(const float* x, int64_t n_values, const int32_t* labels, int64_t n_labels);
  // Class probabilities (n x classes) in inference mode.
  std::vector<float> predict(const float* x, int64_t n_values);

  // Every parameter and running-state buffer by name, in model order: "<layer>.<name>", the
  // layer's index in the model (a residual block's layers "<block>.<index>"), e.g. "1.weight",
  // "2.gamma", "2.runningMean", "4.0.weight".
  std::vector<std::pair<std::string, std::vector<float>>> weights();
  // Replaces every weight at once: `values` must name each of weights() exactly once, with its
  // length and finite values; otherwise nothing changes and Error says which.
  void set_weights(const std::vector<std::pair<std::string, std::vector<float>>>& values);

  // The model with its foldable normalization layers folded (fold.h), as an inference-only
  // Trainer, and what was folded and kept.
  std::unique_ptr<Trainer> folded(nlohmann::json* report) const;

  Model& model() { return model_; }
  const TrainerConfig& config() const { return config_; }
  int64_t steps_done() const { return steps_; }
  bool inference_only() const { return !optimizer_; }

 private:
  // The number of samples in n_values floats; throws Error naming `call` unless whole, finite samples.
  int64_t samples(const char* call, const float* x, int64_t n_values) const;
  void check_labels(const char* call, const int32_t* labels, int64_t n_labels, int64_t n) const;

  TrainerConfig config_;
  Model model_;
  std::unique_ptr<Optimizer> optimizer_;  // null: inference only
  Rng order_;                             // draws each fit's batch-order seed
  int64_t steps_ = 0;
  // The fit under way.
  Dataset fit_data_;
  std::unique_ptr<BatchSampler> sampler_;
  int64_t fit_total_ = 0, fit_done_ = 0;
  Tensor batch_x_, dlogits_;
  std::vector<int32_t> batch_labels_;
};

}  // namespace normlab
