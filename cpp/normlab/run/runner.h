// The comparison runner: trains one model per normalization method on the same data, from the
// same initial weights, in the same batch order (every method sees each step's batch), and records
// what happens: training loss and accuracy per step; at every evaluation, test loss and accuracy in
// inference mode (running statistics) and with batch statistics (the train/inference gap), Batch
// Renorm's r and d against their limits, and percentiles of the pre-normalization activations;
// with config.probes, the loss landscape along the gradient and internal covariate shift per layer
// on a fixed batch (probes.h).
//
// This header is the runner's whole interface: the configuration (config.h) and the memory
// estimate (memory.h) come with it. The Runner's stepping and records are in runner.cpp, its
// evaluations (test loss and accuracy, batch statistics, predict, fold, AdaBN) in evaluate.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "normlab/data/batching.h"
#include "normlab/data/datasets.h"
#include "normlab/data/preprocess.h"
#include "normlab/nn/model.h"
#include "normlab/run/config.h"
#include "normlab/run/memory.h"

namespace normlab {

class Runner {
 public:
  // `data`: the bytes of the data set's file for digits and mnist (see datasets.h), else empty.
  // `memory_limit`: bytes the run may use (0: no limit); a configuration whose estimate
  // (estimate_memory) exceeds it is refused with an Error giving both, before any model is built.
  Runner(const RunConfig& config, const std::vector<uint8_t>& data, double memory_limit = 0);
  // The user's own data (config.dataset.source set, e.g. "csv"): `train`, and `test` or an empty
  // Dataset, in which case config.dataset.test_fraction of `train` is held out for testing
  // (split_fixed: stratified, drawn from the seed). Both take the config's data set name; labels
  // are in [0, train.num_classes) (at least 2 classes, and 2 of them among the labels), test has
  // the same sample shape and classes, every value is finite, and train.class_names holds one
  // name per class (empty: "0", "1", ...). Anything else is an Error naming the data set.
  Runner(const RunConfig& config, Dataset train, Dataset test, double memory_limit = 0);
  ~Runner();

  // Runs up to n more steps of every method (fewer at the end); returns the steps taken.
  int64_t step(int64_t n);
  int64_t steps_done() const { return step_; }
  bool done() const { return step_ >= config_.steps; }

  // Records since the last call to take_events(): {"step", "methods": {id: {"train": [...], "eval": [...]}}}
  nlohmann::json take_events();
  // Everything so far (the final result once done()).
  nlohmann::json result() const;
  const RunConfig& config() const { return config_; }
  // Class probabilities (n, classes) of method `id`'s model in inference mode for n samples of the
  // data set's sample shape (e.g. points of a 2-D set on a grid, for decision-boundary maps).
  // folded: with the model's foldable normalization layers folded into the Linear / Conv2d before
  // them (fold.h), as deployed; the training model is not changed.
  // The run's preprocessing, if any, is applied to x first (x is in the data set's own units).
  std::vector<float> predict(const std::string& id, const float* x, int64_t n, bool folded = false);
  // Folds method `id`'s current model (fold.h) and compares it with the unfolded one on the test
  // set in inference mode: {"folded": [{"layer", "method", "into"}], "kept": [{"layer", "method",
  // "reason"}], "layers": {"before", "after"}, "summary": {"before", "after"} (Model::summary),
  // "maxAbsDiff": the largest |logit difference| over the test set, null if one is NaN}.
  nlohmann::json fold(const std::string& id);
  // AdaBN on method `id`'s model (adapt_batch_norm in model.h) with n target-domain samples in the
  // data set's units (the run's preprocessing is applied): its population statistics are replaced
  // for good (predict() then uses them). Returns the number of layers adapted.
  int adapt_batch_norm(const std::string& id, const float* x, int64_t n);
  // The first min(max, size) samples of the "train" or "test" set, in the data set's own units (the
  // preprocessing undone), and their labels; returns the count. E.g. the points on a decision map.
  int64_t samples(const std::string& which, int64_t max, std::vector<float>& x,
                  std::vector<int32_t>& labels) const;
  // Method `id`'s model (throws Error naming the known ids for an unknown one).
  Model& model(const std::string& id);
  // The shape of one sample ([2] for 2-D sets, [1,H,W] for images) and the number of classes.
  Shape sample_shape() const;
  int32_t classes() const { return data_.train.num_classes; }
  // The user's own data: one name per class; empty for the built-in sets.
  const std::vector<std::string>& class_names() const { return data_.train.class_names; }
  // Milliseconds of training and evaluation per method so far (not part of result(): it differs
  // between runs, and the result must not).
  nlohmann::json timing() const;

 private:
  struct Arm;
  // Everything after the data (data_) is in place: preprocessing, the checks of batch size and
  // memory, the batch order, and one model and optimizer per method.
  void build(double memory_limit);
  Arm& arm(const std::string& id);  // throws Error naming the known ids
  void evaluate(Arm& arm);
  // The landscape and ICS probes (probes.h) of the arm's model on the probe batch, into an
  // evaluation record: "landscape" and "ics".
  void probe(Arm& arm, nlohmann::json& record);
  // Inference-mode mean loss and accuracy of the arm's model on a data set.
  std::pair<double, double> infer(Arm& arm, const Dataset& data);
  // AdaBN: each normalization layer's population statistics from the target inputs, in order.
  void adapt(Arm& arm, const Dataset& target);
  void apply_renorm_schedule(Arm& arm) const;

  RunConfig config_;
  Split data_;
  Dataset target_;                              // the test set under config_.shift (empty without a shift)
  std::unique_ptr<Preprocessor> preprocessor_;  // fitted on the training inputs (null: none)
  std::unique_ptr<BatchSampler> sampler_;
  std::vector<std::unique_ptr<Arm>> arms_;
  int64_t step_ = 0;
  Tensor batch_x_;
  std::vector<int32_t> batch_labels_;
  Tensor probe_x_;                      // the probes' fixed batch (config_.probes): inputs, labels
  std::vector<int32_t> probe_labels_;
};

}  // namespace normlab
