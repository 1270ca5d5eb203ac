#include "normlab/nn/fold.h"

#include <cmath>
#include <memory>
#include <utility>

#include "normlab/core/error.h"
#include "normlab/nn/conv2d.h"
#include "normlab/nn/linear.h"
#include "normlab/nn/residual.h"

namespace normlab {

namespace {

// W'[o, ...] = W[o, ...] * scale[o], b'[o] = (b[o] - centre[o]) * scale[o] + shift[o], in double,
// rounded to float once. `bias` is empty for a layer without bias (b = 0).
void fold_values(std::vector<float>& weight, std::vector<float>& bias,
                 const std::vector<double>& centre, const std::vector<double>& scale,
                 const std::vector<double>& shift) {
  const size_t O = scale.size(), per = weight.size() / O;
  if (bias.empty()) bias.assign(O, 0.0f);
  for (size_t o = 0; o < O; ++o) {
    for (size_t j = 0; j < per; ++j) {
      float& w = weight[o * per + j];
      w = static_cast<float>(double{w} * scale[o]);
    }
    bias[o] = static_cast<float>((double{bias[o]} - centre[o]) * scale[o] + shift[o]);
  }
}

// The layer `prev` with the per-channel map folded in, or null if it is not a Linear or Conv2d
// with as many output channels as the map has. A weight-normalized layer folds as the plain layer
// of its effective weight; a cosine-normalized one cannot (its output is not linear in x).
std::unique_ptr<Module> fold_into(Module& prev, const std::vector<double>& centre,
                                  const std::vector<double>& scale,
                                  const std::vector<double>& shift) {
  const int64_t C = static_cast<int64_t>(scale.size());
  auto linear_in_x = [](WeightMode mode) { return mode == WeightMode::plain || mode == WeightMode::weight_norm; };
  if (auto* lin = dynamic_cast<Linear*>(&prev)) {
    if (lin->out_features() != C || !linear_in_x(lin->mode())) return nullptr;
    std::vector<float> w = lin->effective_weight();
    std::vector<float> b = lin->has_bias() ? lin->bias().value : std::vector<float>{};
    fold_values(w, b, centre, scale, shift);
    return std::make_unique<Linear>(lin->in_features(), lin->out_features(), std::move(w),
                                    std::move(b));
  }
  if (auto* conv = dynamic_cast<Conv2d*>(&prev)) {
    if (conv->out_channels() != C || !linear_in_x(conv->mode())) return nullptr;
    std::vector<float> w = conv->effective_weight();
    std::vector<float> b = conv->has_bias() ? conv->bias().value : std::vector<float>{};
    fold_values(w, b, centre, scale, shift);
    return std::make_unique<Conv2d>(conv->in_channels(), conv->out_channels(), conv->kernel(),
                                    conv->stride(), conv->padding(), std::move(w), std::move(b));
  }
  return nullptr;
}

// The folded copies of a sequence of layers: the model's (place empty) or a residual block's
// (place: where the block is, the model's index first). Entries go to `result` in model order.
std::vector<std::unique_ptr<Module>> fold_layers(const std::vector<const Module*>& in,
                                                 const std::vector<size_t>& place, FoldResult& result) {
  std::vector<std::unique_ptr<Module>> layers;
  InferenceAffine map;
  for (size_t i = 0; i < in.size(); ++i) {
    const Module& m = *in[i];
    std::vector<size_t> here = place;
    here.push_back(i);
    if (const auto* res = dynamic_cast<const Residual*>(&m)) {
      std::vector<const Module*> body;
      for (size_t j = 0; j < res->size(); ++j) body.push_back(&res->layer(j));
      layers.push_back(std::make_unique<Residual>(fold_layers(body, here, result)));
      continue;
    }
    const auto* norm = dynamic_cast<const NormModule*>(&m);
    if (norm == nullptr) {
      layers.push_back(m.clone());
      continue;
    }
    FoldEntry entry;
    entry.layer = here.front();
    entry.path.assign(here.begin() + 1, here.end());
    entry.method = norm->layer().method();
    if (norm->layer().inference_affine(map, entry.note)) {
      // The previous layer may itself be a folded one (a chain of normalizations folds in turn).
      std::unique_ptr<Module> fused =
          layers.empty() ? nullptr : fold_into(*layers.back(), map.centre, map.scale, map.shift);
      if (fused) {
        entry.note = fused->kind();
        result.folded.push_back(std::move(entry));
        layers.back() = std::move(fused);
        continue;
      }
      entry.note = "not directly after a linear or conv2d (plain or weight-normalized) with its channels";
    }
    result.kept.push_back(std::move(entry));
    layers.push_back(m.clone());
  }
  return layers;
}

}  // namespace

FoldResult fold_norms(const Model& model) {
  FoldResult result;
  std::vector<const Module*> layers;
  for (size_t i = 0; i < model.size(); ++i) layers.push_back(&model.layer(i));
  for (auto& layer : fold_layers(layers, {}, result)) result.model.add(std::move(layer));
  return result;
}

}  // namespace normlab
