// Probes of the loss around a model's current weights, after Santurkar, Tsipras, Ilyas and Madry,
// "How Does Batch Normalization Help Optimization?" (NeurIPS 2018, arXiv 1805.11604):
//   landscape  the loss and its gradient at steps along the gradient (their Section 3.1, Figure 4):
//              how much the loss varies there, how far the gradient moves (predictiveness), and the
//              "effective" beta-smoothness;
//   ics        internal covariate shift per layer (their Definition 2.1, Figures 5-6): how a layer's
//              gradient changes when the layers below it take their update step.
// Every pass is a training-mode forward and backward of one fixed batch, as in the paper, on a copy
// of the model (Model::clone) whose running state is put back before each pass, so every pass sees
// the state the model has; the model measured and its optimizer are not touched.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "normlab/core/tensor.h"
#include "normlab/nn/model.h"
#include "normlab/nn/optim.h"

namespace normlab {

// The loss of a model's output `out` on the probe batch; writes dL/dout into `dout` (resized to
// out's shape by the caller). The runner's is softmax cross-entropy with the batch's labels.
using ProbeLoss = std::function<double(const Tensor& out, Tensor& dout)>;

struct LandscapeProbe {
  std::vector<double> etas;                // step sizes, as given
  double loss = 0;                         // L(w)
  double gradient_norm = 0;                // ||g||, g = grad L(w) over every parameter
  std::vector<double> losses;              // L(w - eta g), per eta
  std::vector<double> gradient_distances;  // ||g - grad L(w - eta g)||, per eta
  double loss_min = 0, loss_max = 0;       // over `losses`
  double gradient_distance_max = 0;        // max of `gradient_distances`
  double beta_smoothness = 0;              // max over eta of gradient_distances / (eta ||g||); 0 if g = 0
};

// One layer's internal covariate shift: G = its parameters' gradient at w, G' = the same gradient
// after every parameter below it (in forward order, normalization layers' included) took its
// update step, the layer itself and those above unchanged.
struct IcsProbe {
  int layer = 0;       // 1-based position among the model's top-level layers with parameters that
                       // are not normalization layers (Linear, Conv2d, residual blocks): the same
                       // numbering whatever the method, since the normalization layers do not count
  std::string kind;    // "linear", "conv2d", "residual(...)"
  double l2 = 0;       // ||G - G'||
  double cosine = 0;   // <G, G'> / (||G|| ||G'||); NaN if either is zero
};

struct ProbeRequest {
  std::vector<double> etas;              // landscape step sizes; empty: no landscape
  bool ics = false;
  // ICS: the update the layers below take: a replica of this optimizer (its moments and step
  // count) stepped with `lr` from the probe batch's gradient, as the next training step on that
  // batch would move them.
  const Optimizer* optimizer = nullptr;
  double lr = 0;
};

struct ProbeResult {
  LandscapeProbe landscape;   // when etas were given
  std::vector<IcsProbe> ics;  // when ics was asked: the layers with a parameterised layer below
  int passes = 0;             // forward/backward passes of the batch: 1 + etas + ics rows
};

// The probes of `model` on batch `x` with `loss`. Costs one pass for grad L(w), one per eta and one
// per ICS row. Throws Error if ics is asked without an optimizer or an eta is not a finite number > 0.
ProbeResult probe(const Model& model, const Tensor& x, const ProbeLoss& loss, const ProbeRequest& request);

}  // namespace normlab
