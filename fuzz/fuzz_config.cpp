// libFuzzer target: comparison-runner configurations. Any bytes are parsed as JSON and validated by
// run_config_from_json; a valid configuration is run for a few steps on a small 2-D data set. The
// only acceptable failure is normlab::Error (the message a user would get); anything else — a crash,
// a sanitizer report, another exception — is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "normlab/core/error.h"
#include "normlab/run/runner.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json json = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  normlab::RunConfig config;
  try {
    config = normlab::run_config_from_json(json);
  } catch (const normlab::Error&) {
    return 0;
  }
  // Keep each run small: the fuzzer explores validation and the first steps, not long training.
  if (config.dataset.name == "digits" || config.dataset.name == "mnist") return 0;
  config.dataset.train_size = std::min<int64_t>(config.dataset.train_size, 64);
  config.dataset.test_size = std::min<int64_t>(config.dataset.test_size, 32);
  config.steps = std::min<int64_t>(config.steps, 3);
  config.eval_interval = std::min(config.eval_interval, config.steps);
  for (int64_t& w : config.model.hidden) w = std::min<int64_t>(w, 32);
  for (int64_t& c : config.model.channels) c = std::min<int64_t>(c, 8);
  config.batch_size = std::min<int64_t>(config.batch_size, 32);
  try {
    normlab::Runner runner(config, {});
    runner.step(3);
    (void)runner.result().dump();
  } catch (const normlab::Error&) {
  }
  return 0;
}
