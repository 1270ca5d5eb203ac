// The Trainer (nl.model's C++ side) is the runner's model and training step: fitted on a runner's
// training set with its seed, batch size and optimizer, it ends with the arm's weights and running
// statistics exactly. A diverging fit leaves the running statistics finite; a refused setWeights
// changes nothing.
#include <cmath>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "normlab/run/runner.h"
#include "normlab/run/trainer.h"
#include "test_util.h"

namespace normlab_test {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

// Every parameter and running-state value of the model, in order.
std::vector<float> everything(normlab::Model& model) {
  std::vector<float> out;
  for (normlab::Param* p : model.parameters()) out.insert(out.end(), p->value.begin(), p->value.end());
  for (normlab::NormModule* norm : model.norms()) {
    for (const normlab::StateBuffer& b : norm->layer().state()) out.insert(out.end(), b.value.begin(), b.value.end());
  }
  return out;
}

TEST(Trainer, EqualsTheRunnersArm) {
  // Batch Renorm too, with the runner's limits schedule off (fit has none).
  for (const std::string method : {"batchnorm", "batchrenorm", "groupnorm"}) {
    const json layers = "linear:16,norm,relu,linear:16,norm,relu";
    const json optimizer = {{"kind", "sgd"}, {"lr", 0.1}, {"momentum", 0.9}};
    const int64_t batch = 10, seed = 11;
    const normlab::RunConfig c = normlab::run_config_from_json(
        {{"dataset", {{"name", "moons"}}}, {"model", {{"layers", layers}}}, {"methods", {method}},
         {"batchSize", batch}, {"optimizer", optimizer}, {"steps", 100}, {"evalInterval", 100},
         {"seed", seed}, {"renormSchedule", false}});
    normlab::Runner runner(c, {});
    std::vector<float> x;
    std::vector<int32_t> labels;
    const int64_t n = runner.samples("train", 1 << 20, x, labels);
    ASSERT_EQ(n / batch, 100);
    runner.step(100);
    normlab::Trainer trainer(normlab::trainer_config_from_json(
        {{"input", {2}}, {"layers", layers}, {"classes", 2}, {"norm", method}, {"optimizer", optimizer}, {"seed", seed}}));
    ASSERT_EQ(trainer.begin_fit(x.data(), static_cast<int64_t>(x.size()), labels.data(), n, 1, batch), 100);
    while (trainer.fit_steps_left() > 0) trainer.fit_step();
    const std::string id = runner.result()["methods"][0]["id"];
    EXPECT_EQ(everything(trainer.model()), everything(runner.model(id))) << method;
  }
}

TEST(Trainer, DivergenceKeepsRunningStatisticsFinite) {
  normlab::Trainer trainer(normlab::trainer_config_from_json(
      {{"input", {4}}, {"layers", "linear:8,norm,relu"}, {"classes", 2}, {"norm", "bn"},
       {"optimizer", {{"kind", "sgd"}, {"lr", 1e12}}}}));
  std::vector<float> x(4 * 64);
  std::vector<int32_t> labels(64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 11) - 5.0f;
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int32_t>(i % 2);
  trainer.begin_fit(x.data(), static_cast<int64_t>(x.size()), labels.data(), 64, 50, 8);
  std::string message;
  try {
    while (trainer.fit_steps_left() > 0) trainer.fit_step();
  } catch (const normlab::Error& e) {
    message = e.what();
  }
  EXPECT_THAT(message, HasSubstr("fit: training diverged at step"));
  EXPECT_EQ(trainer.fit_steps_left(), 0);
  for (normlab::NormModule* norm : trainer.model().norms()) {
    for (const normlab::StateBuffer& b : norm->layer().state()) {
      for (float v : b.value) EXPECT_TRUE(std::isfinite(v)) << b.name;
    }
  }
}

TEST(Trainer, RefusedSetWeightsChangesNothing) {
  normlab::Trainer trainer(normlab::trainer_config_from_json(
      {{"input", {4}}, {"layers", "linear:8,norm,relu"}, {"classes", 3}, {"norm", "bn"}}));
  const std::vector<float> before = everything(trainer.model());
  auto w = trainer.weights();
  for (auto& [name, v] : w) {
    if (name == "0.weight") std::fill(v.begin(), v.end(), 0.5f);  // accepted, but comes first
    if (name == "1.runningVar") std::fill(v.begin(), v.end(), -1.0f);  // refused by batchnorm
  }
  EXPECT_THROW(trainer.set_weights(w), normlab::Error);
  EXPECT_EQ(everything(trainer.model()), before);
}

}  // namespace
}  // namespace normlab_test
