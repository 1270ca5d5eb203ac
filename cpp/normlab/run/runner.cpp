#include "normlab/run/runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "normlab/core/error.h"
#include "normlab/core/options.h"
#include "normlab/nn/fold.h"
#include "normlab/nn/loss.h"
#include "normlab/norm/batchrenorm.h"
#include "normlab/norm/generalizedbatchnorm.h"
#include "normlab/norm/registry.h"

namespace normlab {

namespace {

// Purposes of the generators forked from the run's seed (see Rng::fork).
enum : uint64_t { kDataStream = 1, kInitStream = 2, kOrderStream = 3, kProbeStream = 4, kShiftStream = 5 };

constexpr int64_t kProbeSize = 256;        // test examples whose activations are summarised
constexpr double kPercentiles[] = {2, 16, 50, 84, 98};  // about mean -+ 1 and 2 std for a Gaussian
constexpr int64_t kEvalBatch = 100;        // inference-mode evaluation batch (bounds its buffers)

// Rows [begin, begin + count) of a data set.
void slice(const Dataset& data, int64_t begin, int64_t count, Tensor& x, std::vector<int32_t>& labels) {
  const int64_t sample = data.x.numel() / data.x.shape[0];
  Shape shape = data.x.shape;
  shape[0] = count;
  x.resize(shape);
  std::copy(data.x.ptr() + begin * sample, data.x.ptr() + (begin + count) * sample, x.ptr());
  labels.assign(data.labels.begin() + begin, data.labels.begin() + begin + count);
}

// The running state of every normalization layer of a model, to put back after evaluations that
// must not move it (batch-statistics forwards, AdaBN).
using NormStates = std::vector<std::vector<StateBuffer>>;

NormStates snapshot(Model& model) {
  NormStates states;
  for (NormModule* norm : model.norms()) states.push_back(norm->layer().state());
  return states;
}

// Like snapshot(), into `states`, reusing its buffers (called every training step).
void snapshot_into(Model& model, NormStates& states) {
  auto norms = model.norms();
  states.resize(norms.size());
  for (size_t k = 0; k < norms.size(); ++k) states[k] = norms[k]->layer().state();
}

// The first normalization layer (0-based) whose running state holds a NaN or an infinity, or -1.
int64_t nonfinite_state(Model& model) {
  auto norms = model.norms();
  for (size_t k = 0; k < norms.size(); ++k) {
    for (const StateBuffer& b : norms[k]->layer().state()) {
      for (float v : b.value) {
        if (!std::isfinite(v)) return static_cast<int64_t>(k);
      }
    }
  }
  return -1;
}

void restore(Model& model, const NormStates& states) {
  auto norms = model.norms();
  for (size_t k = 0; k < norms.size(); ++k) {
    for (const StateBuffer& b : states[k]) norms[k]->layer().set_state(b.name, b.value.data(), b.value.size());
  }
}

// The data set's inputs moved to the target domain of `shift`.
Dataset shifted(const Dataset& data, const DomainShift& shift, Rng rng) {
  Dataset out = data;
  const float a = static_cast<float>(shift.amount);
  for (float& v : out.x.data) {
    if (shift.kind == "invert") {
      v += a * (1 - 2 * v);
    } else if (shift.kind == "shift") {
      v += a;
    } else if (shift.kind == "scale") {
      v *= a;
    } else {
      v += static_cast<float>(shift.amount * rng.normal());
    }
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

const std::string& text(const nlohmann::json& json, const char* who, const char* key) {
  const nlohmann::json& v = json.at(key);
  if (!v.is_string()) fail(who, ": ", key, " must be a string, got ", v.dump());
  return v.get_ref<const std::string&>();
}

std::string default_label(const std::string& method, const nlohmann::json& options) {
  return method == "none" ? "No normalization" : method_info(method).label_for(options);
}

MethodSpec method_spec_from_json(const nlohmann::json& json, size_t index) {
  MethodSpec m;
  if (json.is_string()) {
    m.method = canonical_method(json.get<std::string>());
  } else if (json.is_object()) {
    OptionReader r(json, "methods[" + std::to_string(index) + "]", {"method", "options", "label", "id"});
    if (!r.has("method")) fail("methods[", index, "]: method is required");
    m.method = canonical_method(text(json, "methods[]", "method"));
    if (r.has("options")) m.options = json.at("options");
    if (r.has("label")) m.label = text(json, "methods[]", "label");
    if (r.has("id")) m.id = text(json, "methods[]", "id");
  } else {
    fail("methods[", index, "] must be a method name or {method, options, label}, got ", json.dump());
  }
  if (m.options.is_null()) m.options = nlohmann::json::object();
  if (!m.options.is_object()) fail("methods[", index, "]: options must be an object");
  if (m.label.empty()) m.label = default_label(m.method, m.options);
  return m;
}

// Short id of a method for tables and result keys: its first alias, or its name.
std::string short_id(const std::string& method) {
  if (method == "none") return method;
  const MethodInfo& info = method_info(method);
  return info.aliases.empty() ? info.name : info.aliases.front();
}

// Value at percentile q (0..100) of sorted values, with linear interpolation (numpy's default).
double percentile(const std::vector<float>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double pos = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

// Whether a norm slot of the model receives flat features [N,C]: with a batch of one example, a
// single value per channel, so no batch statistics.
bool flat_norm_slot(const ModelSpec& model, const Shape& sample_shape) {
  for (const Shape& slot : norm_slot_shapes(model, sample_shape)) {
    if (slot.size() == 1) return true;
  }
  return false;
}

// Rounds to 7 significant digits for the JSON result (float32 precision; keeps files small).
double r7(double v) {
  if (!std::isfinite(v) || v == 0) return v;
  const double scale = std::pow(10.0, 6 - static_cast<int>(std::floor(std::log10(std::fabs(v)))));
  return std::round(v * scale) / scale;
}

}  // namespace

std::string canonical_method(const std::string& name) {
  if (name == "none") return name;
  if (const MethodInfo* m = find_method(name)) return m->name;
  std::string list = "none", alias_list;
  for (const MethodInfo* m : method_table()) {
    list += ", " + m->name;
    for (const std::string& alias : m->aliases) alias_list += (alias_list.empty() ? "" : ", ") + alias;
  }
  fail("unknown method '", name, "' (known: ", list, "; aliases ", alias_list, ")");
}

RunConfig run_config_from_json(const nlohmann::json& json) {
  OptionReader r(json, "config",
                 {"dataset", "model", "methods", "batchSize", "batching", "optimizer", "schedule",
                  "steps", "evalInterval", "seed", "renormSchedule", "domainShift", "preprocess"});
  RunConfig c;
  if (r.has("dataset")) {
    const nlohmann::json& d = json.at("dataset");
    OptionReader dr(d, "dataset", {"name", "noise", "trainSize", "testSize", "classes"});
    if (dr.has("name")) c.dataset.name = text(d, "dataset", "name");
    c.dataset.noise = dr.number("noise", c.dataset.noise);
    if (dr.has("trainSize")) c.dataset.train_size = dr.integer("trainSize");
    if (dr.has("testSize")) c.dataset.test_size = dr.integer("testSize");
    if (dr.has("classes")) c.dataset.classes = static_cast<int32_t>(dr.integer("classes"));
  }
  if (r.has("model")) c.model = model_spec_from_json(json.at("model"));
  if (!r.has("methods")) fail("config: methods is required (e.g. [\"bn\", \"brn\", \"ln\", \"gn\"])");
  const nlohmann::json& methods = json.at("methods");
  if (!methods.is_array() || methods.empty()) fail("config: methods must be a non-empty array");
  if (methods.size() > 12) fail("config: at most 12 methods, got ", methods.size());
  std::set<std::string> ids;
  for (size_t i = 0; i < methods.size(); ++i) {
    MethodSpec m = method_spec_from_json(methods[i], i);
    if (m.id.empty()) {
      m.id = short_id(m.method);
      for (int k = 2; ids.count(m.id); ++k) m.id = short_id(m.method) + "-" + std::to_string(k);
    }
    if (!ids.insert(m.id).second) fail("config: two methods have the id '", m.id, "'");
    c.methods.push_back(std::move(m));
  }
  if (r.has("batchSize")) c.batch_size = r.integer("batchSize");
  if (r.has("batching")) {
    const nlohmann::json& b = json.at("batching");
    const std::string& s = b.is_string() ? b.get_ref<const std::string&>() : std::string();
    if (s == "iid") {
      c.noniid_classes = 0;
    } else if (s.rfind("noniid:", 0) == 0 && s.size() > 7 &&
               s.find_first_not_of("0123456789", 7) == std::string::npos && s.size() < 10) {
      c.noniid_classes = std::stoi(s.substr(7));
    } else {
      fail("config: batching must be \"iid\" or \"noniid:K\" (K classes per batch), got ", b.dump());
    }
  }
  if (r.has("optimizer")) c.optimizer = optimizer_options_from_json(json.at("optimizer"));
  if (r.has("schedule")) c.schedule = schedule_options_from_json(json.at("schedule"));
  if (r.has("steps")) c.steps = r.integer("steps");
  if (r.has("evalInterval")) c.eval_interval = r.integer("evalInterval");
  if (r.has("seed")) {
    const int64_t seed = r.integer("seed");
    if (seed < 0) fail("config: seed must be an integer >= 0, got ", seed);
    c.seed = static_cast<uint64_t>(seed);
  }
  if (r.has("renormSchedule")) {
    const nlohmann::json& s = json.at("renormSchedule");
    if (s.is_boolean() && !s.get<bool>()) {
      c.renorm.enabled = false;
    } else {
      OptionReader sr(s, "renormSchedule", {"warmup", "rampEnd"});
      c.renorm.warmup = sr.number("warmup", c.renorm.warmup);
      c.renorm.ramp_end = sr.number("rampEnd", c.renorm.ramp_end);
      if (!(c.renorm.warmup >= 0 && c.renorm.warmup <= 1)) {
        fail("renormSchedule: warmup must be a fraction of the steps in [0, 1], got ", c.renorm.warmup);
      }
      if (!(c.renorm.ramp_end >= c.renorm.warmup && c.renorm.ramp_end <= 1)) {
        fail("renormSchedule: rampEnd must be in [warmup, 1], got ", c.renorm.ramp_end);
      }
    }
  }
  if (r.has("domainShift") && !json.at("domainShift").is_null()) {
    const nlohmann::json& d = json.at("domainShift");
    OptionReader dr(d, "domainShift", {"kind", "amount"});
    if (!dr.has("kind")) fail("domainShift: kind is required (invert, shift, scale, noise)");
    c.shift.kind = text(d, "domainShift", "kind");
    const std::string& k = c.shift.kind;
    if (k != "invert" && k != "shift" && k != "scale" && k != "noise") {
      fail("domainShift: unknown kind '", k, "' (known: invert, shift, scale, noise)");
    }
    c.shift.amount = dr.number("amount", k == "invert" ? 1.0 : k == "scale" ? 2.0 : 0.5);
    const double a = c.shift.amount;
    if (!std::isfinite(a)) fail("domainShift: amount must be a finite number, got ", a);
    if (k == "invert" && !(a >= 0 && a <= 1)) fail("domainShift: invert's amount must be in [0, 1], got ", a);
    if (k == "scale" && !(a > 0)) fail("domainShift: scale's amount must be > 0, got ", a);
    if (k == "noise" && !(a >= 0)) fail("domainShift: noise's amount must be >= 0, got ", a);
  }
  if (r.has("preprocess") && !json.at("preprocess").is_null()) {
    const Preprocessor p = preprocessor_from_json(json.at("preprocess"));  // validates
    c.preprocess = p.kind();
    c.preprocess_eps = p.eps();
  }
  if (c.batch_size < 1 || c.batch_size > 4096) fail("config: batchSize must be in [1, 4096], got ", c.batch_size);
  if (c.steps < 1 || c.steps > 10000000) fail("config: steps must be in [1, 10000000], got ", c.steps);
  if (!r.has("evalInterval")) c.eval_interval = std::max<int64_t>(1, c.steps / 20);
  if (c.eval_interval < 1) fail("config: evalInterval must be an integer >= 1, got ", c.eval_interval);
  return c;
}

nlohmann::json run_config_to_json(const RunConfig& c) {
  nlohmann::json methods = nlohmann::json::array();
  for (const MethodSpec& m : c.methods) {
    methods.push_back({{"id", m.id}, {"method", m.method}, {"options", m.options}, {"label", m.label}});
  }
  const OptimizerOptions& o = c.optimizer;
  nlohmann::json optimizer = {{"kind", o.kind}, {"lr", o.lr}, {"weightDecay", o.weight_decay}};
  if (o.kind == "sgd") {
    optimizer["momentum"] = o.momentum;
    optimizer["nesterov"] = o.nesterov;
  } else {
    optimizer["beta1"] = o.beta1;
    optimizer["beta2"] = o.beta2;
    optimizer["eps"] = o.eps;
  }
  // The image sets have a fixed size and classes: only the generated 2-D sets have the others.
  const bool images = c.dataset.name == "digits" || c.dataset.name == "mnist";
  nlohmann::json dataset = {{"name", c.dataset.name}, {"testSize", c.dataset.test_size}};
  if (!images) {
    dataset["noise"] = c.dataset.noise;
    dataset["trainSize"] = c.dataset.train_size;
    dataset["classes"] = c.dataset.classes;
  }
  return {
      {"dataset", dataset},
      {"model", model_spec_to_json(c.model)},
      {"methods", methods},
      {"batchSize", c.batch_size},
      {"batching", c.noniid_classes ? "noniid:" + std::to_string(c.noniid_classes) : "iid"},
      {"optimizer", optimizer},
      {"schedule", {{"kind", c.schedule.kind}, {"stepSize", c.schedule.step_size}, {"gamma", c.schedule.gamma},
                    {"minLr", c.schedule.min_lr}, {"warmup", c.schedule.warmup}}},
      {"steps", c.steps},
      {"evalInterval", c.eval_interval},
      {"seed", c.seed},
      {"domainShift", c.shift.kind.empty() ? nlohmann::json(nullptr)
                                           : nlohmann::json{{"kind", c.shift.kind}, {"amount", c.shift.amount}}},
      {"preprocess", c.preprocess.empty() ? nlohmann::json(nullptr)
                                          : nlohmann::json{{"kind", c.preprocess}, {"eps", c.preprocess_eps}}},
      {"renormSchedule", c.renorm.enabled ? nlohmann::json{{"warmup", c.renorm.warmup}, {"rampEnd", c.renorm.ramp_end}}
                                          : nlohmann::json(false)},
  };
}

struct Runner::Arm {
  MethodSpec spec;
  Model model;
  std::unique_ptr<Optimizer> optimizer;
  std::vector<size_t> probes;  // model layer indices whose input is a pre-normalization activation
  Tensor dlogits;
  // Records.
  std::vector<float> train_loss, train_accuracy;
  nlohmann::json evals = nlohmann::json::array();
  size_t reported_train = 0, reported_evals = 0;
  NormStates before_step;  // the running state before this step's forward, to undo a diverged one
  bool diverged = false;
  int64_t diverged_step = 0;
  std::string diverged_reason;
  double train_seconds = 0, eval_seconds = 0;
};

MemoryEstimate estimate_memory(const RunConfig& config, const Shape& sample_shape, int32_t classes,
                               int64_t train_size, int64_t test_size) {
  const double f = sizeof(float);
  const double sample = static_cast<double>(numel(sample_shape));
  MemoryEstimate m;
  // Train, test and the shifted target set (inputs and labels).
  const double sets = config.shift.kind.empty() ? 1 : 2;
  m.data = (static_cast<double>(train_size) + sets * static_cast<double>(test_size)) * (sample * f + 4);

  // The layers build_model makes: parameters, per-sample output sizes, conv column buffers.
  const ModelSize size = model_size(config.model, sample_shape, classes);
  const double widest = std::max(sample, size.widest);
  // Value and gradient, plus the optimizer's buffers: Adam's two moments, SGD's momentum.
  const OptimizerOptions& opt = config.optimizer;
  const double buffers = 2 + (opt.kind == "sgd" ? (opt.momentum > 0 ? 1 : 0) : 2);
  const double arms = static_cast<double>(config.methods.size());
  m.parameters = arms * size.parameters * buffers * f;
  // Each layer's input is kept by the model at the largest batch it sees (evaluation batches:
  // inference and activation probes; the evaluation's copy of the input besides). The training
  // batch (and the batch-statistics evaluation, at the same size) adds the batch input, each
  // layer's cache of its input and a per-element buffer of its own (a normalization layer's
  // normalized values, a max pool's argmax), and the two gradient buffers (and those of each
  // residual block); the conv column buffers are per sample.
  const double batch = static_cast<double>(config.batch_size);
  const double eval = std::max(batch, static_cast<double>(std::max(kEvalBatch, kProbeSize)));
  m.activations = arms * f *
                  (eval * (2 * sample + size.outputs) +
                   batch * (sample + 2 * size.outputs + 2 * widest + size.gradients) + size.scratch);
  // AdaBN on the shifted test set gathers one normalization layer's inputs for all of it at a time.
  if (!config.shift.kind.empty()) m.activations += static_cast<double>(test_size) * widest * f;
  return m;
}

Runner::Runner(const RunConfig& config, const std::vector<uint8_t>& data, double memory_limit)
    : config_(config) {
  const Rng root(config_.seed);
  const DatasetSpec& d = config_.dataset;
  if (d.name == "digits" || d.name == "mnist") {
    if (data.empty()) fail("runner: the ", d.name, " data set needs its data file's bytes");
    data_ = parse_digits_split(data.data(), data.size(), d.name, d.test_size, config_.seed);
  } else {
    Rng rng = root.fork(kDataStream);
    data_ = make_2d(d.name, d.train_size, d.test_size, d.noise, d.classes, rng);
  }
  if (!config_.shift.kind.empty()) target_ = shifted(data_.test, config_.shift, root.fork(kShiftStream));
  if (!config_.preprocess.empty()) {
    // Fitted on the training inputs only; test (and target) data get the same transform.
    // Kept for predict() and samples(), which speak the data set's own units.
    preprocessor_ = std::make_unique<Preprocessor>(config_.preprocess, config_.preprocess_eps);
    const int64_t f = data_.train.x.numel() / data_.train.x.shape[0];
    preprocessor_->fit(data_.train.x.ptr(), data_.train.x.shape[0], f);
    for (Dataset* d : {&data_.train, &data_.test, &target_}) {
      if (!d->labels.empty()) preprocessor_->transform(d->x.ptr(), d->x.ptr(), d->x.shape[0]);
    }
  }
  const int64_t n_train = data_.train.x.shape[0];
  if (config_.batch_size > n_train) {
    fail("config: batchSize ", config_.batch_size, " is larger than the training set (", n_train, ")");
  }
  if (memory_limit > 0) {
    const Shape sample(data_.train.x.shape.begin() + 1, data_.train.x.shape.end());
    const MemoryEstimate need = estimate_memory(config_, sample, data_.train.num_classes, n_train,
                                                data_.test.x.shape[0]);
    if (need.total() > memory_limit) {
      auto mib = [](double bytes) { return std::to_string(static_cast<int64_t>(std::ceil(bytes / 1048576.0))); };
      fail("config: this run needs about ", mib(need.total()), " MiB (data ", mib(need.data), ", parameters ",
           mib(need.parameters), ", activations ", mib(need.activations), " MiB for ", config_.methods.size(),
           " methods), more than the ", mib(memory_limit),
           " MiB of memory available; use fewer methods, a smaller model or a smaller batch");
    }
  }
  Rng order = root.fork(kOrderStream);
  const uint64_t order_seed = (static_cast<uint64_t>(order.next_u32()) << 32) | order.next_u32();
  sampler_ = std::make_unique<BatchSampler>(data_.train, config_.batch_size, config_.noniid_classes,
                                            order_seed);
  const Shape sample_shape(data_.train.x.shape.begin() + 1, data_.train.x.shape.end());
  for (const MethodSpec& spec : config_.methods) {
    auto arm = std::make_unique<Arm>();
    arm->spec = spec;
    const std::string method = spec.method == "none" ? "" : spec.method;
    arm->model = build_model(config_.model, sample_shape, data_.train.num_classes, method, spec.options,
                             root.fork(kInitStream));
    // One value per channel: batch statistics of a single example of an MLP are undefined.
    const bool batch_stats = spec.method != "none" && method_info(spec.method).uses_batch_statistics;
    if (batch_stats && config_.batch_size == 1 && flat_norm_slot(config_.model, sample_shape)) {
      fail("config: ", spec.method, " needs batchSize >= 2 with ",
           config_.model.kind == "layers" ? "a norm slot on flat features" : "an mlp",
           " (with one example per batch, each "
           "channel has a single value and no batch statistics); use layernorm or groupnorm for batch size 1");
    }
    for (size_t i = 0; i + 1 < arm->model.size(); ++i) {
      const std::string kind = arm->model.layer(i).kind();
      if (kind.rfind("linear", 0) == 0 || kind.rfind("conv2d", 0) == 0) arm->probes.push_back(i + 1);
    }
    arm->optimizer = std::make_unique<Optimizer>(config_.optimizer, arm->model.parameters());
    arms_.push_back(std::move(arm));
  }
}

Runner::~Runner() = default;

void Runner::apply_renorm_schedule(Arm& arm) const {
  if (!config_.renorm.enabled) return;
  const double t = static_cast<double>(step_) / static_cast<double>(config_.steps);
  const double w = config_.renorm.warmup, e = config_.renorm.ramp_end;
  const double p = t < w ? 0.0 : (e <= w ? 1.0 : std::min(1.0, (t - w) / (e - w)));
  for (NormModule* norm : arm.model.norms()) {
    if (auto* brn = dynamic_cast<BatchRenorm*>(&norm->layer())) {
      // The targets are the limits the layer was made with; the schedule moves toward them.
      brn->set_limits(1 + p * (brn->target_r_max() - 1), p * brn->target_d_max());
    }
  }
}

int64_t Runner::step(int64_t n) {
  int64_t taken = 0;
  const int64_t K = data_.train.num_classes;
  for (; taken < n && step_ < config_.steps; ++taken) {
    const std::vector<int64_t> idx = sampler_->next();
    gather(data_.train, idx, batch_x_, batch_labels_);
    const double lr = scheduled_lr(config_.schedule, config_.optimizer.lr, step_, config_.steps);
    for (auto& arm_ptr : arms_) {
      Arm& arm = *arm_ptr;
      if (arm.diverged) continue;
      const auto t0 = std::chrono::steady_clock::now();
      apply_renorm_schedule(arm);
      // A diverging forward (parameters already NaN or infinite) would write NaN into the running
      // statistics; they are put back to the last finite state, so inference and AdaBN never see it.
      snapshot_into(arm.model, arm.before_step);
      const Tensor& logits = arm.model.forward(batch_x_, true);
      const int64_t N = logits.shape[0];
      arm.dlogits.resize(logits.shape);
      const double loss = softmax_cross_entropy(arm.dlogits.ptr(), nullptr, logits.ptr(),
                                                batch_labels_.data(), N, K);
      const double acc = static_cast<double>(count_correct(logits.ptr(), batch_labels_.data(), N, K)) / N;
      const int64_t bad_state = std::isfinite(loss) ? nonfinite_state(arm.model) : -1;
      if (!std::isfinite(loss) || bad_state >= 0) {
        restore(arm.model, arm.before_step);
        arm.diverged = true;
        arm.diverged_step = step_;
        arm.diverged_reason = !std::isfinite(loss)
            ? "training loss is " + std::string(std::isnan(loss) ? "NaN" : "infinite")
            : "running statistics of normalization layer " + std::to_string(bad_state + 1) + " are not finite";
        continue;
      }
      arm.model.backward(arm.dlogits);
      arm.optimizer->step(lr);
      arm.train_loss.push_back(static_cast<float>(loss));
      arm.train_accuracy.push_back(static_cast<float>(acc));
      arm.train_seconds += seconds_since(t0);
    }
    ++step_;
    if (step_ % config_.eval_interval == 0 || step_ == config_.steps) {
      for (auto& arm : arms_) {
        if (!arm->diverged) evaluate(*arm);
      }
    }
  }
  return taken;
}

void Runner::evaluate(Arm& arm) {
  const auto t0 = std::chrono::steady_clock::now();
  const Dataset& test = data_.test;
  const int64_t n = test.x.shape[0];
  const int64_t K = test.num_classes;
  Tensor x;
  std::vector<int32_t> labels;
  std::vector<float> scratch;
  auto score = [&](const Tensor& logits, double& loss_sum, int64_t& correct) {
    const int64_t N = logits.shape[0];
    scratch.resize(static_cast<size_t>(logits.numel()));
    loss_sum += softmax_cross_entropy(scratch.data(), nullptr, logits.ptr(), labels.data(), N, K) * N;
    correct += count_correct(logits.ptr(), labels.data(), N, K);
  };

  // Inference mode: running statistics, the way the model would be deployed.
  const auto [test_loss, test_accuracy] = infer(arm, test);
  nlohmann::json e = {{"step", step_}, {"testLoss", r7(test_loss)}, {"testAccuracy", r7(test_accuracy)}};

  // Batch Renorm's corrections of the last training step, against the limits in force.
  nlohmann::json renorm = nlohmann::json::array();
  for (NormModule* norm : arm.model.norms()) {
    auto* brn = dynamic_cast<BatchRenorm*>(&norm->layer());
    if (brn == nullptr || brn->last_r().empty()) continue;
    auto stats = [](const std::vector<float>& v) {
      double lo = v[0], hi = v[0], sum = 0;
      for (float f : v) {
        lo = std::min<double>(lo, f);
        hi = std::max<double>(hi, f);
        sum += f;
      }
      return nlohmann::json{r7(lo), r7(sum / v.size()), r7(hi)};
    };
    renorm.push_back({{"r", stats(brn->last_r())}, {"d", stats(brn->last_d())},
                      {"rMax", r7(brn->options().r_max)}, {"dMax", r7(brn->options().d_max)}});
  }
  if (!renorm.empty()) e["renorm"] = renorm;

  // AdaBN at the end: target-domain accuracy before and after re-estimating the population
  // statistics on the (unlabeled) shifted test inputs, the paper's protocol; the model is restored.
  if (!target_.labels.empty() && step_ == config_.steps) {
    const NormStates before = snapshot(arm.model);
    const double accuracy = infer(arm, target_).second;
    adapt(arm, target_);
    const double adapted = infer(arm, target_).second;
    restore(arm.model, before);
    e["target"] = {{"accuracy", r7(accuracy)}, {"accuracyAdapted", r7(adapted)}};
  }

  // Batch statistics: test batches drawn the way training batches are (same size; i.i.d. or from k
  // classes, always the same batches), each normalized with its own statistics (training-mode
  // forward), without letting them move the running statistics.
  const NormStates saved = snapshot(arm.model);
  const int64_t B = config_.batch_size;
  const bool single = B == 1 && flat_norm_slot(config_.model, sample_shape());
  double bs_loss = 0;
  int64_t bs_correct = 0, bs_count = 0;
  if (!single && B <= n) {
    BatchSampler test_batches(test, B, config_.noniid_classes, config_.seed);
    for (int64_t b = 0; b < n / B; ++b) {
      gather(test, test_batches.next(), x, labels);
      score(arm.model.forward(x, true), bs_loss, bs_correct);
      bs_count += B;
    }
  }
  restore(arm.model, saved);
  if (bs_count > 0) {
    e["testLossBatchStats"] = r7(bs_loss / bs_count);
    e["testAccuracyBatchStats"] = r7(static_cast<double>(bs_correct) / bs_count);
  } else {
    e["testLossBatchStats"] = nullptr;
    e["testAccuracyBatchStats"] = nullptr;
  }

  // Pre-normalization activations of the probe examples (inference mode), channel 0 of each hidden
  // layer's output: percentiles as in the Batch Normalization paper's Figure 1.
  slice(test, 0, std::min(kProbeSize, n), x, labels);
  arm.model.forward(x, false);
  nlohmann::json activations = nlohmann::json::array();
  for (size_t i : arm.probes) {
    const Tensor& a = arm.model.activation(i);
    const int64_t N = a.shape[0], C = a.shape[1], S = a.numel() / (N * C);
    std::vector<float> v;
    for (int64_t s0 = 0; s0 < N; ++s0) {
      for (int64_t s = 0; s < S; ++s) v.push_back(a.data[static_cast<size_t>(s0 * C * S + s)]);
    }
    std::sort(v.begin(), v.end());
    nlohmann::json p = nlohmann::json::array();
    for (double q : kPercentiles) p.push_back(r7(percentile(v, q)));
    activations.push_back(p);
  }
  e["activations"] = activations;

  arm.evals.push_back(std::move(e));
  arm.eval_seconds += seconds_since(t0);
}

int64_t Runner::samples(const std::string& which, int64_t max, std::vector<float>& x,
                        std::vector<int32_t>& labels) const {
  if (which != "train" && which != "test") fail("runner: samples() takes 'train' or 'test', got '", which, "'");
  if (max < 1) fail("runner: samples() needs a count >= 1, got ", max);
  const Dataset& d = which == "train" ? data_.train : data_.test;
  const int64_t n = std::min(max, d.x.shape[0]);
  const int64_t per = d.x.numel() / d.x.shape[0];
  x.assign(d.x.ptr(), d.x.ptr() + n * per);
  if (preprocessor_) preprocessor_->inverse(x.data(), x.data(), n);
  labels.assign(d.labels.begin(), d.labels.begin() + n);
  return n;
}

Shape Runner::sample_shape() const {
  return Shape(data_.train.x.shape.begin() + 1, data_.train.x.shape.end());
}

Runner::Arm& Runner::arm(const std::string& id) {
  for (auto& a : arms_) {
    if (a->spec.id == id) return *a;
  }
  std::string ids;
  for (auto& a : arms_) ids += (ids.empty() ? "" : ", ") + a->spec.id;
  fail("runner: no method '", id, "' (methods: ", ids, ")");
}

Model& Runner::model(const std::string& id) { return arm(id).model; }

std::vector<float> Runner::predict(const std::string& id, const float* x, int64_t n, bool folded) {
  Arm& a = arm(id);
  if (n < 1 || n > 1 << 20) fail("runner: predict takes 1 to 1048576 samples, got ", n);
  FoldResult deployed;
  if (folded) deployed = fold_norms(a.model);
  Model& model = folded ? deployed.model : a.model;
  const int64_t K = data_.train.num_classes;
  Shape shape = {n};
  const Shape sample = sample_shape();
  shape.insert(shape.end(), sample.begin(), sample.end());
  Tensor input(shape);
  std::copy(x, x + input.numel(), input.ptr());
  if (preprocessor_) preprocessor_->transform(input.ptr(), input.ptr(), n);
  std::vector<float> probs(static_cast<size_t>(n * K));
  for (int64_t b = 0; b < n; b += kEvalBatch) {
    const int64_t count = std::min(kEvalBatch, n - b);
    Shape part = shape;
    part[0] = count;
    Tensor chunk(part);
    std::copy(input.ptr() + b * (input.numel() / n), input.ptr() + (b + count) * (input.numel() / n), chunk.ptr());
    const Tensor& logits = model.forward(chunk, false);
    for (int64_t i = 0; i < count; ++i) {
      const float* z = logits.ptr() + i * K;
      float* p = probs.data() + (b + i) * K;
      const float top = *std::max_element(z, z + K);
      double sum = 0;
      for (int64_t k = 0; k < K; ++k) sum += (p[k] = std::exp(z[k] - top));
      for (int64_t k = 0; k < K; ++k) p[k] = static_cast<float>(p[k] / sum);
    }
  }
  return probs;
}

nlohmann::json Runner::fold(const std::string& id) {
  Arm& a = arm(id);
  FoldResult f = fold_norms(a.model);
  nlohmann::json folded = nlohmann::json::array(), kept = nlohmann::json::array();
  auto entry = [](const FoldEntry& e, const char* note) {
    nlohmann::json j = {{"layer", e.layer}, {"method", e.method}, {note, e.note}};
    if (!e.path.empty()) j["path"] = e.path;  // inside residual blocks: the place in each, outermost first
    return j;
  };
  for (const FoldEntry& e : f.folded) folded.push_back(entry(e, "into"));
  for (const FoldEntry& e : f.kept) kept.push_back(entry(e, "reason"));
  // Inference-mode logits of both models on the test set, batch by batch.
  const Dataset& test = data_.test;
  const int64_t n = test.x.shape[0];
  Tensor x;
  std::vector<int32_t> labels;
  std::vector<float> reference;
  double max_diff = 0;
  bool nan = false;
  for (int64_t b = 0; b < n; b += kEvalBatch) {
    const int64_t count = std::min(kEvalBatch, n - b);
    slice(test, b, count, x, labels);
    const Tensor& z = a.model.forward(x, false);
    reference.assign(z.ptr(), z.ptr() + z.numel());
    const Tensor& zf = f.model.forward(x, false);
    for (size_t i = 0; i < reference.size(); ++i) {
      const double d = std::abs(double{zf.ptr()[i]} - double{reference[i]});
      if (std::isnan(d)) {
        nan = true;  // a diverged model: reported as null rather than skipped
      } else {
        max_diff = std::max(max_diff, d);
      }
    }
  }
  return {{"folded", folded},
          {"kept", kept},
          {"layers", {{"before", a.model.size()}, {"after", f.model.size()}}},
          {"summary", {{"before", a.model.summary()}, {"after", f.model.summary()}}},
          {"maxAbsDiff", nan ? nlohmann::json(nullptr) : nlohmann::json(max_diff)}};
}

std::pair<double, double> Runner::infer(Arm& arm, const Dataset& data) {
  const int64_t n = data.x.shape[0], K = data.num_classes;
  Tensor x;
  std::vector<int32_t> labels;
  std::vector<float> scratch;
  double loss_sum = 0;
  int64_t correct = 0;
  for (int64_t b = 0; b < n; b += kEvalBatch) {
    const int64_t count = std::min(kEvalBatch, n - b);
    slice(data, b, count, x, labels);
    const Tensor& logits = arm.model.forward(x, false);
    scratch.resize(static_cast<size_t>(logits.numel()));
    loss_sum += softmax_cross_entropy(scratch.data(), nullptr, logits.ptr(), labels.data(), count, K) * count;
    correct += count_correct(logits.ptr(), labels.data(), count, K);
  }
  return {loss_sum / n, static_cast<double>(correct) / n};
}

void Runner::adapt(Arm& arm, const Dataset& target) { normlab::adapt_batch_norm(arm.model, target.x, kEvalBatch); }

int Runner::adapt_batch_norm(const std::string& id, const float* x, int64_t n) {
  Arm& a = arm(id);
  if (n < 1 || n > 1 << 20) fail("runner: adaptBatchNorm takes 1 to 1048576 samples, got ", n);
  Shape shape = {n};
  const Shape sample = sample_shape();
  shape.insert(shape.end(), sample.begin(), sample.end());
  Tensor input(shape);
  std::copy(x, x + input.numel(), input.ptr());
  for (float v : input.data) {
    if (!std::isfinite(v)) fail("runner: adaptBatchNorm's samples must be finite numbers, got ", v);
  }
  if (preprocessor_) preprocessor_->transform(input.ptr(), input.ptr(), n);
  return normlab::adapt_batch_norm(a.model, input, kEvalBatch);
}

nlohmann::json Runner::take_events() {
  nlohmann::json methods = nlohmann::json::object();
  for (auto& arm : arms_) {
    nlohmann::json train = nlohmann::json::array();
    const size_t first_step = static_cast<size_t>(arm->reported_train);
    for (size_t i = arm->reported_train; i < arm->train_loss.size(); ++i) {
      train.push_back({r7(arm->train_loss[i]), r7(arm->train_accuracy[i])});
    }
    nlohmann::json evals = nlohmann::json::array();
    for (size_t i = arm->reported_evals; i < arm->evals.size(); ++i) evals.push_back(arm->evals[i]);
    arm->reported_train = arm->train_loss.size();
    arm->reported_evals = arm->evals.size();
    nlohmann::json m = {{"firstStep", first_step}, {"train", train}, {"eval", evals}};
    if (arm->diverged) m["diverged"] = {{"step", arm->diverged_step}, {"reason", arm->diverged_reason}};
    methods[arm->spec.id] = m;
  }
  return {{"step", step_}, {"steps", config_.steps}, {"methods", methods}};
}

nlohmann::json Runner::result() const {
  nlohmann::json methods = nlohmann::json::array();
  for (const auto& arm : arms_) {
    nlohmann::json loss = nlohmann::json::array(), accuracy = nlohmann::json::array();
    for (size_t i = 0; i < arm->train_loss.size(); ++i) {
      loss.push_back(r7(arm->train_loss[i]));
      accuracy.push_back(r7(arm->train_accuracy[i]));
    }
    nlohmann::json m = {{"id", arm->spec.id},
                        {"method", arm->spec.method},
                        {"label", arm->spec.label},
                        {"options", arm->spec.options},
                        {"model", arm->model.summary()},
                        {"train", {{"loss", loss}, {"accuracy", accuracy}}},
                        {"eval", arm->evals},
                        {"diverged", nullptr}};
    if (arm->diverged) m["diverged"] = {{"step", arm->diverged_step}, {"reason", arm->diverged_reason}};
    nlohmann::json final = nullptr;
    if (!arm->evals.empty()) {
      const nlohmann::json& last = arm->evals.back();
      // Training loss and accuracy averaged over the last 10% of the steps (single batches are noisy).
      const size_t n = arm->train_loss.size(), tail = std::max<size_t>(1, n / 10);
      double tl = 0, ta = 0;
      for (size_t i = n - std::min(n, tail); i < n; ++i) {
        tl += arm->train_loss[i];
        ta += arm->train_accuracy[i];
      }
      final = {{"step", last["step"]},
               {"testAccuracy", last["testAccuracy"]},
               {"testAccuracyBatchStats", last["testAccuracyBatchStats"]},
               {"testLoss", last["testLoss"]},
               {"testLossBatchStats", last["testLossBatchStats"]},
               {"target", last.contains("target") ? last["target"] : nlohmann::json(nullptr)},
               {"trainLoss", n ? nlohmann::json(r7(tl / std::min(n, tail))) : nlohmann::json(nullptr)},
               {"trainAccuracy", n ? nlohmann::json(r7(ta / std::min(n, tail))) : nlohmann::json(nullptr)}};
    }
    m["final"] = final;
    methods.push_back(std::move(m));
  }
  return {{"config", run_config_to_json(config_)},
          {"data", {{"train", data_.train.x.shape[0]}, {"test", data_.test.x.shape[0]},
                    {"classes", data_.train.num_classes}}},
          {"stepsDone", step_},
          {"done", done()},
          {"methods", methods}};
}

nlohmann::json Runner::timing() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& arm : arms_) {
    out[arm->spec.id] = {{"trainMs", arm->train_seconds * 1000}, {"evalMs", arm->eval_seconds * 1000},
                         {"msPerStep", arm->train_loss.empty() ? 0.0 : arm->train_seconds * 1000 / arm->train_loss.size()}};
  }
  return out;
}

}  // namespace normlab
