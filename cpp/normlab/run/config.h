// The runner's configuration: what a run compares (methods, with their ids and labels), on what
// (data set, model, batching, preprocessing, domain shift) and how (optimizer, schedules, steps),
// and its JSON form, parsed and validated here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "normlab/nn/model.h"
#include "normlab/nn/optim.h"

namespace normlab {

// Purposes of the generators forked from a run's seed (see Rng::fork): the runner's and a Trainer's
// (trainer.h), which must draw the same weights and batch order for the same seed.
enum : uint64_t { kDataStream = 1, kInitStream = 2, kOrderStream = 3, kProbeStream = 4, kShiftStream = 5 };

struct MethodSpec {
  std::string id;          // unique within a run: "bn", "brn", "gn", "gn-2", ...
  std::string method;      // the layer API's name, or "none"
  nlohmann::json options;  // layer options beyond what the model fills in (channels, shapes)
  std::string label;       // for tables and legends: "BatchNorm", "GroupNorm (4 groups)", ...
};

struct DatasetSpec {
  std::string name = "moons";  // circle | xor | gauss | spiral | moons | blobs | digits | mnist,
                               // or any name of the user's own data
  double noise = 0.15;         // 2-D sets
  int64_t train_size = 1000;   // 2-D sets: generated; digits/mnist: all but test_size
  int64_t test_size = 500;
  int32_t classes = 2;         // spiral, blobs
  // The user's own data (the Runner constructor that takes the examples): how they were read,
  // "arrays", "csv" or "nlds"; empty for the built-in sets above.
  std::string source;
  // The user's own data without a test set: the share of the examples held out for testing
  // (held_out in datasets.h, stratified, drawn from the seed); 0 when a test set was given.
  double test_fraction = 0.2;

  bool user() const { return !source.empty(); }
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

// Probes of the loss landscape and of internal covariate shift at every evaluation (probes.h, after
// Santurkar et al. 2018), on a fixed batch of training examples drawn from kProbeStream. Off by
// default; they never change the training trajectory.
struct ProbeConfig {
  bool landscape = false;    // loss and gradient at w - eta g for each eta
  bool ics = false;          // internal covariate shift per layer
  std::vector<double> etas;  // the landscape's step sizes (default_probe_etas of the lr if not given)

  bool enabled() const { return landscape || ics; }
};

// The landscape's default step sizes: the optimizer's lr times 1/4, 1/2, 1, 2 and 4.
std::vector<double> default_probe_etas(double lr);

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
  ProbeConfig probes;
};

// The layer API's method name for a name or one of its aliases (the method table's: bn, brn, ln,
// ...), or "none"; throws Error listing the known names and aliases.
std::string canonical_method(const std::string& name);

// Parses and validates a configuration (unknown keys rejected with the known ones listed).
RunConfig run_config_from_json(const nlohmann::json& json);
nlohmann::json run_config_to_json(const RunConfig& config);

}  // namespace normlab
