// The memory estimate: the data sets, each method's parameters and optimizer state, and its
// activations at the training and evaluation batch sizes.
#include "normlab/run/memory.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "normlab/core/error.h"
#include "normlab/run/evaluate.h"

namespace normlab {

using detail::kEvalBatch;
using detail::kProbeSize;

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
  // Probes (probes.h): one method at a time, a copy of its model (value and grad) with an optimizer
  // replica, the parameters and gradients they keep (w, g, the update, a gradient read), and the
  // activations of the probe batch (the training batch's size) and the batch itself.
  if (config.probes.enabled()) {
    m.parameters += size.parameters * (buffers + 4) * f;
    m.activations += f * (batch * (2 * sample + 2 * size.outputs + 2 * widest + size.gradients) + size.scratch);
  }
  // AdaBN on the shifted test set gathers one normalization layer's inputs for all of it at a time.
  if (!config.shift.kind.empty()) m.activations += static_cast<double>(test_size) * widest * f;
  return m;
}

void check_memory(const MemoryEstimate& need, const RunConfig& config, double limit) {
  if (limit <= 0 || need.total() <= limit) return;
  auto mib = [](double bytes) { return std::to_string(static_cast<int64_t>(std::ceil(bytes / 1048576.0))); };
  const bool user = config.dataset.user();
  fail(user ? config.dataset.name : std::string("config"), ": this run needs about ", mib(need.total()),
       " MiB (data ", mib(need.data), ", parameters ", mib(need.parameters), ", activations ",
       mib(need.activations), " MiB for ", config.methods.size(), " methods), more than the ", mib(limit),
       " MiB of memory available; use fewer methods, a smaller model or a smaller batch",
       user ? ", or fewer examples or features" : "");
}

}  // namespace normlab
