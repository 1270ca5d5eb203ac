// The comparison runner's guarantees that the JS suites cannot see from outside: a diverging method
// leaves no NaN in its running statistics, and the memory estimate that refuses oversized runs up
// front is close to what a run really allocates.
#include <malloc.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "normlab/run/runner.h"
#include "test_util.h"

namespace normlab_test {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

normlab::RunConfig config(json j) { return normlab::run_config_from_json(j); }

// Every running-state value of every normalization layer of the model is finite.
bool state_finite(normlab::Model& model) {
  for (normlab::NormModule* norm : model.norms()) {
    for (const normlab::StateBuffer& b : norm->layer().state()) {
      for (float v : b.value) {
        if (!std::isfinite(v)) return false;
      }
    }
  }
  return true;
}

TEST(Runner, DivergenceKeepsRunningStatisticsFinite) {
  // lr 1e6 blows every method up within a few steps; the forward of the diverging step already
  // saw NaN or infinite activations, which batch statistics would carry into the running state.
  const normlab::RunConfig c = config({{"methods", {"bn", "brn", "l1bn", "gbn", "sn", "ln"}},
                                       {"optimizer", {{"kind", "sgd"}, {"lr", 1e6}}},
                                       {"steps", 40},
                                       {"evalInterval", 10},
                                       {"domainShift", {{"kind", "scale"}, {"amount", 2}}}});
  normlab::Runner runner(c, {});
  runner.step(40);
  const json result = runner.result();
  int diverged = 0;
  for (const json& m : result["methods"]) {
    const std::string id = m["id"];
    normlab::Model& model = runner.model(id);
    EXPECT_TRUE(state_finite(model)) << id;
    if (m["diverged"].is_null()) continue;
    ++diverged;
    EXPECT_GT(m["diverged"]["step"].get<int64_t>(), 0) << id;
    // Predictions use the running statistics; with NaN parameters they are NaN, but the layers'
    // state itself stayed usable (e.g. to reload the last good parameters).
  }
  // At least the batch-statistics methods must have diverged for the test to mean anything.
  EXPECT_GE(diverged, 4);
}

TEST(Runner, DivergenceUndoesTheDivergingStepsStatistics) {
  // The running state after the run equals the state after the last finite step: running the
  // same configuration for exactly the steps before the divergence gives the same state.
  const json base = {{"methods", {"bn"}}, {"optimizer", {{"kind", "sgd"}, {"lr", 1e6}}},
                     {"steps", 40}, {"evalInterval", 40}};
  normlab::Runner full(config(base), {});
  full.step(40);
  const json d = full.result()["methods"][0]["diverged"];
  ASSERT_FALSE(d.is_null());
  const int64_t k = d["step"];
  ASSERT_GT(k, 0);
  json shorter = base;
  shorter["steps"] = 40;
  normlab::Runner part(config(shorter), {});
  part.step(k);  // the steps before the diverging one
  const auto& a = full.model("bn").norms();
  const auto& b = part.model("bn").norms();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const auto& sa = a[i]->layer().state();
    const auto& sb = b[i]->layer().state();
    for (size_t j = 0; j < sa.size(); ++j) EXPECT_EQ(sa[j].value, sb[j].value) << sa[j].name;
  }
}

// Whether glibc's malloc is the allocator (AddressSanitizer replaces it, and mallinfo2 then
// counts nothing).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kGlibcMalloc = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kGlibcMalloc = false;
#else
constexpr bool kGlibcMalloc = true;
#endif
#else
constexpr bool kGlibcMalloc = true;
#endif

// Bytes the process has allocated (glibc: small blocks in use plus mmapped large ones).
std::vector<uint8_t> read_digits() {
  const std::string path = std::string(NORMLAB_DATA_DIR) + "/digits.nlds";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

double allocated_bytes() {
  const struct mallinfo2 info = mallinfo2();
  return static_cast<double>(info.uordblks + info.hblkhd);
}

TEST(Runner, MemoryEstimateIsCloseToWhatARunAllocates) {
  if (!kGlibcMalloc) GTEST_SKIP() << "needs glibc's malloc statistics (not under AddressSanitizer)";
  struct Case {
    const char* name;
    json config;
  };
  const Case cases[] = {
      {"mlp 4 methods", {{"methods", {"bn", "brn", "ln", "gn"}}, {"model", {{"hidden", {512, 512}}}},
                         {"batchSize", 256}, {"steps", 2}, {"evalInterval", 2}}},
      {"mlp adam", {{"methods", {"bn", "ln"}}, {"model", {{"hidden", {1024, 1024, 1024}}}},
                    {"optimizer", {{"kind", "adam"}, {"lr", 0.001}}}, {"steps", 2}, {"evalInterval", 2}}},
      // Described models (nn/model_spec.h): a CNN, and residual blocks (their layers' outputs, kept
      // inside the block, and the block's own gradient buffers).
      {"described cnn", {{"dataset", {{"name", "digits"}, {"testSize", 300}}},
                         {"model", {{"layers", "conv:32,norm,relu,conv:32:3:2,norm,relu,pool:2,conv:64,norm,relu"}}},
                         {"methods", {"bn", "gn"}}, {"batchSize", 64}, {"steps", 2}, {"evalInterval", 2}}},
      {"residual cnn", {{"dataset", {{"name", "digits"}, {"testSize", 300}}},
                        {"model", {{"layers", "conv:32,norm,relu,res[conv:32,norm,relu,conv:32,norm],relu,pool:2,"
                                              "res[conv:32,norm,relu,conv:32,norm],relu,gap"}}},
                        {"methods", {"bn", "ln"}}, {"batchSize", 64}, {"steps", 2}, {"evalInterval", 2}}},
      {"residual mlp", {{"methods", {"bn", "gn"}},
                        {"model", {{"layers", "linear:512,norm,relu,res[linear:512,norm,relu,linear:512,norm],relu,"
                                              "res[linear:512,norm,tanh]"}}},
                        {"optimizer", {{"kind", "adam"}, {"lr", 0.001}}},
                        {"batchSize", 256}, {"steps", 2}, {"evalInterval", 2}}},
  };
  const std::vector<uint8_t> digits = read_digits();
  for (const Case& c : cases) {
    const normlab::RunConfig rc = config(c.config);
    const double before = allocated_bytes();
    normlab::Runner runner(rc, rc.dataset.name == "digits" ? digits : std::vector<uint8_t>{});
    runner.step(2);  // training and evaluation buffers have reached their sizes
    const double used = allocated_bytes() - before;
    const json sizes = runner.result()["data"];
    const normlab::MemoryEstimate e = normlab::estimate_memory(rc, runner.sample_shape(), runner.classes(),
                                                               sizes["train"], sizes["test"]);
    std::printf("[ memory   ] %s: estimate %.1f MiB, used %.1f MiB (%.2fx)\n", c.name, e.total() / 1048576,
                used / 1048576, e.total() / used);
    EXPECT_GE(e.total(), used) << c.name << ": estimate " << e.total() << ", used " << used;
    EXPECT_LE(e.total(), 1.5 * used) << c.name << ": estimate " << e.total() << ", used " << used;
  }
}

TEST(Runner, RefusesARunThatExceedsTheMemoryLimitUpFront) {
  const normlab::RunConfig c = config({{"methods", {"bn", "ln"}}, {"model", {{"hidden", {4096, 4096, 4096}}}},
                                       {"optimizer", {{"kind", "adam"}, {"lr", 0.001}}}});
  // Parameters by hand: 2->4096, 4096->4096 twice, 4096->2 Linear layers with biases, and a
  // normalization layer's gamma and beta (2 x 4096) per block: 33,607,682 floats, kept as value,
  // grad and Adam's two moments (16 bytes each) for 2 methods: 1,075,445,824 bytes = 1025.6 MiB.
  const double before = allocated_bytes();
  EXPECT_NORMLAB_ERROR(normlab::Runner(c, {}, 64.0 * 1048576),
                       AllOf(HasSubstr("config: this run needs about "), HasSubstr("parameters 1026,"),
                             HasSubstr("more than the 64 MiB of memory available")));
  // Refused before any model was built: nothing large was allocated on the way.
  EXPECT_LT(allocated_bytes() - before, 4.0 * 1048576);
  // The same run with room enough is accepted.
  EXPECT_NO_THROW(normlab::Runner(config({{"methods", {"bn"}}}), {}, 64.0 * 1048576));
}

}  // namespace
}  // namespace normlab_test
