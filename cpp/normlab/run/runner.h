// The comparison runner: trains one model per normalization method on the same data, from the
// same initial weights, in the same batch order (every method sees each step's batch), and records
// what happens: training loss and accuracy per step; at every evaluation, test loss and accuracy in
// inference mode (running statistics) and with batch statistics (the train/inference gap), Batch
// Renorm's r and d against their limits, and percentiles of the pre-normalization activations.
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
#include "normlab/nn/optim.h"

namespace normlab {

struct MethodSpec {
  std::string id;          // unique within a run: "bn", "brn", "gn", "gn-2", ...
  std::string method;      // the layer API's name, or "none"
  nlohmann::json options;  // layer options beyond what the model fills in (channels, shapes)
  std::string label;       // for tables and legends: "BatchNorm", "GroupNorm (4 groups)", ...
};

struct DatasetSpec {
  std::string name = "moons";  // circle | xor | gauss | spiral | moons | blobs | digits | mnist
  double noise = 0.15;         // 2-D sets
  int64_t train_size = 1000;   // 2-D sets: generated; digits/mnist: all but test_size
  int64_t test_size = 500;
  int32_t classes = 2;         // spiral, blobs
};

struct RenormSchedule {
  bool enabled = true;
  double warmup = 0.1;    // fraction of the steps with rMax = 1, dMax = 0 (plain BatchNorm)
  double ramp_end = 0.5;  // fraction of the steps by which the limits reach the layer's rMax, dMax
};

// A shift of the test inputs to a "target domain", for AdaBN: the runner reports each method's
// accuracy on the shifted test set before and after re-estimating its population statistics there.
struct DomainShift {
  std::string kind;     // "" (none) | "invert" | "shift" | "scale" | "noise"
  double amount = 0;    // invert: blend toward 1 - x in [0, 1]; shift: added; scale: factor; noise: std
};

struct RunConfig {
  DatasetSpec dataset;
  ModelSpec model;
  std::vector<MethodSpec> methods;
  int64_t batch_size = 32;
  int32_t noniid_classes = 0;  // 0: i.i.d. batches; k: each batch from k classes
  OptimizerOptions optimizer;
  ScheduleOptions schedule;
  int64_t steps = 1000;
  int64_t eval_interval = 100;
  uint64_t seed = 1;
  RenormSchedule renorm;
  DomainShift shift;
  std::string preprocess;  // "" | "minmax" | "standardize" | "pca" | "zca": fitted on the training inputs
  double preprocess_eps = 1e-5;
};

// What a run holds at its peak, in bytes, estimated from its configuration and data set sizes:
// the data sets, each method's parameters with their gradients and optimizer state, and its
// activations (the model's saved layer inputs, the layers' caches and the gradient buffers for a
// training batch, and the evaluation batches). Meant as an upper estimate, within about half again
// of what a run allocates (tests/cpp/runner_test.cpp measures it).
struct MemoryEstimate {
  double data = 0, parameters = 0, activations = 0;
  double total() const { return data + parameters + activations; }
};
MemoryEstimate estimate_memory(const RunConfig& config, const Shape& sample_shape, int32_t classes,
                               int64_t train_size, int64_t test_size);

// The layer API's method name for a name or short alias (bn, brn, ln, gn, in, rms, l1bn, gbn, sn,
// wn, cn), or "none"; throws Error listing the known names and aliases.
std::string canonical_method(const std::string& name);

// Parses and validates a configuration (unknown keys rejected with the known ones listed).
RunConfig run_config_from_json(const nlohmann::json& json);
nlohmann::json run_config_to_json(const RunConfig& config);

class Runner {
 public:
  // `data`: the bytes of the data set's file for digits and mnist (see datasets.h), else empty.
  // `memory_limit`: bytes the run may use (0: no limit); a configuration whose estimate
  // (estimate_memory) exceeds it is refused with an Error giving both, before any model is built.
  Runner(const RunConfig& config, const std::vector<uint8_t>& data, double memory_limit = 0);
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
  // Milliseconds of training and evaluation per method so far (not part of result(): it differs
  // between runs, and the result must not).
  nlohmann::json timing() const;

 private:
  struct Arm;
  Arm& arm(const std::string& id);  // throws Error naming the known ids
  void evaluate(Arm& arm);
  // Inference-mode mean loss and accuracy of the arm's model on a data set.
  std::pair<double, double> infer(Arm& arm, const Dataset& data);
  // AdaBN: each normalization layer's population statistics from the target inputs, in order.
  void adapt(Arm& arm, const Dataset& target);
  void apply_renorm_schedule(Arm& arm) const;

  RunConfig config_;
  Split data_;
  Dataset target_;
  std::unique_ptr<Preprocessor> preprocessor_;  // fitted on the training inputs (null: none)  // the test set under config_.shift (empty without a shift)
  std::unique_ptr<BatchSampler> sampler_;
  std::vector<std::unique_ptr<Arm>> arms_;
  int64_t step_ = 0;
  Tensor batch_x_;
  std::vector<int32_t> batch_labels_;
};

}  // namespace normlab
