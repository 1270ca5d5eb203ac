// Optimizers and schedules against steps computed by hand (PyTorch's update rules): a parameter
// [1, -2] with the constant gradient [0.5, 0.25].
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "normlab/core/error.h"
#include "normlab/nn/optim.h"

namespace {

using normlab::Optimizer;
using normlab::OptimizerOptions;
using normlab::Param;

Param param(bool decay = true) {
  Param p{"w", {1.0f, -2.0f}, {0.5f, 0.25f}};
  p.decay = decay;
  return p;
}

OptimizerOptions opts(const char* kind, double lr, double momentum = 0, double wd = 0, bool nesterov = false) {
  OptimizerOptions o;
  o.kind = kind;
  o.lr = lr;
  o.momentum = momentum;
  o.weight_decay = wd;
  o.nesterov = nesterov;
  return o;
}

TEST(Optimizer, SgdMomentum) {
  Param p = param();
  Optimizer opt(opts("sgd", 0.1, 0.9), {&p});
  opt.step(0.1);  // buf = g = [0.5, 0.25]; p -= 0.1 buf
  EXPECT_FLOAT_EQ(p.value[0], 0.95f);
  EXPECT_FLOAT_EQ(p.value[1], -2.025f);
  opt.step(0.1);  // buf = 0.9 buf + g = [0.95, 0.475]
  EXPECT_FLOAT_EQ(p.value[0], 0.855f);
  EXPECT_FLOAT_EQ(p.value[1], -2.0725f);
}

TEST(Optimizer, SgdNesterov) {
  Param p = param();
  Optimizer opt(opts("sgd", 0.1, 0.9, 0, true), {&p});
  opt.step(0.1);  // buf = g; g' = g + 0.9 buf = [0.95, 0.475]
  EXPECT_FLOAT_EQ(p.value[0], 0.905f);
  EXPECT_FLOAT_EQ(p.value[1], -2.0475f);
}

TEST(Optimizer, WeightDecayOnlyWhereMarked) {
  Param w = param(true), b = param(false);
  Optimizer opt(opts("sgd", 0.1, 0, 0.1), {&w, &b});
  opt.step(0.1);  // w: g + 0.1 p = [0.6, 0.05]; b: no decay
  EXPECT_FLOAT_EQ(w.value[0], 0.94f);
  EXPECT_FLOAT_EQ(w.value[1], -2.005f);
  EXPECT_FLOAT_EQ(b.value[0], 0.95f);
  EXPECT_FLOAT_EQ(b.value[1], -2.025f);
}

TEST(Optimizer, AdamMovesByLrPerStepUnderAConstantGradient) {
  // Step 1: m = 0.1 g, v = 0.001 g^2, m/(1-b1) / (sqrt(v/(1-b2)) + eps) = g/|g| (+eps): lr * sign(g).
  // Step 2: m/(1-b1^2) = g, v/(1-b2^2) = g^2 again: another lr * sign(g).
  Param p = param();
  Optimizer opt(opts("adam", 0.1), {&p});
  opt.step(0.1);
  EXPECT_NEAR(p.value[0], 0.9f, 1e-6);
  EXPECT_NEAR(p.value[1], -2.1f, 1e-6);
  opt.step(0.1);  // m and v are float32: a few ulps of drift (a wrong formula is off by >= 1e-2)
  EXPECT_NEAR(p.value[0], 0.8f, 1e-5);
  EXPECT_NEAR(p.value[1], -2.2f, 1e-5);
}

TEST(Optimizer, AdamWDecouplesWeightDecay) {
  // p *= 1 - lr wd first (0.99), then the Adam step of lr sign(g); Adam with L2 instead adds wd p to
  // g, which (same sign here) leaves its first step at lr sign(g).
  Param w = param(), l2 = param();
  Optimizer adamw(opts("adamw", 0.1, 0, 0.1), {&w});
  Optimizer adam(opts("adam", 0.1, 0, 0.1), {&l2});
  adamw.step(0.1);
  adam.step(0.1);
  EXPECT_NEAR(w.value[0], 0.99f - 0.1f, 1e-6);
  EXPECT_NEAR(w.value[1], -1.98f - 0.1f, 1e-6);
  EXPECT_NEAR(l2.value[0], 0.9f, 1e-6);
}

TEST(Schedule, ConstantStepCosineWarmup) {
  normlab::ScheduleOptions s;
  EXPECT_DOUBLE_EQ(normlab::scheduled_lr(s, 0.1, 57, 100), 0.1);
  s.kind = "step";
  s.step_size = 10;
  s.gamma = 0.5;
  EXPECT_DOUBLE_EQ(normlab::scheduled_lr(s, 0.1, 9, 100), 0.1);
  EXPECT_DOUBLE_EQ(normlab::scheduled_lr(s, 0.1, 25, 100), 0.025);
  s.kind = "cosine";
  EXPECT_DOUBLE_EQ(normlab::scheduled_lr(s, 0.1, 0, 100), 0.1);
  EXPECT_NEAR(normlab::scheduled_lr(s, 0.1, 50, 100), 0.05, 1e-15);
  EXPECT_NEAR(normlab::scheduled_lr(s, 0.1, 100, 100), 0.0, 1e-15);
  s.min_lr = 0.01;
  EXPECT_NEAR(normlab::scheduled_lr(s, 0.1, 50, 100), 0.055, 1e-15);
  s.kind = "constant";
  s.warmup = 4;
  EXPECT_DOUBLE_EQ(normlab::scheduled_lr(s, 0.1, 0, 100), 0.025);
  EXPECT_DOUBLE_EQ(normlab::scheduled_lr(s, 0.1, 3, 100), 0.1);
}

TEST(Optimizer, OptionsAreValidated) {
  using nlohmann::json;
  EXPECT_THROW(normlab::optimizer_options_from_json(json{{"kind", "rmsprop"}}), normlab::Error);
  EXPECT_THROW(normlab::optimizer_options_from_json(json{{"lr", 0}}), normlab::Error);
  EXPECT_THROW(normlab::optimizer_options_from_json(json{{"momentum", 1}}), normlab::Error);
  EXPECT_THROW(normlab::optimizer_options_from_json(json{{"nesterov", true}}), normlab::Error);
  EXPECT_THROW(normlab::optimizer_options_from_json(json{{"lr", 0.1}, {"lrr", 0.1}}), normlab::Error);
  EXPECT_THROW(normlab::schedule_options_from_json(json{{"kind", "cosine"}, {"gamma", 2}}), normlab::Error);
  EXPECT_NO_THROW(normlab::optimizer_options_from_json(json{{"kind", "sgd"}, {"momentum", 0.9}, {"nesterov", true}}));
}

}  // namespace
