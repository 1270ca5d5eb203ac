#include "runner_handle.h"

#include <malloc.h>

#include <emscripten/heap.h>
#include <new>
#include <nlohmann/json.hpp>
#include <vector>

#include "guard.h"
#include "normlab/core/error.h"

using emscripten::typed_memory_view;
using emscripten::val;

namespace normlab::wasm {

namespace {

int g_live = 0;

// What the heap can still grow to hold: its limit less what is in use now.
double available_memory() {
  const double used = static_cast<double>(mallinfo().uordblks);
  return static_cast<double>(emscripten_get_heap_max()) - used;
}

// The length of a typed array, or 0 for undefined / null.
size_t length_of(const val& array) {
  return array.isUndefined() || array.isNull() ? 0 : array["length"].as<size_t>();
}

// Labels copied from an Int32Array.
std::vector<int32_t> read_labels(const val& labels) {
  std::vector<int32_t> out(length_of(labels));
  if (!out.empty()) val(typed_memory_view(out.size(), out.data())).call<void>("set", labels);
  return out;
}

// n examples of `sample` shape copied from a Float32Array into a data set's x.
Tensor read_examples(const val& x, int64_t n, const Shape& sample, const std::string& who) {
  const int64_t per = numel(sample);
  const size_t len = length_of(x);
  if (static_cast<int64_t>(len) != n * per) {
    fail(who, " has ", len, " values, but ", n, " labels of examples of shape ", to_string(sample), " need ",
         n * per);
  }
  Shape shape{n};
  shape.insert(shape.end(), sample.begin(), sample.end());
  Tensor out(shape);
  if (len > 0) val(typed_memory_view(len, out.ptr())).call<void>("set", x);
  return out;
}

}  // namespace

RunnerHandle::RunnerHandle() { ++g_live; }
RunnerHandle::~RunnerHandle() { --g_live; }
int RunnerHandle::live_count() { return g_live; }

val RunnerHandle::create(const std::string& config_json, const val& data) {
  return guarded("runner", ErrorForm::kObject, [&] {
    const nlohmann::json json = nlohmann::json::parse(config_json, nullptr, false);
    if (json.is_discarded()) fail("config: not valid JSON");
    std::vector<uint8_t> bytes;
    if (!data.isUndefined() && !data.isNull()) {
      const size_t n = data["length"].as<size_t>();
      bytes.resize(n);
      val(typed_memory_view(n, bytes.data())).call<void>("set", data);
    }
    const RunConfig config = run_config_from_json(json);
    runner_ = std::make_unique<Runner>(config, bytes, available_memory());
    return val(run_config_to_json(config).dump());
  });
}

val RunnerHandle::create_with_data(const std::string& config_json, const val& x, const val& labels,
                                   const val& shape, const val& test_x, const val& test_labels,
                                   const val& class_names) {
  return guarded("runner", ErrorForm::kObject, [&] {
    const nlohmann::json json = nlohmann::json::parse(config_json, nullptr, false);
    if (json.is_discarded()) fail("config: not valid JSON");
    const RunConfig config = run_config_from_json(json);
    const DatasetSpec& d = config.dataset;
    if (!d.user()) fail("config: examples were given, so dataset.source must say how they were read");
    std::vector<double> dims;
    for (size_t i = 0, n = length_of(shape); i < n; ++i) dims.push_back(shape[i].as<double>());
    const Shape sample = shape_from_doubles(dims, d.name + ": shape", 1);
    Dataset train, test;
    train.labels = read_labels(labels);
    test.labels = read_labels(test_labels);
    for (size_t i = 0, n = length_of(class_names); i < n; ++i) {
      train.class_names.push_back(class_names[i].as<std::string>());
    }
    train.num_classes = test.num_classes = static_cast<int32_t>(train.class_names.size());
    const int64_t n = static_cast<int64_t>(train.labels.size());
    if (test.labels.empty() && length_of(test_x) > 0) fail(d.name, ": testX was given without testLabels");
    const int64_t n_test = test.labels.empty() ? held_out(n, d.test_fraction, d.name) : test.size();
    // The up-front refusal, before the examples are copied into the module.
    const double available = available_memory();
    check_memory(estimate_memory(config, sample, train.num_classes, test.labels.empty() ? n - n_test : n, n_test),
                 config, available);
    train.x = read_examples(x, n, sample, d.name + ": x");
    if (!test.labels.empty()) test.x = read_examples(test_x, test.size(), sample, d.name + ": testX");
    runner_ = std::make_unique<Runner>(config, std::move(train), std::move(test), available);
    return val(run_config_to_json(runner_->config()).dump());
  });
}

val RunnerHandle::step(int n) {
  return guarded("runner", ErrorForm::kObject, [&] {
    if (n < 1) fail("runner: step count must be >= 1, got ", n);
    runner_->step(n);
    return val(runner_->take_events().dump());
  });
}

val RunnerHandle::result() const {
  return guarded("runner", ErrorForm::kObject, [&] { return val(runner_->result().dump()); });
}

val RunnerHandle::timing() const {
  return guarded("runner", ErrorForm::kObject, [&] { return val(runner_->timing().dump()); });
}

std::vector<float> RunnerHandle::read_samples(const val& x, const char* call) const {
  const size_t len = x["length"].as<size_t>();
  const int64_t per = numel(runner_->sample_shape());
  if (len == 0 || len % static_cast<size_t>(per) != 0) {
    fail("runner: ", call, " needs a multiple of ", per, " values (samples of shape ",
         to_string(runner_->sample_shape()), "), got ", len);
  }
  std::vector<float> input(len);
  val(typed_memory_view(len, input.data())).call<void>("set", x);
  return input;
}

int64_t RunnerHandle::samples_in(const std::vector<float>& values) const {
  return static_cast<int64_t>(values.size()) / numel(runner_->sample_shape());
}

val RunnerHandle::adapt_batch_norm(const std::string& id, const val& x) {
  return guarded("runner", ErrorForm::kObject, [&] {
    const std::vector<float> input = read_samples(x, "adaptBatchNorm");
    return val(runner_->adapt_batch_norm(id, input.data(), samples_in(input)));
  });
}

val RunnerHandle::samples(const std::string& which, int max) const {
  return guarded("runner", ErrorForm::kObject, [&] {
    std::vector<float> x;
    std::vector<int32_t> labels;
    runner_->samples(which, max, x, labels);
    val out = val::object();
    out.set("x", val(typed_memory_view(x.size(), x.data())).call<val>("slice"));
    out.set("labels", val(typed_memory_view(labels.size(), labels.data())).call<val>("slice"));
    return out;
  });
}

val RunnerHandle::predict(const std::string& id, const val& x, bool folded) {
  return guarded("runner", ErrorForm::kObject, [&] {
    const std::vector<float> input = read_samples(x, "predict");
    const std::vector<float> probs = runner_->predict(id, input.data(), samples_in(input), folded);
    return val(typed_memory_view(probs.size(), probs.data())).call<val>("slice");
  });
}

val RunnerHandle::fold(const std::string& id) {
  return guarded("runner", ErrorForm::kObject, [&] { return val(runner_->fold(id).dump()); });
}

val RunnerHandle::data_info() const {
  val out = val::object();
  val shape = val::array();
  for (int64_t d : runner_->sample_shape()) shape.call<void>("push", static_cast<double>(d));
  out.set("sampleShape", shape);
  out.set("classes", runner_->classes());
  if (!runner_->class_names().empty()) {
    val names = val::array();
    for (const std::string& name : runner_->class_names()) names.call<void>("push", name);
    out.set("classNames", names);
  }
  return out;
}

int RunnerHandle::steps_done() const { return static_cast<int>(runner_->steps_done()); }
bool RunnerHandle::done() const { return runner_->done(); }

}  // namespace normlab::wasm
