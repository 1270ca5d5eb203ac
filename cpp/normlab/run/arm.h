// One method of a run (internal to run/): its model, optimizer and records, which stepping
// (runner.cpp) and evaluation (evaluate.cpp) both work on, and how the records are kept.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "normlab/core/tensor.h"
#include "normlab/nn/model.h"
#include "normlab/nn/optim.h"
#include "normlab/run/evaluate.h"
#include "normlab/run/runner.h"

namespace normlab {
namespace detail {

// Seconds since t0, for the arms' timing.
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Rounds to 7 significant digits for the JSON result (float32 precision; keeps files small).
inline double r7(double v) {
  if (!std::isfinite(v) || v == 0) return v;
  const double scale = std::pow(10.0, 6 - static_cast<int>(std::floor(std::log10(std::fabs(v)))));
  return std::round(v * scale) / scale;
}

// Whether a norm slot of the model receives flat features [N,C]: with a batch of one example, a
// single value per channel, so no batch statistics.
bool flat_norm_slot(const ModelSpec& model, const Shape& sample_shape);

}  // namespace detail

struct Runner::Arm {
  MethodSpec spec;
  Model model;
  std::unique_ptr<Optimizer> optimizer;
  std::vector<size_t> activation_layers;  // model layer indices whose input is a pre-normalization activation
  Tensor dlogits;
  // Records.
  std::vector<float> train_loss, train_accuracy;
  nlohmann::json evals = nlohmann::json::array();
  size_t reported_train = 0, reported_evals = 0;
  detail::NormStates before_step;  // the running state before this step's forward, to undo a diverged one
  bool diverged = false;
  int64_t diverged_step = 0;
  std::string diverged_reason;
  double train_seconds = 0, eval_seconds = 0;  // eval_seconds includes probe_seconds
  double probe_seconds = 0;                     // the landscape and ICS probes (Runner::probe)
};

}  // namespace normlab
