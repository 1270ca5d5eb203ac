// The landscape and internal-covariate-shift probes (probes.h): passes of one batch through a copy
// of the model at moved parameters, and the distances between the gradients they give.
#include "normlab/run/probes.h"

#include <cmath>
#include <limits>

#include "normlab/core/error.h"
#include "normlab/nn/norm_module.h"
#include "normlab/run/evaluate.h"

namespace normlab {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Every parameter's values, or grads, in model order.
std::vector<std::vector<float>> values_of(const std::vector<Param*>& params) {
  std::vector<std::vector<float>> out;
  for (const Param* p : params) out.push_back(p->value);
  return out;
}
std::vector<std::vector<float>> grads_of(const std::vector<Param*>& params) {
  std::vector<std::vector<float>> out;
  for (const Param* p : params) out.push_back(p->grad);
  return out;
}

// Sums over parameters [begin, end) in double: ||a||^2, ||a - b||^2 and <a, b>.
struct Sums {
  double aa = 0, bb = 0, ab = 0, dd = 0;
};
Sums sums(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b, size_t begin,
          size_t end) {
  Sums s;
  for (size_t k = begin; k < end; ++k) {
    for (size_t i = 0; i < a[k].size(); ++i) {
      const double x = a[k][i], y = b[k][i];
      s.aa += x * x;
      s.bb += y * y;
      s.ab += x * y;
      s.dd += (x - y) * (x - y);
    }
  }
  return s;
}

// The larger of two values, NaN if either is (a step whose loss blew up is not skipped).
double max_or_nan(double a, double b) { return std::isnan(a) || std::isnan(b) ? kNaN : std::max(a, b); }
double min_or_nan(double a, double b) { return std::isnan(a) || std::isnan(b) ? kNaN : std::min(a, b); }

}  // namespace

ProbeResult probe(const Model& model, const Tensor& x, const ProbeLoss& loss, const ProbeRequest& request) {
  for (double eta : request.etas) {
    if (!(eta > 0) || !std::isfinite(eta)) fail("probes: every step size must be a finite number > 0, got ", eta);
  }
  if (request.ics && request.optimizer == nullptr) fail("probes: internal covariate shift needs the run's optimizer");
  ProbeResult result;
  Model copy = model.clone();
  const std::vector<Param*> params = copy.parameters();
  const detail::NormStates state = detail::snapshot(copy);
  Tensor dout;
  // One training-mode forward and backward at the copy's parameters from the model's running
  // state: the loss, and every parameter's grad.
  auto pass = [&] {
    detail::restore(copy, state);
    const Tensor& out = copy.forward(x, true);
    dout.resize(out.shape);
    const double l = loss(out, dout);
    copy.backward(dout);
    ++result.passes;
    return l;
  };
  auto set_values = [&](const std::vector<std::vector<float>>& values, size_t begin, size_t end) {
    for (size_t k = begin; k < end; ++k) params[k]->value = values[k];
  };

  const double loss_w = pass();
  const std::vector<std::vector<float>> w = values_of(params), g = grads_of(params);
  const double g_norm = std::sqrt(sums(g, g, 0, g.size()).aa);

  // Landscape: L and grad L at w - eta g.
  if (!request.etas.empty()) {
    LandscapeProbe& L = result.landscape;
    L.etas = request.etas;
    L.loss = loss_w;
    L.gradient_norm = g_norm;
    for (size_t e = 0; e < L.etas.size(); ++e) {
      const double eta = L.etas[e];
      for (size_t k = 0; k < params.size(); ++k) {
        std::vector<float>& v = params[k]->value;
        for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(w[k][i] - eta * g[k][i]);
      }
      const double l = pass();
      const double distance = std::sqrt(sums(g, grads_of(params), 0, g.size()).dd);
      L.losses.push_back(l);
      L.gradient_distances.push_back(distance);
      L.loss_min = e == 0 ? l : min_or_nan(L.loss_min, l);
      L.loss_max = e == 0 ? l : max_or_nan(L.loss_max, l);
      L.gradient_distance_max = e == 0 ? distance : max_or_nan(L.gradient_distance_max, distance);
      const double beta = g_norm > 0 ? distance / (eta * g_norm) : 0.0;
      L.beta_smoothness = e == 0 ? beta : max_or_nan(L.beta_smoothness, beta);
    }
    set_values(w, 0, params.size());
  }

  // Internal covariate shift: the update every parameter would take on this batch (w1), then per
  // layer its gradient with the parameters below it at w1 and the rest at w.
  if (request.ics) {
    for (size_t k = 0; k < params.size(); ++k) params[k]->grad = g[k];
    Optimizer replica(*request.optimizer, params);
    replica.step(request.lr);
    const std::vector<std::vector<float>> w1 = values_of(params);
    set_values(w, 0, params.size());
    size_t begin = 0;  // the first parameter of layer i
    int ordinal = 0;
    for (size_t i = 0; i < copy.size(); ++i) {
      Module& layer = copy.layer(i);
      const size_t end = begin + layer.parameters().size();
      const bool weights = end > begin && dynamic_cast<NormModule*>(&layer) == nullptr;
      if (weights) ++ordinal;
      if (weights && begin > 0) {
        set_values(w1, 0, begin);
        pass();
        const Sums s = sums(g, grads_of(params), begin, end);
        const double denominator = std::sqrt(s.aa) * std::sqrt(s.bb);
        result.ics.push_back({ordinal, layer.kind(), std::sqrt(s.dd), denominator > 0 ? s.ab / denominator : kNaN});
        set_values(w, 0, begin);
      }
      begin = end;
    }
  }
  return result;
}

}  // namespace normlab
