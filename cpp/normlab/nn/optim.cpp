#include "normlab/nn/optim.h"

#include <cmath>

#include "normlab/core/error.h"
#include "normlab/core/options.h"

namespace normlab {

OptimizerOptions optimizer_options_from_json(const nlohmann::json& json) {
  OptionReader r(json, "optimizer",
                 {"kind", "lr", "momentum", "nesterov", "weightDecay", "beta1", "beta2", "eps"});
  OptimizerOptions o;
  if (r.has("kind")) {
    const nlohmann::json& k = json.at("kind");
    if (!k.is_string()) fail("optimizer: kind must be a string (sgd, adam, adamw), got ", k.dump());
    o.kind = k.get<std::string>();
  }
  if (o.kind != "sgd" && o.kind != "adam" && o.kind != "adamw") {
    fail("optimizer: unknown kind '", o.kind, "' (known: sgd, adam, adamw)");
  }
  o.lr = r.number("lr", o.lr);
  o.momentum = r.number("momentum", o.momentum);
  o.nesterov = r.boolean("nesterov", o.nesterov);
  o.weight_decay = r.number("weightDecay", o.weight_decay);
  o.beta1 = r.number("beta1", o.beta1);
  o.beta2 = r.number("beta2", o.beta2);
  o.eps = r.number("eps", o.eps);
  if (!(o.lr > 0) || !std::isfinite(o.lr)) fail("optimizer: lr must be a finite number > 0, got ", o.lr);
  if (!(o.momentum >= 0 && o.momentum < 1)) fail("optimizer: momentum must be in [0, 1), got ", o.momentum);
  if (o.nesterov && !(o.momentum > 0)) fail("optimizer: nesterov needs momentum > 0");
  if (o.kind != "sgd" && (r.has("momentum") || r.has("nesterov"))) {
    fail("optimizer: momentum and nesterov are sgd options; ", o.kind, " uses beta1 and beta2");
  }
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay)) {
    fail("optimizer: weightDecay must be a finite number >= 0, got ", o.weight_decay);
  }
  if (!(o.beta1 >= 0 && o.beta1 < 1)) fail("optimizer: beta1 must be in [0, 1), got ", o.beta1);
  if (!(o.beta2 >= 0 && o.beta2 < 1)) fail("optimizer: beta2 must be in [0, 1), got ", o.beta2);
  if (!(o.eps > 0) || !std::isfinite(o.eps)) fail("optimizer: eps must be a finite number > 0, got ", o.eps);
  return o;
}

Optimizer::Optimizer(const OptimizerOptions& options, std::vector<Param*> params)
    : options_(options), params_(std::move(params)) {
  for (Param* p : params_) {
    m_.emplace_back(p->value.size(), 0.0f);
    v_.emplace_back(options_.kind == "sgd" ? 0 : p->value.size(), 0.0f);
  }
}

Optimizer::Optimizer(const Optimizer& state, std::vector<Param*> params)
    : options_(state.options_), params_(std::move(params)), m_(state.m_), v_(state.v_), t_(state.t_) {
  if (params_.size() != state.params_.size()) {
    fail("optimizer replica: ", params_.size(), " parameters, the original has ", state.params_.size());
  }
  for (size_t k = 0; k < params_.size(); ++k) {
    if (params_[k]->value.size() != state.params_[k]->value.size()) {
      fail("optimizer replica: parameter ", k, " (", params_[k]->name, ") has ", params_[k]->value.size(),
           " values, the original's ", state.params_[k]->value.size());
    }
  }
}

void Optimizer::step(double lr) {
  ++t_;
  const OptimizerOptions& o = options_;
  if (o.kind == "sgd") {
    // reference: torch.optim.SGD (dampening 0): g += wd*p; buf = mu*buf + g (buf = g at step 1);
    // nesterov: g += mu*buf, else g = buf; p -= lr*g.
    for (size_t k = 0; k < params_.size(); ++k) {
      Param& p = *params_[k];
      const float wd = p.decay ? static_cast<float>(o.weight_decay) : 0.0f;
      const float mu = static_cast<float>(o.momentum), step = static_cast<float>(lr);
      float* buf = m_[k].data();
      for (size_t i = 0; i < p.value.size(); ++i) {
        float g = p.grad[i] + wd * p.value[i];
        if (o.momentum > 0) {
          buf[i] = t_ == 1 ? g : mu * buf[i] + g;
          g = o.nesterov ? g + mu * buf[i] : buf[i];
        }
        p.value[i] -= step * g;
      }
    }
    return;
  }
  // reference: torch.optim.Adam / AdamW: m = b1*m + (1-b1)g; v = b2*v + (1-b2)g^2;
  // p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). Adam adds wd*p to g (L2);
  // AdamW multiplies p by (1 - lr*wd) first (decoupled).
  const bool decoupled = o.kind == "adamw";
  const double bc1 = 1 - std::pow(o.beta1, static_cast<double>(t_));
  const double bc2 = 1 - std::pow(o.beta2, static_cast<double>(t_));
  const float step_size = static_cast<float>(lr / bc1);
  const float sqrt_bc2 = static_cast<float>(std::sqrt(bc2));
  const float b1 = static_cast<float>(o.beta1), b2 = static_cast<float>(o.beta2);
  const float eps = static_cast<float>(o.eps);
  for (size_t k = 0; k < params_.size(); ++k) {
    Param& p = *params_[k];
    const float wd = p.decay ? static_cast<float>(o.weight_decay) : 0.0f;
    float* m = m_[k].data();
    float* v = v_[k].data();
    for (size_t i = 0; i < p.value.size(); ++i) {
      float g = p.grad[i];
      if (decoupled) {
        p.value[i] *= 1 - static_cast<float>(lr) * wd;
      } else {
        g += wd * p.value[i];
      }
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      p.value[i] -= step_size * m[i] / (std::sqrt(v[i]) / sqrt_bc2 + eps);
    }
  }
}

ScheduleOptions schedule_options_from_json(const nlohmann::json& json) {
  OptionReader r(json, "schedule", {"kind", "stepSize", "gamma", "minLr", "warmup"});
  ScheduleOptions s;
  if (r.has("kind")) {
    const nlohmann::json& k = json.at("kind");
    if (!k.is_string()) fail("schedule: kind must be a string (constant, step, cosine), got ", k.dump());
    s.kind = k.get<std::string>();
  }
  if (s.kind != "constant" && s.kind != "step" && s.kind != "cosine") {
    fail("schedule: unknown kind '", s.kind, "' (known: constant, step, cosine)");
  }
  if (r.has("stepSize")) s.step_size = r.integer("stepSize");
  s.gamma = r.number("gamma", s.gamma);
  s.min_lr = r.number("minLr", s.min_lr);
  if (r.has("warmup")) s.warmup = r.integer("warmup");
  if (s.step_size < 1) fail("schedule: stepSize must be an integer >= 1, got ", s.step_size);
  if (!(s.gamma > 0 && s.gamma <= 1)) fail("schedule: gamma must be in (0, 1], got ", s.gamma);
  if (!(s.min_lr >= 0) || !std::isfinite(s.min_lr)) fail("schedule: minLr must be a finite number >= 0, got ", s.min_lr);
  if (s.warmup < 0) fail("schedule: warmup must be an integer >= 0, got ", s.warmup);
  return s;
}

double scheduled_lr(const ScheduleOptions& s, double lr, int64_t step, int64_t total) {
  double rate = lr;
  if (s.kind == "step") {
    rate = lr * std::pow(s.gamma, static_cast<double>(step / s.step_size));
  } else if (s.kind == "cosine" && total > 0) {
    // reference: torch.optim.lr_scheduler.CosineAnnealingLR with T_max = total.
    const double progress = static_cast<double>(step) / static_cast<double>(total);
    rate = s.min_lr + (lr - s.min_lr) * 0.5 * (1 + std::cos(3.141592653589793 * progress));
  }
  if (step < s.warmup) rate *= static_cast<double>(step + 1) / static_cast<double>(s.warmup);
  return rate;
}

}  // namespace normlab
