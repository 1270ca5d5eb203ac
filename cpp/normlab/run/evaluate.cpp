// The runner's evaluations: test loss and accuracy in inference mode and with batch statistics,
// Batch Renorm's r and d, AdaBN on a shifted test set, activation percentiles and, when asked, the
// landscape and ICS probes (evaluate, probe), and on request predict, fold and adapt_batch_norm.
#include "normlab/run/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "normlab/core/error.h"
#include "normlab/data/batching.h"
#include "normlab/nn/fold.h"
#include "normlab/nn/loss.h"
#include "normlab/run/arm.h"
#include "normlab/run/probes.h"
#include "normlab/run/runner.h"

namespace normlab {

namespace detail {

// Rows [begin, begin + count) of a data set.
void slice(const Dataset& data, int64_t begin, int64_t count, Tensor& x, std::vector<int32_t>& labels) {
  const int64_t sample = data.x.numel() / data.x.shape[0];
  Shape shape = data.x.shape;
  shape[0] = count;
  x.resize(shape);
  std::copy(data.x.ptr() + begin * sample, data.x.ptr() + (begin + count) * sample, x.ptr());
  labels.assign(data.labels.begin() + begin, data.labels.begin() + begin + count);
}

NormStates snapshot(Model& model) {
  NormStates states;
  for (NormModule* norm : model.norms()) states.push_back(norm->layer().state());
  return states;
}

void restore(Model& model, const NormStates& states) {
  auto norms = model.norms();
  for (size_t k = 0; k < norms.size(); ++k) {
    for (const StateBuffer& b : states[k]) norms[k]->layer().set_state(b.name, b.value.data(), b.value.size());
  }
}

}  // namespace detail

namespace {

using detail::kEvalBatch;
using detail::kProbeSize;
using detail::NormStates;
using detail::r7;
using detail::restore;
using detail::seconds_since;
using detail::slice;
using detail::snapshot;

constexpr double kPercentiles[] = {2, 16, 50, 84, 98};  // about mean -+ 1 and 2 std for a Gaussian

// Value at percentile q (0..100) of sorted values, with linear interpolation (numpy's default).
double percentile(const std::vector<float>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double pos = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

}  // namespace

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
    BatchCorrections c;
    if (!norm->layer().last_corrections(c)) continue;
    auto stats = [n = c.n](const float* v) {
      double lo = v[0], hi = v[0], sum = 0;
      for (size_t i = 0; i < n; ++i) {
        lo = std::min<double>(lo, v[i]);
        hi = std::max<double>(hi, v[i]);
        sum += v[i];
      }
      return nlohmann::json{r7(lo), r7(sum / n), r7(hi)};
    };
    renorm.push_back({{"r", stats(c.r)}, {"d", stats(c.d)}, {"rMax", r7(c.r_max)}, {"dMax", r7(c.d_max)}});
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
  const bool single = B == 1 && detail::flat_norm_slot(config_.model, sample_shape());
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
  for (size_t i : arm.activation_layers) {
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

  if (config_.probes.enabled()) probe(arm, e);

  arm.evals.push_back(std::move(e));
  arm.eval_seconds += seconds_since(t0);
}

void Runner::probe(Arm& arm, nlohmann::json& record) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t K = data_.train.num_classes;
  const ProbeLoss loss = [&](const Tensor& logits, Tensor& dlogits) {
    return softmax_cross_entropy(dlogits.ptr(), nullptr, logits.ptr(), probe_labels_.data(), logits.shape[0], K);
  };
  ProbeRequest request;
  if (config_.probes.landscape) request.etas = config_.probes.etas;
  request.ics = config_.probes.ics;
  request.optimizer = arm.optimizer.get();
  // The rate of the next training step, the one the layers below would take.
  request.lr = scheduled_lr(config_.schedule, config_.optimizer.lr, step_, config_.steps);
  const ProbeResult p = normlab::probe(arm.model, probe_x_, loss, request);
  auto rounded = [](const std::vector<double>& v) {
    nlohmann::json out = nlohmann::json::array();
    for (double x : v) out.push_back(r7(x));
    return out;
  };
  if (config_.probes.landscape) {
    const LandscapeProbe& L = p.landscape;
    record["landscape"] = {{"etas", L.etas},
                           {"loss", r7(L.loss)},
                           {"losses", rounded(L.losses)},
                           {"lossMin", r7(L.loss_min)},
                           {"lossMax", r7(L.loss_max)},
                           {"gradientNorm", r7(L.gradient_norm)},
                           {"gradientDistances", rounded(L.gradient_distances)},
                           {"gradientDistanceMax", r7(L.gradient_distance_max)},
                           {"betaSmoothness", r7(L.beta_smoothness)}};
  }
  if (config_.probes.ics) {
    nlohmann::json rows = nlohmann::json::array();
    for (const IcsProbe& row : p.ics) {
      rows.push_back({{"layer", row.layer}, {"kind", row.kind}, {"l2", r7(row.l2)}, {"cosine", r7(row.cosine)}});
    }
    record["ics"] = rows;
  }
  arm.probe_seconds += seconds_since(t0);
}

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
    softmax(probs.data() + b * K, logits.ptr(), count, K);
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

}  // namespace normlab
