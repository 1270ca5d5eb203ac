// Optimizers and learning-rate schedules with PyTorch's update rules (torch.optim.SGD, Adam, AdamW;
// lr_scheduler.StepLR, CosineAnnealingLR). Weight decay applies only to parameters marked `decay`
// (weights of Linear and Conv2d), never to biases or normalization parameters.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "normlab/core/param.h"

namespace normlab {

struct OptimizerOptions {
  std::string kind = "sgd";  // "sgd" | "adam" | "adamw"
  double lr = 0.1;
  double momentum = 0.0;     // sgd
  bool nesterov = false;     // sgd (needs momentum > 0)
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adam, adamw
};

// Reads {"kind", "lr", "momentum", "nesterov", "weightDecay", "beta1", "beta2", "eps"}; validates.
OptimizerOptions optimizer_options_from_json(const nlohmann::json& options);

class Optimizer {
 public:
  Optimizer(const OptimizerOptions& options, std::vector<Param*> params);
  // A replica of `state` (options, momentum or moment buffers, step count) over other parameters of
  // the same lengths, in the same order (e.g. those of Model::clone()): its next step moves them as
  // `state`'s next step would move its own. Throws Error if the counts or lengths differ.
  Optimizer(const Optimizer& state, std::vector<Param*> params);
  // One update of every parameter from its grad, with learning rate `lr` (from the schedule).
  void step(double lr);
  const OptimizerOptions& options() const { return options_; }
  int64_t steps() const { return t_; }

 private:
  OptimizerOptions options_;
  std::vector<Param*> params_;
  std::vector<std::vector<float>> m_, v_;  // momentum buffer (sgd) or first moment (adam); second moment
  int64_t t_ = 0;
};

struct ScheduleOptions {
  std::string kind = "constant";  // "constant" | "step" | "cosine"
  int64_t step_size = 1000;       // step: multiply by gamma every step_size steps
  double gamma = 0.1;
  double min_lr = 0.0;            // cosine: eta_min
  int64_t warmup = 0;             // linear warm-up steps from 0 (any kind)
};

ScheduleOptions schedule_options_from_json(const nlohmann::json& options);

// The learning rate at `step` (0-based) of `total` steps for base rate `lr`.
double scheduled_lr(const ScheduleOptions& schedule, double lr, int64_t step, int64_t total);

}  // namespace normlab
