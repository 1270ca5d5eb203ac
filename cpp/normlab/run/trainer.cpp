#include "normlab/run/trainer.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "normlab/core/error.h"
#include "normlab/core/options.h"
#include "normlab/nn/fold.h"
#include "normlab/nn/loss.h"
#include "normlab/nn/residual.h"
#include "normlab/norm/registry.h"
#include "normlab/run/evaluate.h"

namespace normlab {

namespace {

// Inference forwards run in the runner's evaluation batches (bounded activation memory).
constexpr int64_t kChunk = detail::kEvalBatch;

// A weight of the model, as weights() names it, and where its values live.
struct WeightRef {
  std::string name;
  Param* param = nullptr;        // a parameter, or
  NormLayer* norm = nullptr;     // a normalization layer's running-state buffer `state`
  std::string state;
};

void collect_weights(Module& m, const std::string& prefix, std::vector<WeightRef>& out) {
  if (auto* res = dynamic_cast<Residual*>(&m)) {
    for (size_t i = 0; i < res->size(); ++i) collect_weights(res->layer(i), prefix + "." + std::to_string(i), out);
    return;
  }
  for (Param* p : m.parameters()) out.push_back({prefix + "." + p->name, p, nullptr, ""});
  if (auto* norm = dynamic_cast<NormModule*>(&m)) {
    for (const StateBuffer& b : norm->layer().state()) out.push_back({prefix + "." + b.name, nullptr, &norm->layer(), b.name});
  }
}

std::vector<WeightRef> weight_refs(Model& model) {
  std::vector<WeightRef> out;
  for (size_t i = 0; i < model.size(); ++i) collect_weights(model.layer(i), std::to_string(i), out);
  return out;
}

const std::vector<float>& values_of(const WeightRef& w) {
  if (w.param) return w.param->value;
  for (const StateBuffer& b : w.norm->state()) {
    if (b.name == w.state) return b.value;
  }
  fail("model: no state buffer '", w.name, "'");
}

void assign(const WeightRef& w, const std::vector<float>& v) {
  if (w.param) {
    w.param->value = v;
  } else {
    w.norm->set_state(w.state, v.data(), v.size());
  }
}

// Whether a norm slot receives flat features [N,C] (one value per channel in a batch of one).
bool flat_norm_slot(const ModelSpec& model, const Shape& input) {
  for (const Shape& slot : norm_slot_shapes(model, input)) {
    if (slot.size() == 1) return true;
  }
  return false;
}

}  // namespace

TrainerConfig trainer_config_from_json(const nlohmann::json& json) {
  OptionReader r(json, "model", {"input", "layers", "classes", "norm", "optimizer", "seed"});
  TrainerConfig c;
  if (!r.has("input")) fail("model: input is required: one sample's shape, [F] or [C, H, W]");
  const nlohmann::json& input = json.at("input");
  if (!input.is_array() || (input.size() != 1 && input.size() != 3)) {
    fail("model: input must be one sample's shape, [F] or [C, H, W], got ", input.dump());
  }
  for (const nlohmann::json& d : input) {
    if (!d.is_number() || d.get<double>() != std::floor(d.get<double>()) || d.get<double>() < 1 ||
        d.get<double>() > 65536) {
      fail("model: input dimensions must be whole numbers in [1, 65536], got ", input.dump());
    }
    c.input.push_back(d.get<int64_t>());
  }
  if (numel(c.input) > (int64_t{1} << 24)) fail("model: input ", to_string(c.input), " has more than 2^24 values per sample");
  if (!r.has("layers")) fail("model: layers is required, e.g. \"linear:64,norm,relu\" or [{ type: 'linear', units: 64 }, ...]");
  c.model.kind = "layers";
  c.model.layers = layers_from_json(json.at("layers"));
  if (!r.has("classes")) fail("model: classes is required (the number of classes, >= 2)");
  const int64_t classes = r.integer("classes");
  if (classes < 2 || classes > 4096) fail("model: classes must be in [2, 4096], got ", classes);
  c.classes = static_cast<int32_t>(classes);
  if (r.has("norm")) {
    const nlohmann::json& norm = json.at("norm");
    std::string name;
    if (norm.is_string()) {
      name = norm.get<std::string>();
    } else if (norm.is_object()) {
      OptionReader nr(norm, "model: norm", {"method", "options", "label", "id"});
      if (!nr.has("method") || !norm.at("method").is_string()) fail("model: norm.method must be a method name, e.g. 'batchnorm'");
      name = norm.at("method").get<std::string>();
      if (nr.has("options")) c.options = norm.at("options");
      if (!c.options.is_object()) fail("model: norm.options must be an object, got ", c.options.dump());
    } else {
      fail("model: norm must be a method name or { method, options }, got ", norm.dump());
    }
    const std::string method = canonical_method(name);
    c.method = method_info(method).baseline ? "" : method;
  }
  if (r.has("optimizer")) c.optimizer = optimizer_options_from_json(json.at("optimizer"));
  if (r.has("seed")) {
    const int64_t seed = r.integer("seed");
    if (seed < 0 || seed > (int64_t{1} << 53)) fail("model: seed must be an integer in [0, 2^53], got ", seed);
    c.seed = static_cast<uint64_t>(seed);
  }
  return c;
}

Trainer::Trainer(const TrainerConfig& config)
    : config_(config),
      model_(build_model(config.model, config.input, config.classes, config.method, config.options,
                         Rng(config.seed).fork(kInitStream))),
      optimizer_(std::make_unique<Optimizer>(config.optimizer, model_.parameters())),
      order_(Rng(config.seed).fork(kOrderStream)) {}

Trainer::Trainer(const TrainerConfig& config, Model model)
    : config_(config), model_(std::move(model)), order_(Rng(config.seed).fork(kOrderStream)) {}

int64_t Trainer::samples(const char* call, const float* x, int64_t n_values) const {
  const int64_t per = numel(config_.input);
  if (n_values < 1) fail(call, ": x is empty (it needs whole samples of ", to_string(config_.input), ")");
  if (n_values % per != 0) {
    fail(call, ": x has ", n_values, " values, not a whole number of samples of input ", to_string(config_.input),
         " (", per, " values each)");
  }
  for (int64_t i = 0; i < n_values; ++i) {
    if (!std::isfinite(x[i])) {
      fail(call, ": x[", i, "] (sample ", i / per, ", value ", i % per, ") is ", std::isnan(x[i]) ? "NaN" : "infinite");
    }
  }
  return n_values / per;
}

void Trainer::check_labels(const char* call, const int32_t* labels, int64_t n_labels, int64_t n) const {
  if (n_labels != n) fail(call, ": ", n_labels, " labels for ", n, " samples (one label per sample)");
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= config_.classes) {
      fail(call, ": labels[", i, "] is ", labels[i], ", outside the ", config_.classes, " classes [0, ",
           config_.classes - 1, "]");
    }
  }
}

int64_t Trainer::begin_fit(const float* x, int64_t n_values, const int32_t* labels, int64_t n_labels,
                           int64_t epochs, int64_t batch_size) {
  if (!optimizer_) fail("fit: this model is folded, for inference only (fit the model it was folded from)");
  const int64_t n = samples("fit", x, n_values);
  check_labels("fit", labels, n_labels, n);
  if (epochs < 1 || epochs > 1000000) fail("fit: epochs must be an integer in [1, 1000000], got ", epochs);
  if (batch_size < 1 || batch_size > n) {
    fail("fit: batchSize must be an integer in [1, ", n, "] (the number of samples), got ", batch_size);
  }
  const MethodInfo& info = method_info(config_.method.empty() ? "none" : config_.method);
  if (info.uses_batch_statistics && batch_size == 1 && flat_norm_slot(config_.model, config_.input)) {
    fail("fit: ", config_.method, " needs batchSize >= 2 with a norm slot on flat features (with one example "
         "per batch, each channel has a single value and no batch statistics); use layernorm or groupnorm for batch size 1");
  }
  Shape shape = config_.input;
  shape.insert(shape.begin(), n);
  fit_data_.name = "fit";
  fit_data_.x = Tensor(shape);
  std::copy(x, x + n_values, fit_data_.x.data.begin());
  fit_data_.labels.assign(labels, labels + n);
  fit_data_.num_classes = config_.classes;
  // The runner's order seed (runner.cpp): two draws of the order stream.
  const uint64_t order_seed = (static_cast<uint64_t>(order_.next_u32()) << 32) | order_.next_u32();
  sampler_ = std::make_unique<BatchSampler>(fit_data_, batch_size, 0, order_seed);
  fit_total_ = epochs * (n / batch_size);
  fit_done_ = 0;
  return fit_total_;
}

double Trainer::fit_step() {
  if (!sampler_ || fit_done_ >= fit_total_) fail("fit: no fit is under way");
  const std::vector<int64_t> idx = sampler_->next();
  gather(fit_data_, idx, batch_x_, batch_labels_);
  // As the runner's step: a diverging forward must not leave NaN in the running statistics.
  const detail::NormStates before = detail::snapshot(model_);
  const Tensor& logits = model_.forward(batch_x_, true);
  const int64_t N = logits.shape[0], K = config_.classes;
  dlogits_.resize(logits.shape);
  const double loss = softmax_cross_entropy(dlogits_.ptr(), nullptr, logits.ptr(), batch_labels_.data(), N, K);
  if (!std::isfinite(loss)) {
    detail::restore(model_, before);
    const int64_t at = steps_;
    end_fit();
    fail("fit: training diverged at step ", at, " (the loss is ", std::isnan(loss) ? "NaN" : "infinite",
         "); lower the learning rate");
  }
  model_.backward(dlogits_);
  optimizer_->step(config_.optimizer.lr);
  ++fit_done_;
  ++steps_;
  if (fit_done_ == fit_total_) end_fit();
  return loss;
}

void Trainer::end_fit() {
  sampler_.reset();
  fit_data_ = Dataset();
  fit_total_ = fit_done_ = 0;
}

std::pair<double, double> Trainer::evaluate(const float* x, int64_t n_values, const int32_t* labels, int64_t n_labels) {
  const int64_t n = samples("evaluate", x, n_values);
  check_labels("evaluate", labels, n_labels, n);
  const int64_t per = numel(config_.input);
  double loss = 0;
  int64_t correct = 0;
  for (int64_t i = 0; i < n; i += kChunk) {
    const int64_t m = std::min(kChunk, n - i);
    Shape shape = config_.input;
    shape.insert(shape.begin(), m);
    Tensor chunk(shape);
    std::copy(x + i * per, x + (i + m) * per, chunk.data.begin());
    const Tensor& logits = model_.forward(chunk, false);
    loss += softmax_cross_entropy(nullptr, nullptr, logits.ptr(), labels + i, m, config_.classes) * m;
    correct += count_correct(logits.ptr(), labels + i, m, config_.classes);
  }
  return {loss / n, static_cast<double>(correct) / n};
}

std::vector<float> Trainer::predict(const float* x, int64_t n_values) {
  const int64_t n = samples("predict", x, n_values);
  const int64_t per = numel(config_.input), K = config_.classes;
  std::vector<float> probs(static_cast<size_t>(n * K));
  for (int64_t i = 0; i < n; i += kChunk) {
    const int64_t m = std::min(kChunk, n - i);
    Shape shape = config_.input;
    shape.insert(shape.begin(), m);
    Tensor chunk(shape);
    std::copy(x + i * per, x + (i + m) * per, chunk.data.begin());
    const Tensor& logits = model_.forward(chunk, false);
    softmax(probs.data() + i * K, logits.ptr(), m, K);
  }
  return probs;
}

std::vector<std::pair<std::string, std::vector<float>>> Trainer::weights() {
  std::vector<std::pair<std::string, std::vector<float>>> out;
  for (const WeightRef& w : weight_refs(model_)) out.emplace_back(w.name, values_of(w));
  return out;
}

void Trainer::set_weights(const std::vector<std::pair<std::string, std::vector<float>>>& values) {
  const std::vector<WeightRef> refs = weight_refs(model_);
  std::map<std::string, const WeightRef*> by_name;
  for (const WeightRef& w : refs) by_name[w.name] = &w;
  std::map<std::string, const std::vector<float>*> given;
  for (const auto& [name, v] : values) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      std::string known;
      for (const WeightRef& w : refs) known += (known.empty() ? "" : ", ") + w.name;
      fail("setWeights: unknown weight '", name, "' (this model's weights: ", known, ")");
    }
    if (!given.emplace(name, &v).second) fail("setWeights: '", name, "' is given twice");
    const size_t want = values_of(*it->second).size();
    if (v.size() != want) fail("setWeights: '", name, "' has ", v.size(), " values, the model's has ", want);
    for (size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) fail("setWeights: '", name, "'[", i, "] is ", std::isnan(v[i]) ? "NaN" : "infinite");
    }
  }
  std::string missing;
  for (const WeightRef& w : refs) {
    if (!given.count(w.name)) missing += (missing.empty() ? "" : ", ") + w.name;
  }
  if (!missing.empty()) fail("setWeights: missing ", missing, " (every weight of getWeights() is needed)");
  // A state buffer may still refuse its values (e.g. a negative running variance): put every
  // weight back as it was, so a refused call changes nothing.
  std::vector<std::vector<float>> old;
  for (const WeightRef& w : refs) old.push_back(values_of(w));
  try {
    for (const WeightRef& w : refs) assign(w, *given.at(w.name));
  } catch (const Error& e) {
    for (size_t i = 0; i < refs.size(); ++i) assign(refs[i], old[i]);
    fail("setWeights: ", e.what());
  }
}

std::unique_ptr<Trainer> Trainer::folded(nlohmann::json* report) const {
  FoldResult f = fold_norms(model_);
  if (report) {
    nlohmann::json folded = nlohmann::json::array(), kept = nlohmann::json::array();
    for (const FoldEntry& e : f.folded) folded.push_back({{"layer", e.layer}, {"method", e.method}, {"into", e.note}});
    for (const FoldEntry& e : f.kept) kept.push_back({{"layer", e.layer}, {"method", e.method}, {"reason", e.note}});
    *report = {{"folded", folded}, {"kept", kept}};
  }
  return std::make_unique<Trainer>(config_, std::move(f.model));
}

}  // namespace normlab
