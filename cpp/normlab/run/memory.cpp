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

  // The layers build_model makes: parameters, and per-sample output sizes of every layer.
  double params = 0;
  std::vector<double> outputs;  // per-sample output size of each layer
  double scratch = 0;           // a Conv2d's column buffers (per sample, reused)
  // The normalization layer (counted for every method, "none" included) and the activation after
  // a layer of `units` outputs.
  auto block = [&](double units) { outputs.insert(outputs.end(), 2, units); };
  if (config.model.kind == "cnn" && sample_shape.size() == 3) {
    double c = static_cast<double>(sample_shape[0]);
    int64_t h = sample_shape[1], w = sample_shape[2];
    for (int64_t out : config.model.channels) {
      params += static_cast<double>(out) * (c * 9 + 1) + 2.0 * static_cast<double>(out);
      scratch = std::max(scratch, 2 * c * 9 * static_cast<double>(h * w));
      outputs.push_back(static_cast<double>(out * h * w));
      block(static_cast<double>(out * h * w));
      h /= 2, w /= 2;
      outputs.push_back(static_cast<double>(out * h * w));  // max pool
      c = static_cast<double>(out);
    }
    outputs.push_back(c * static_cast<double>(h * w));  // flatten
    params += (c * static_cast<double>(h * w) + 1) * classes;
  } else {
    double in = sample;
    for (int64_t width : config.model.hidden) {
      params += static_cast<double>(width) * (in + 1) + 2.0 * static_cast<double>(width);
      outputs.push_back(static_cast<double>(width));
      block(static_cast<double>(width));
      in = static_cast<double>(width);
    }
    params += (in + 1) * classes;
  }
  outputs.push_back(classes);
  double sum = 0, widest = sample;
  for (double o : outputs) {
    sum += o;
    widest = std::max(widest, o);
  }
  // Value and gradient, plus the optimizer's buffers: Adam's two moments, SGD's momentum.
  const OptimizerOptions& opt = config.optimizer;
  const double buffers = 2 + (opt.kind == "sgd" ? (opt.momentum > 0 ? 1 : 0) : 2);
  const double arms = static_cast<double>(config.methods.size());
  m.parameters = arms * params * buffers * f;
  // Training: each layer's input kept by the model, again in the layer's cache, and a per-element
  // buffer of the layer's own (a normalization layer's normalized values, an activation's mask),
  // and the two gradient buffers; evaluation batches (inference, batch statistics, activation
  // probes) reuse the model's buffers at the larger batch size.
  const double batch = static_cast<double>(std::max<int64_t>({config.batch_size, kEvalBatch, kProbeSize}));
  m.activations = arms * ((batch * (sample + 3 * sum + 2 * widest) + scratch) * f);
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
