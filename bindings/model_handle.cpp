#include "model_handle.h"

#include <new>
#include <vector>

#include <nlohmann/json.hpp>

#include "guard.h"
#include "normlab/core/error.h"

using emscripten::typed_memory_view;
using emscripten::val;

namespace normlab::wasm {

namespace {

int g_live = 0;

// A copy of a typed array (Float32Array into float, Int32Array into int32_t).
template <typename T>
std::vector<T> copy_in(const val& array) {
  std::vector<T> out(array["length"].as<size_t>());
  val(typed_memory_view(out.size(), out.data())).call<void>("set", array);
  return out;
}

val copy_out(const std::vector<float>& v) {
  return val(typed_memory_view(v.size(), v.data())).call<val>("slice");
}

}  // namespace

ModelHandle::ModelHandle() { ++g_live; }
ModelHandle::~ModelHandle() { --g_live; }
int ModelHandle::live_count() { return g_live; }

val ModelHandle::create(const std::string& config_json) {
  return guarded("model", ErrorForm::kObject, [&] {
    const nlohmann::json json = nlohmann::json::parse(config_json, nullptr, false);
    if (json.is_discarded()) fail("model: options are not valid JSON");
    trainer_ = std::make_unique<Trainer>(trainer_config_from_json(json));
    size_t parameters = 0;
    for (Param* p : trainer_->model().parameters()) parameters += p->value.size();
    return val(nlohmann::json{{"summary", trainer_->model().summary()}, {"parameters", parameters}}.dump());
  });
}

val ModelHandle::fold_of(ModelHandle& source) {
  return guarded("model", ErrorForm::kObject, [&] {
    if (!source.trainer_) fail("fold: the model has no network");
    nlohmann::json report;
    trainer_ = source.trainer_->folded(&report);
    report["summary"] = trainer_->model().summary();
    return val(report.dump());
  });
}

val ModelHandle::fit_begin(const val& x, const val& labels, double epochs, double batch_size) {
  return guarded("model", ErrorForm::kObject, [&] {
    const std::vector<float> xs = copy_in<float>(x);
    const std::vector<int32_t> ls = copy_in<int32_t>(labels);
    const int64_t steps = trainer_->begin_fit(xs.data(), static_cast<int64_t>(xs.size()), ls.data(),
                                              static_cast<int64_t>(ls.size()), static_cast<int64_t>(epochs),
                                              static_cast<int64_t>(batch_size));
    return val(static_cast<double>(steps));
  });
}

val ModelHandle::fit_step() {
  return guarded("model", ErrorForm::kObject, [&] { return val(trainer_->fit_step()); });
}

void ModelHandle::fit_end() { trainer_->end_fit(); }

val ModelHandle::evaluate(const val& x, const val& labels) {
  return guarded("model", ErrorForm::kObject, [&] {
    const std::vector<float> xs = copy_in<float>(x);
    const std::vector<int32_t> ls = copy_in<int32_t>(labels);
    const auto [loss, accuracy] = trainer_->evaluate(xs.data(), static_cast<int64_t>(xs.size()), ls.data(),
                                                     static_cast<int64_t>(ls.size()));
    val out = val::object();
    out.set("loss", loss);
    out.set("accuracy", accuracy);
    return out;
  });
}

val ModelHandle::predict(const val& x) {
  return guarded("model", ErrorForm::kObject, [&] {
    const std::vector<float> xs = copy_in<float>(x);
    return copy_out(trainer_->predict(xs.data(), static_cast<int64_t>(xs.size())));
  });
}

val ModelHandle::get_weights() {
  return guarded("model", ErrorForm::kObject, [&] {
    val out = val::object();
    for (const auto& [name, values] : trainer_->weights()) out.set(name, copy_out(values));
    return out;
  });
}

val ModelHandle::set_weights(const val& weights) {
  return guarded("model", ErrorForm::kObject, [&] {
    const val names = val::global("Object").call<val>("keys", weights);
    std::vector<std::pair<std::string, std::vector<float>>> values;
    for (size_t i = 0, n = names["length"].as<size_t>(); i < n; ++i) {
      const std::string name = names[i].as<std::string>();
      values.emplace_back(name, copy_in<float>(weights[name]));
    }
    trainer_->set_weights(values);
    return val::undefined();
  });
}

int ModelHandle::steps_done() const { return trainer_ ? static_cast<int>(trainer_->steps_done()) : 0; }

}  // namespace normlab::wasm
