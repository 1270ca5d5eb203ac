// The Runner's core: building a run (data, preprocessing, one model and optimizer per method),
// the training steps (Batch Renorm's schedule, divergence), and the records they leave.
#include "normlab/run/runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "normlab/core/error.h"
#include "normlab/nn/loss.h"
#include "normlab/norm/registry.h"
#include "normlab/run/arm.h"
#include "normlab/run/evaluate.h"

namespace normlab {

namespace {

using detail::NormStates;
using detail::r7;
using detail::restore;
using detail::seconds_since;

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

}  // namespace

namespace detail {

bool flat_norm_slot(const ModelSpec& model, const Shape& sample_shape) {
  for (const Shape& slot : norm_slot_shapes(model, sample_shape)) {
    if (slot.size() == 1) return true;
  }
  return false;
}

}  // namespace detail

Runner::Runner(const RunConfig& config, const std::vector<uint8_t>& data, double memory_limit)
    : config_(config) {
  const Rng root(config_.seed);
  const DatasetSpec& d = config_.dataset;
  if (d.user()) {
    fail("runner: the data set '", d.name, "' (source ", d.source, ") needs its examples: give them "
         "to the constructor that takes the training and test sets");
  }
  if (d.name == "digits" || d.name == "mnist") {
    if (data.empty()) fail("runner: the ", d.name, " data set needs its data file's bytes");
    data_ = parse_digits_split(data.data(), data.size(), d.name, d.test_size, config_.seed);
  } else {
    Rng rng = root.fork(kDataStream);
    data_ = make_2d(d.name, d.train_size, d.test_size, d.noise, d.classes, rng);
  }
  build(memory_limit);
}

Runner::Runner(const RunConfig& config, Dataset train, Dataset test, double memory_limit)
    : config_(config) {
  DatasetSpec& d = config_.dataset;
  if (!d.user()) {
    fail("runner: examples were given but the config names the built-in data set '", d.name,
         "'; set dataset.source (arrays, csv or nlds) for the user's own data");
  }
  train.name = d.name;
  const int64_t n = check_user_dataset(train, "runner");
  const int32_t k = train.num_classes;
  if (k < 2) fail(d.name, ": a classifier needs at least 2 classes, the data set has ", k);
  if (std::find_if(train.labels.begin(), train.labels.end(),
                   [&](int32_t l) { return l != train.labels.front(); }) == train.labels.end()) {
    fail(d.name, ": every training example has the label ", train.labels.front(),
         "; a classifier needs at least 2 classes among them");
  }
  if (train.class_names.empty()) {
    for (int32_t c = 0; c < k; ++c) train.class_names.push_back(std::to_string(c));
  }
  if (test.labels.empty() && test.x.numel() == 0) {
    data_ = split_fixed(train, held_out(n, d.test_fraction, d.name), config_.seed);
    train = Dataset();  // the split holds its own copies
  } else {
    test.name = d.name;
    check_user_dataset(test, "runner (test set)");
    const Shape sample(train.x.shape.begin() + 1, train.x.shape.end());
    const Shape test_sample(test.x.shape.begin() + 1, test.x.shape.end());
    if (test_sample != sample) {
      fail(d.name, ": test examples of shape ", to_string(test_sample), " but training examples of shape ",
           to_string(sample));
    }
    if (test.num_classes != k) fail(d.name, ": the test set has ", test.num_classes, " classes, the training set ", k);
    test.class_names = train.class_names;
    d.test_fraction = 0;
    data_.train = std::move(train);
    data_.test = std::move(test);
  }
  build(memory_limit);
}

void Runner::build(double memory_limit) {
  const Rng root(config_.seed);
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
    const DatasetSpec& d = config_.dataset;
    if (!d.user()) {
      fail("config: batchSize ", config_.batch_size, " is larger than the training set (", n_train, ")");
    }
    const int64_t n_test = data_.test.x.shape[0];
    fail(d.name, ": ", n_train, " training examples",
         d.test_fraction > 0 ? " (" + std::to_string(n_train + n_test) + " less " + std::to_string(n_test) +
                                   " held out for testing)"
                             : std::string(),
         " are fewer than the batch size ", config_.batch_size);
  }
  if (memory_limit > 0) {
    const Shape sample(data_.train.x.shape.begin() + 1, data_.train.x.shape.end());
    check_memory(estimate_memory(config_, sample, data_.train.num_classes, n_train, data_.test.x.shape[0]),
                 config_, memory_limit);
  }
  // Non-i.i.d. batches, in the user's terms (the sampler checks them again for its other callers).
  const int32_t k = config_.noniid_classes;
  if (k > 0 && k > data_.train.num_classes) {
    fail("batching noniid:", k, ": ", k, " classes per batch, but ", config_.dataset.name, " has ",
         data_.train.num_classes, " classes");
  }
  if (k > 0 && config_.batch_size % k != 0) {
    fail("batch size ", config_.batch_size, " is not divisible by the ", k,
         " classes of a non-i.i.d. batch (noniid:", k, "): use a multiple of ", k);
  }
  Rng order = root.fork(kOrderStream);
  const uint64_t order_seed = (static_cast<uint64_t>(order.next_u32()) << 32) | order.next_u32();
  sampler_ = std::make_unique<BatchSampler>(data_.train, config_.batch_size, config_.noniid_classes,
                                            order_seed);
  if (config_.probes.enabled()) {
    // The probes' fixed batch: the first batch of a sampler of its own (drawn like a training
    // batch, i.i.d. or from k classes), seeded from kProbeStream; the training streams are untouched.
    Rng probe = root.fork(kProbeStream);
    const uint64_t probe_seed = (static_cast<uint64_t>(probe.next_u32()) << 32) | probe.next_u32();
    BatchSampler probe_batches(data_.train, config_.batch_size, config_.noniid_classes, probe_seed);
    gather(data_.train, probe_batches.next(), probe_x_, probe_labels_);
    if (config_.probes.landscape && config_.probes.etas.empty()) {
      config_.probes.etas = default_probe_etas(config_.optimizer.lr);
    }
  }
  const Shape sample_shape(data_.train.x.shape.begin() + 1, data_.train.x.shape.end());
  for (const MethodSpec& spec : config_.methods) {
    auto arm = std::make_unique<Arm>();
    arm->spec = spec;
    const MethodInfo& info = method_info(spec.method);
    // Methods that normalize over spatial positions need feature maps where their norm goes.
    if (info.needs_spatial_dims && detail::flat_norm_slot(config_.model, sample_shape)) {
      fail(spec.method, " needs image feature maps [N, C, H, W] (it normalizes over spatial positions), but ",
           config_.model.kind == "layers" ? "a norm slot of this model gets flat features"
                                          : "the " + config_.model.kind + " gives it flat features",
           ": use the cnn model (--model cnn), or conv layers before each norm of a described model");
    }
    arm->model = build_model(config_.model, sample_shape, data_.train.num_classes,
                             info.baseline ? "" : spec.method, spec.options, root.fork(kInitStream));
    // One value per channel: batch statistics of a single example of an MLP are undefined.
    if (info.uses_batch_statistics && config_.batch_size == 1 && detail::flat_norm_slot(config_.model, sample_shape)) {
      fail("config: ", spec.method, " needs batchSize >= 2 with ",
           config_.model.kind == "layers" ? "a norm slot on flat features" : "an mlp",
           " (with one example per batch, each "
           "channel has a single value and no batch statistics); use layernorm or groupnorm for batch size 1");
    }
    for (size_t i = 0; i + 1 < arm->model.size(); ++i) {
      const std::string kind = arm->model.layer(i).kind();
      if (kind.rfind("linear", 0) == 0 || kind.rfind("conv2d", 0) == 0) arm->activation_layers.push_back(i + 1);
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
  for (NormModule* norm : arm.model.norms()) norm->layer().relax_corrections(p);
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
  nlohmann::json data = {{"train", data_.train.x.shape[0]}, {"test", data_.test.x.shape[0]},
                         {"classes", data_.train.num_classes}};
  if (config_.dataset.user()) {
    data["name"] = config_.dataset.name;
    data["classNames"] = data_.train.class_names;
  }
  return {{"config", run_config_to_json(config_)},
          {"data", data},
          {"stepsDone", step_},
          {"done", done()},
          {"methods", methods}};
}

nlohmann::json Runner::timing() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& arm : arms_) {
    out[arm->spec.id] = {{"trainMs", arm->train_seconds * 1000}, {"evalMs", arm->eval_seconds * 1000},
                         {"msPerStep", arm->train_loss.empty() ? 0.0 : arm->train_seconds * 1000 / arm->train_loss.size()},
                         {"evaluations", arm->evals.size()}, {"probeMs", arm->probe_seconds * 1000}};
  }
  return out;
}

}  // namespace normlab