// PyTorch reference fixtures (tests/fixtures/<method>.json, written by tests/fixtures/generate.py):
// every case of every method file replays its training steps (forward, backward with dy, parameter
// gradients, running state after the step, Batch Renorm's r and d) and its inference forward.
//
// Tolerance: |got - want| <= 1e-5 + 1e-4*|want|, elementwise. The references are PyTorch float32
// results; ours are float32 too but with double statistics and another summation order, so a
// correct kernel differs by a few float32 ulps of the largest intermediate. Measured worst case
// over all cases: 7.6e-6 absolute (dx), 0.13 of the tolerance (NORMLAB_TEST_VERBOSE=1 prints every
// max diff). Any formula error is far larger: a missing backward term is O(1), a biased/unbiased
// running-variance mix-up is a factor M/(M-1) >= 1.014 here, a wrong momentum or eps placement
// (the eps=1e-3 cases with inputs of std 0.05) is percent-level.
#include <string>
#include <vector>

#include "test_util.h"

namespace normlab_test {
namespace {

constexpr double kAtol = 1e-5;
constexpr double kRtol = 1e-4;

// One fixture file per method of the layer API, <method>.json: a registered method without one is a
// failing test (FixtureFiles.EveryMethodHasCases and a load_error case), not a silent skip.
std::vector<std::string> method_files() {
  std::vector<std::string> files;
  for (const std::string& m : normlab::norm_methods()) files.push_back(m + ".json");
  return files;
}

struct FixtureCase {
  std::string file;
  std::string method;
  std::string name;
  json data;
  std::string load_error;  // non-empty: the file could not be read; the test reports it
};

std::vector<FixtureCase> all_cases() {
  std::vector<FixtureCase> cases;
  for (const std::string& file : method_files()) {
    try {
      const json doc = load_fixture(file);
      const std::string method = doc.at("method").get<std::string>();
      for (const json& c : doc.at("cases")) {
        cases.push_back({file, method, c.at("name").get<std::string>(), c, ""});
      }
    } catch (const std::exception& e) {
      cases.push_back({file, "", "load_error", json(), e.what()});
    }
  }
  return cases;
}

const std::vector<FixtureCase>& cases_once() {
  static const std::vector<FixtureCase> cases = all_cases();
  return cases;
}

std::string case_name(const ::testing::TestParamInfo<FixtureCase>& info) {
  const FixtureCase& c = info.param;
  std::string file = c.file.substr(0, c.file.find('.'));
  return sanitize_name(file + "_" + c.name);
}

bool is_affine(const json& options) { return !options.contains("affine") || options["affine"].get<bool>(); }

class Fixture : public ::testing::TestWithParam<FixtureCase> {
 protected:
  void SetUp() override {
    const FixtureCase& fc = GetParam();
    ASSERT_TRUE(fc.load_error.empty()) << fc.load_error;
  }
  const json& data() const { return GetParam().data; }
  Shape shape() const { return shape_of(data().at("shape")); }

  // A layer with the case's options, params and initial state.
  std::unique_ptr<NormLayer> make() const {
    auto layer = make_layer(GetParam().method, data().at("options"));
    if (data().contains("params")) set_params_from_json(*layer, data()["params"]);
    if (data().contains("initialState")) set_state_from_json(*layer, data()["initialState"]);
    return layer;
  }
  static void apply_limits(NormLayer& layer, const json& step) {
    if (step.contains("limits")) {
      as_brn(layer).set_limits(step["limits"].at("rMax").get<double>(),
                               step["limits"].at("dMax").get<double>());
    }
  }
};

// The whole case against PyTorch: every step's y, dx, dgamma, dbeta, state, r, d; then inference.
TEST_P(Fixture, MatchesPyTorch) {
  const FixtureCase& fc = GetParam();
  const json& c = data();
  const Shape s = shape();
  auto layer = make();
  // The case gives every parameter the layer has (gamma/beta when affine, and any others such as
  // Switchable Norm's meanWeight/varWeight), and each step the gradient "d<name>" of each.
  const json params = c.value("params", json::object());
  if (c.at("options").contains("affine")) {
    EXPECT_EQ(is_affine(c["options"]), params.contains("gamma"));
  }
  EXPECT_EQ(layer->params().size(), params.size());

  const auto& steps = c.at("steps");
  ASSERT_GE(steps.size(), 1u);
  for (size_t k = 0; k < steps.size(); ++k) {
    SCOPED_TRACE(fc.method + "/" + fc.name + " step " + std::to_string(k));
    const json& step = steps[k];
    apply_limits(*layer, step);
    const std::vector<float> x = floats(step.at("x")), dy = floats(step.at("dy"));
    ASSERT_EQ(static_cast<int64_t>(x.size()), numel(s));

    const std::vector<float> y = forward(*layer, x, s, /*training=*/true);
    EXPECT_CLOSE("y", y, floats(step.at("y")), kAtol, kRtol);
    EXPECT_EQ(layer->cached_shape(), s);

    const std::vector<float> dx = backward(*layer, dy);
    EXPECT_CLOSE("dx", dx, floats(step.at("dx")), kAtol, kRtol);

    for (const normlab::Param& p : layer->params()) {
      const std::string key = "d" + p.name;  // dgamma, dbeta, dmeanWeight, ...
      EXPECT_TRUE(step.contains(key)) << "fixture step has no " << key;
      if (step.contains(key)) {
        EXPECT_CLOSE(key, p.grad, floats(step[key]), kAtol, kRtol);
      }
    }

    if (step.contains("state")) {
      for (const auto& item : step["state"].items()) {
        const std::string& key = item.key();
        if (item.value().is_array()) {
          EXPECT_CLOSE(key, state_value(*layer, key), floats(item.value()), kAtol, kRtol);
        } else {
          // numBatchesTracked: an exact count.
          EXPECT_EQ(state_value(*layer, key), std::vector<float>{item.value().get<float>()}) << key;
        }
      }
    } else {
      // No reference state: the layer must not have any (BN without tracking, LN, GN, IN).
      EXPECT_TRUE(layer->state().empty()) << "layer has " << layer->state().size() << " state buffers";
    }
    // PyTorch counts batches whatever the momentum; the fixture only records it for momentum=null.
    if (const normlab::StateBuffer* t = find_state(*layer, "numBatchesTracked")) {
      EXPECT_EQ(t->value, std::vector<float>{static_cast<float>(k + 1)});
    }

    if (step.contains("r")) {
      const normlab::BatchRenorm& brn = as_brn(*layer);
      EXPECT_CLOSE("r", brn.last_r(), floats(step["r"]), kAtol, kRtol);
      EXPECT_CLOSE("d", brn.last_d(), floats(step["d"]), kAtol, kRtol);
    }

    // Gradients are overwritten, not accumulated: a second backward gives the same numbers.
    const std::vector<float> dx2 = backward(*layer, dy);
    EXPECT_TRUE(check_identical("dx (second backward)", dx2, dx));
    for (const normlab::Param& p : layer->params()) {
      const std::string key = "d" + p.name;
      if (step.contains(key)) {
        EXPECT_CLOSE(key + " (second backward)", p.grad, floats(step[key]), kAtol, kRtol);
      }
    }
  }

  SCOPED_TRACE(fc.method + "/" + fc.name + " inference");
  const json& inf = c.at("inference");
  const std::vector<float> y = forward(*layer, floats(inf.at("x")), s, /*training=*/false);
  EXPECT_CLOSE("inference y", y, floats(inf.at("y")), kAtol, kRtol);
}

// forward with y == x and backward with dx == dy give exactly the numbers of separate buffers
// (same kernels, same order of operations), and leave the same params, grads and state.
TEST_P(Fixture, InPlaceMatchesOutOfPlace) {
  const json& c = data();
  const Shape s = shape();
  auto a = make();  // separate buffers
  auto b = make();  // in place
  const auto& steps = c.at("steps");
  for (size_t k = 0; k < steps.size(); ++k) {
    SCOPED_TRACE("step " + std::to_string(k));
    const json& step = steps[k];
    apply_limits(*a, step);
    apply_limits(*b, step);
    const std::vector<float> x = floats(step.at("x")), dy = floats(step.at("dy"));

    const std::vector<float> y = forward(*a, x, s, true);
    std::vector<float> buf = x;
    b->forward(buf.data(), s, true, buf.data());
    EXPECT_TRUE(check_identical("in-place y", buf, y));
    // ... and still the right numbers (not merely self-consistent).
    EXPECT_CLOSE("in-place y vs fixture", buf, floats(step.at("y")), kAtol, kRtol);

    const std::vector<float> dx = backward(*a, dy);
    std::vector<float> gbuf = dy;
    b->backward(gbuf.data(), gbuf.data());
    EXPECT_TRUE(check_identical("in-place dx", gbuf, dx));
    EXPECT_CLOSE("in-place dx vs fixture", gbuf, floats(step.at("dx")), kAtol, kRtol);

    ASSERT_EQ(a->params().size(), b->params().size());
    for (size_t i = 0; i < a->params().size(); ++i) {
      EXPECT_TRUE(check_identical("grad " + a->params()[i].name, b->params()[i].grad, a->params()[i].grad));
    }
    ASSERT_EQ(a->state().size(), b->state().size());
    for (size_t i = 0; i < a->state().size(); ++i) {
      EXPECT_TRUE(check_identical("state " + a->state()[i].name, b->state()[i].value, a->state()[i].value));
    }
  }
  const std::vector<float> xi = floats(c.at("inference").at("x"));
  const std::vector<float> y = forward(*a, xi, s, false);
  std::vector<float> buf = xi;
  b->forward(buf.data(), s, false, buf.data());
  EXPECT_TRUE(check_identical("in-place inference y", buf, y));
}

// An inference forward between a training forward and its backward neither changes the running
// state nor the cache backward uses (BN without running stats computes batch statistics in
// inference too, into its own buffers).
TEST_P(Fixture, InferenceForwardKeepsTrainingCache) {
  const json& c = data();
  const Shape s = shape();
  auto layer = make();
  const auto& steps = c.at("steps");
  const std::vector<float> other = floats(c.at("inference").at("x"));
  for (size_t k = 0; k < steps.size(); ++k) {
    SCOPED_TRACE("step " + std::to_string(k));
    const json& step = steps[k];
    apply_limits(*layer, step);
    forward(*layer, floats(step.at("x")), s, true);
    forward(*layer, other, s, false);
    EXPECT_EQ(layer->cached_shape(), s);
    EXPECT_CLOSE("dx", backward(*layer, floats(step.at("dy"))), floats(step.at("dx")), kAtol, kRtol);
    if (step.contains("dgamma")) {
      EXPECT_CLOSE("dgamma", param_grad(*layer, "gamma"), floats(step["dgamma"]), kAtol, kRtol);
    }
    if (step.contains("state")) {
      for (const auto& item : step["state"].items()) {
        if (item.value().is_array()) {
          EXPECT_CLOSE(item.key(), state_value(*layer, item.key()), floats(item.value()), kAtol, kRtol);
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(PyTorch, Fixture, ::testing::ValuesIn(cases_once()), case_name);

// Guards against a vacuous pass: every method file is present and has the cases the generator
// writes (a truncated or regenerated-without-cases file would otherwise just run fewer tests).
TEST(FixtureFiles, EveryMethodHasCases) {
  size_t total = 0;
  for (const std::string& file : method_files()) {
    SCOPED_TRACE(file);
    const json doc = load_fixture(file);
    const std::string method = doc.at("method").get<std::string>();
    EXPECT_EQ(file, method + ".json");
    EXPECT_GE(doc.at("cases").size(), 4u);
    total += doc.at("cases").size();
    for (const json& c : doc["cases"]) {
      EXPECT_GE(c.at("steps").size(), 3u) << c.at("name");
      // The layer API must accept the generator's options as they are.
      EXPECT_NO_THROW(make_layer(method, c.at("options"))) << c.at("name");
    }
  }
  EXPECT_EQ(total, cases_once().size());
  EXPECT_GE(total, 29u);
}

}  // namespace
}  // namespace normlab_test
