// Tests of the training core's layers and losses: Linear, Conv2d, ReLU, Tanh, MaxPool2d,
// GlobalAvgPool, Flatten, NormModule (and make_norm_module), Residual, softmax_cross_entropy, mse
// and count_correct.
//
// 1. Finite-difference gradient checks of every layer w.r.t. its input and every parameter, over a
//    sweep of shapes. Loss L = sum_i w_i * y_i with fixed random w ~ N(0, 1), accumulated in double
//    from the float32 outputs of a training-mode forward. For each scalar v (an element of x or of a
//    parameter), with the float32 steps actually taken in the denominator,
//      g(h) = (L(v+h) - L(v-h)) / ((v+h) - (v-h)),   fd = (4 g(h) - g(2h)) / 3   (Richardson)
//    with h = 1e-2 (inputs and parameters have scale ~1).
//    Truncation: Linear, Conv2d, pooling and Flatten are linear in each scalar (ReLU and MaxPool2d
//    piecewise linear, and the inputs keep every kink more than 2h away: ReLU inputs have |x| >=
//    0.1, MaxPool2d inputs are distinct multiples of 0.05, so no max changes within a step), so fd
//    has no truncation error at all; Tanh and the normalization layers are smooth and Richardson
//    leaves O(h^4) ~ 1e-8.
//    Noise: float32 rounding of y, ~6e-8 relative per element. One perturbed scalar changes at most
//    a few dozen outputs of size ~1 (a conv weight: N*Ho*Wo <= 84 outputs; an input element: at most
//    O*K*K <= 75), so L moves by ~sqrt(84) * 6e-8 ~ 6e-7 of noise, divided by 2h = 0.02: ~3e-5; the
//    Richardson combination at most doubles it. The measured max |analytic - fd| over the sweep
//    (printed per test) is 6e-5 for Linear and Conv2d, 6e-6 for Tanh, ~1e-7 for the pools, ReLU
//    and Flatten, and 9e-5 for the normalization layers, so
//      |analytic - fd| <= 1e-3 + 1e-3 * |fd|
//    (2e-3 + 2e-3*|fd| through NormModule, as in gradcheck_test.cpp) leaves a >= 15x margin.
//    Why a wrong formula fails: analytic gradients here are sums of products of O(1) numbers
//    (weights U(+-1/sqrt(fan_in)) times w ~ N(0,1)), so any wrong, missing or misplaced term moves
//    some element by O(0.1..1), 100x the tolerance. The suite asserts this for the classic mistakes:
//    a conv dx with the kernel flipped (convolution instead of correlation), a transposed Linear
//    dW, a tanh derivative taken at x instead of y, a cross-entropy gradient without the 1/N and an
//    MSE gradient without the factor 2 must all FAIL the same checks.
//    Losses are differentiated directly (their loss is computed in double, so the noise is ~1e-14
//    and the only error is the float32 rounding of the analytic gradient, ~1e-8): tolerance
//    1e-6 + 1e-5*|fd|.
// 2. PyTorch fixtures (tests/fixtures/layers.json, tests/fixtures/generate_layers.py): our layer
//    with PyTorch's parameters must reproduce PyTorch's y, dx, dweight, dbias (and losses and their
//    gradients) within atol 1e-5, rtol 1e-4: both sides compute in float32 with different
//    summation orders. Measured (printed per case): <= 1e-6 on y and dx, <= 1.2e-5 on conv
//    dweights, which are sums of ~300 products and have magnitude ~10 (so within rtol).
// 3. Initialisation (PyTorch's U(-1/sqrt(fan_in), 1/sqrt(fan_in)) from normlab::Rng: bounds,
//    variance, draw order, reproducibility), make_norm_module's defaults, and the error messages.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "normlab/core/rng.h"
#include "normlab/core/tensor.h"
#include "normlab/nn/activations.h"
#include "normlab/nn/conv2d.h"
#include "normlab/nn/gemm.h"
#include "normlab/nn/linear.h"
#include "normlab/nn/loss.h"
#include "normlab/nn/module.h"
#include "normlab/nn/norm_module.h"
#include "normlab/nn/pooling.h"
#include "normlab/nn/residual.h"
#include "normlab/norm/groupnorm.h"
#include "test_util.h"

namespace normlab_test {
namespace {

using normlab::Conv2d;
using normlab::Flatten;
using normlab::GlobalAvgPool;
using normlab::Linear;
using normlab::MaxPool2d;
using normlab::Module;
using normlab::NormModule;
using normlab::Param;
using normlab::ReLU;
using normlab::Residual;
using normlab::Tanh;
using normlab::Tensor;
using ::testing::HasSubstr;

using NRng = normlab::Rng;  // test_util.h has its own Rng; these tests draw from normlab's
using Body = std::vector<std::unique_ptr<Module>>;

constexpr double kH = 1e-2;
constexpr double kAtol = 1e-3;
constexpr double kRtol = 1e-3;
constexpr double kNormAtol = 2e-3;
constexpr double kNormRtol = 2e-3;
constexpr double kLossAtol = 1e-6;
constexpr double kLossRtol = 1e-5;
constexpr double kFixtureAtol = 1e-5;
constexpr double kFixtureRtol = 1e-4;

// ---- helpers ----------------------------------------------------------------------------------

std::vector<float> normals(NRng& rng, size_t n, double mean = 0, double sd = 1) {
  std::vector<float> v(n);
  for (float& e : v) e = static_cast<float>(mean + sd * rng.normal());
  return v;
}

Tensor tensor(const Shape& shape, std::vector<float> values) {
  Tensor t;
  t.shape = shape;
  t.data = std::move(values);
  if (t.numel() != normlab::numel(shape)) throw std::runtime_error("test bug: tensor size");
  return t;
}

Param& param(Module& m, const std::string& name) {
  for (Param* p : m.parameters()) {
    if (p->name == name) return *p;
  }
  throw std::runtime_error(m.kind() + ": no parameter " + name);
}

// How the gradient-check input is drawn.
enum class Input {
  kNormal,        // N(0, 1)
  kAwayFromZero,  // sign * (0.1 + |N(0,1)|): no ReLU kink within 2h
  kDistinct,      // a shuffled grid of distinct multiples of 0.05: no max changes within 2h
};

std::vector<float> draw_input(NRng& rng, size_t n, Input kind) {
  std::vector<float> x(n);
  if (kind == Input::kNormal) return normals(rng, n);
  if (kind == Input::kAwayFromZero) {
    for (float& e : x) {
      const double z = rng.normal();
      e = static_cast<float>(z < 0 ? -0.1 + z : 0.1 + z);
    }
    return x;
  }
  std::vector<int64_t> perm(n);
  for (size_t i = 0; i < n; ++i) perm[i] = static_cast<int64_t>(i);
  rng.shuffle(perm);
  const double center = static_cast<double>(n) / 2;
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(0.05 * (static_cast<double>(perm[i]) - center));
  return x;
}

// Finite differences of L = sum w*y for one module at one input.
class FiniteDiff {
 public:
  FiniteDiff(Module& m, Tensor x, std::vector<float> w) : m_(m), x_(std::move(x)), w_(std::move(w)) {}

  double loss() {
    m_.forward(x_, y_, /*training=*/true);
    if (y_.data.size() != w_.size()) throw std::runtime_error("test bug: w has the wrong size");
    double L = 0;
    for (size_t i = 0; i < w_.size(); ++i) L += static_cast<double>(w_[i]) * y_.data[i];
    return L;
  }

  // Richardson-extrapolated central difference along the scalar *v.
  double fd(float* v) {
    const float base = *v;
    auto g = [&](double h) {
      const float vp = static_cast<float>(base + h), vm = static_cast<float>(base - h);
      *v = vp;
      const double lp = loss();
      *v = vm;
      const double lm = loss();
      *v = base;
      return (lp - lm) / (static_cast<double>(vp) - static_cast<double>(vm));
    };
    const double g1 = g(kH), g2 = g(2 * kH);
    return (4 * g1 - g2) / 3;
  }

  std::vector<double> fd_x() {
    std::vector<double> out(x_.data.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = fd(&x_.data[i]);
    return out;
  }

  std::vector<double> fd_param(Param& p) {
    std::vector<double> out(p.value.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = fd(&p.value[i]);
    return out;
  }

 private:
  Module& m_;
  Tensor x_, y_;
  std::vector<float> w_;
};

// Analytic gradients of L = sum w*y: dx, and the grads of every parameter (in parameters() order).
struct Analytic {
  std::vector<float> y, dx;
  std::vector<std::vector<float>> grads;
};

Analytic analytic(Module& m, const Tensor& x, const std::vector<float>& w) {
  Analytic a;
  Tensor y, dx;
  m.forward(x, y, true);
  a.y = y.data;
  m.backward(tensor(y.shape, w), dx);
  a.dx = dx.data;
  for (Param* p : m.parameters()) a.grads.push_back(p->grad);
  return a;
}

// Runs the full check for one module and input; prints the max differences.
void check_module_gradients(Module& m, const Tensor& x, uint64_t seed, double atol, double rtol,
                            const std::string& label) {
  NRng rng(seed);
  Tensor y;
  m.forward(x, y, true);
  const std::vector<float> w = normals(rng, y.data.size());
  const Analytic a = analytic(m, x, w);
  FiniteDiff fd(m, x, w);
  const std::vector<double> fdx = fd.fd_x();
  EXPECT_CLOSE(label + " dx", a.dx, fdx, atol, rtol);
  std::cout << "[ gradcheck ] " << label << ": max |dx - fd| = " << max_abs_diff(a.dx, fdx);
  const std::vector<Param*> params = m.parameters();
  for (size_t k = 0; k < params.size(); ++k) {
    const std::vector<double> fdp = fd.fd_param(*params[k]);
    EXPECT_CLOSE(label + " d" + params[k]->name, a.grads[k], fdp, atol, rtol);
    std::cout << ", max |d" << params[k]->name << " - fd| = " << max_abs_diff(a.grads[k], fdp);
  }
  std::cout << "\n";
}

// ---- gradient checks: the sweep ---------------------------------------------------------------

struct LayerConfig {
  std::string name;
  std::function<std::unique_ptr<Module>(NRng&)> make;
  Shape shape;
  Input input = Input::kNormal;
  double atol = kAtol, rtol = kRtol;
  uint64_t seed = 1;
};

void PrintTo(const LayerConfig& c, std::ostream* os) { *os << c.name; }

std::vector<LayerConfig> layer_configs() {
  std::vector<LayerConfig> out;
  uint64_t seed = 5000;
  auto add = [&](LayerConfig c) {
    c.seed = ++seed;
    out.push_back(std::move(c));
  };

  // Linear: [N, in] -> [N, out], with and without bias.
  struct Lin { int64_t N, in, out; bool bias; };
  for (const Lin& l : std::vector<Lin>{{1, 1, 1, true}, {3, 4, 5, true}, {4, 7, 3, false},
                                       {5, 16, 8, true}, {2, 5, 5, true}}) {
    add({"linear_n" + std::to_string(l.N) + "_in" + std::to_string(l.in) + "_out" +
             std::to_string(l.out) + (l.bias ? "" : "_nobias"),
         [l](NRng& r) { return std::make_unique<Linear>(l.in, l.out, r, l.bias); },
         {l.N, l.in}});
  }

  // Conv2d: stride {1,2} x padding {0,1} x kernel {1,3} on an odd-sized 3-channel input, plus
  // single-channel, no-bias, 5x5-kernel and 2x2-input cases.
  for (int64_t k : {1, 3})
    for (int64_t s : {1, 2})
      for (int64_t p : {0, 1})
        add({"conv2d_2x3x7x6_out4_k" + std::to_string(k) + "_s" + std::to_string(s) + "_p" +
                 std::to_string(p),
             [=](NRng& r) { return std::make_unique<Conv2d>(3, 4, k, s, p, r); }, {2, 3, 7, 6}});
  add({"conv2d_2x1x5x5_out2_k3_s1_p1", [](NRng& r) { return std::make_unique<Conv2d>(1, 2, 3, 1, 1, r); },
       {2, 1, 5, 5}});
  add({"conv2d_1x2x5x7_out3_k3_s2_p0_nobias",
       [](NRng& r) { return std::make_unique<Conv2d>(2, 3, 3, 2, 0, r, false); }, {1, 2, 5, 7}});
  add({"conv2d_2x2x9x9_out3_k5_s2_p2", [](NRng& r) { return std::make_unique<Conv2d>(2, 3, 5, 2, 2, r); },
       {2, 2, 9, 9}});
  add({"conv2d_2x3x2x2_out2_k3_s1_p1", [](NRng& r) { return std::make_unique<Conv2d>(3, 2, 3, 1, 1, r); },
       {2, 3, 2, 2}});
  add({"conv2d_3x5x3x3_out2_k3_s1_p0", [](NRng& r) { return std::make_unique<Conv2d>(5, 2, 3, 1, 0, r); },
       {3, 5, 3, 3}});

  // Activations (any shape).
  for (const Shape& s : std::vector<Shape>{{2, 3, 4}, {5, 7}, {2, 3, 3, 2}, {6}}) {
    LayerConfig relu{"relu_" + shape_tag(s), [](NRng&) { return std::make_unique<ReLU>(); }, s};
    relu.input = Input::kAwayFromZero;
    add(relu);
    add({"tanh_" + shape_tag(s), [](NRng&) { return std::make_unique<Tanh>(); }, s});
  }

  // MaxPool2d 2/2 and 3/2 (overlapping windows), 3/3, with odd sizes (floor output size).
  struct Pool { Shape s; int64_t k, stride; };
  for (const Pool& p : std::vector<Pool>{{{2, 3, 8, 8}, 2, 2}, {{2, 2, 7, 5}, 2, 2},
                                         {{2, 2, 9, 7}, 3, 2}, {{1, 3, 7, 7}, 3, 3},
                                         {{2, 1, 5, 6}, 3, 1}}) {
    LayerConfig c{"maxpool2d_" + shape_tag(p.s) + "_k" + std::to_string(p.k) + "_s" +
                      std::to_string(p.stride),
                  [p](NRng&) { return std::make_unique<MaxPool2d>(p.k, p.stride); }, p.s};
    c.input = Input::kDistinct;
    add(c);
  }

  // GlobalAvgPool and Flatten.
  for (const Shape& s : std::vector<Shape>{{2, 3, 4, 5}, {1, 2, 1, 1}, {2, 3, 5}}) {
    add({"globalavgpool_" + shape_tag(s), [](NRng&) { return std::make_unique<GlobalAvgPool>(); }, s});
  }
  for (const Shape& s : std::vector<Shape>{{2, 3, 4}, {2, 3, 2, 2}, {3, 5}}) {
    add({"flatten_" + shape_tag(s), [](NRng&) { return std::make_unique<Flatten>(); }, s});
  }

  // Linear and Conv2d in the other weight modes (weight norm: nonlinear in weight_g and weight_v;
  // cosine: nonlinear in x and the weight, smooth away from zero vectors), with the norm layers'
  // tolerance: Richardson leaves O(h^4) of truncation.
  using normlab::WeightMode;
  for (WeightMode mode : {WeightMode::weight_norm, WeightMode::cosine, WeightMode::centered_cosine}) {
    const std::string tag = normlab::weight_mode_name(mode);
    struct WLin { int64_t N, in, out; bool bias; };
    for (const WLin& l : std::vector<WLin>{{3, 4, 5, true}, {4, 7, 3, false}, {2, 6, 6, true}}) {
      LayerConfig c{"linear_" + tag + "_n" + std::to_string(l.N) + "_in" + std::to_string(l.in) +
                        "_out" + std::to_string(l.out) + (l.bias ? "" : "_nobias"),
                    [l, mode](NRng& r) { return std::make_unique<Linear>(l.in, l.out, r, l.bias, mode); },
                    {l.N, l.in}};
      c.atol = kNormAtol;
      c.rtol = kNormRtol;
      add(c);
    }
    struct WConv { Shape s; int64_t O, K, stride, pad; bool bias; };
    for (const WConv& v : std::vector<WConv>{{{2, 3, 7, 6}, 4, 3, 1, 1, true},
                                            {{2, 3, 7, 6}, 4, 3, 2, 0, false},
                                            {{2, 3, 4, 5}, 2, 1, 1, 0, true},
                                            {{1, 2, 9, 9}, 3, 5, 2, 2, false}}) {
      LayerConfig c{"conv2d_" + tag + "_" + shape_tag(v.s) + "_out" + std::to_string(v.O) + "_k" +
                        std::to_string(v.K) + "_s" + std::to_string(v.stride) + "_p" +
                        std::to_string(v.pad) + (v.bias ? "" : "_nobias"),
                    [v, mode](NRng& r) {
                      return std::make_unique<Conv2d>(v.s[1], v.O, v.K, v.stride, v.pad, r, v.bias, mode);
                    },
                    v.s};
      c.atol = kNormAtol;
      c.rtol = kNormRtol;
      add(c);
    }
  }

  // Normalization layers through NormModule (smooth but nonlinear; options from the shape).
  struct Norm { std::string method; Shape s; };
  for (const Norm& n : std::vector<Norm>{{"batchnorm", {4, 3, 2, 2}}, {"batchnorm", {6, 5}},
                                         {"layernorm", {3, 12}}, {"layernorm", {2, 3, 2, 2}},
                                         {"groupnorm", {2, 6, 2, 3}}, {"instancenorm", {2, 3, 9}},
                                         {"batchrenorm", {5, 3}}}) {
    LayerConfig c{"norm_" + n.method + "_" + shape_tag(n.s),
                  [n](NRng&) -> std::unique_ptr<Module> {
                    // batchrenorm: rMax 1, dMax 0 and momentum 0 keep r = 1, d = 0 fixed.
                    const json options = n.method == "batchrenorm"
                                             ? json{{"rMax", 1}, {"dMax", 0}, {"momentum", 0}}
                                             : json::object();
                    return normlab::make_norm_module(n.method, options, n.s);
                  },
                  n.s};
    c.atol = kNormAtol;
    c.rtol = kNormRtol;
    add(c);
  }
  // Residual blocks y = x + f(x): dense; convolutional with a normalization inside; with batch
  // statistics inside (they couple the samples); nested; and the empty block (f the identity,
  // y = 2x). Tanh keeps f smooth; with a normalization inside, the norm layers' tolerance.
  auto block = [](Body body) { return std::make_unique<Residual>(std::move(body)); };
  add({"residual_linear_tanh_linear_3x6", [block](NRng& r) {
         Body f;
         f.push_back(std::make_unique<Linear>(6, 4, r));
         f.push_back(std::make_unique<Tanh>());
         f.push_back(std::make_unique<Linear>(4, 6, r));
         return block(std::move(f));
       },
       {3, 6}});
  LayerConfig conv_block{"residual_conv_groupnorm_tanh_conv_2x4x5x4", [block](NRng& r) {
                           Body f;
                           f.push_back(std::make_unique<Conv2d>(4, 3, 3, 1, 1, r));
                           f.push_back(normlab::make_norm_module("groupnorm", json::object(), {2, 3, 5, 4}));
                           f.push_back(std::make_unique<Tanh>());
                           f.push_back(std::make_unique<Conv2d>(3, 4, 3, 1, 1, r));
                           return block(std::move(f));
                         },
                         {2, 4, 5, 4}};
  conv_block.atol = kNormAtol;
  conv_block.rtol = kNormRtol;
  add(conv_block);
  LayerConfig bn_block{"residual_linear_batchnorm_tanh_4x5", [block](NRng& r) {
                         Body f;
                         f.push_back(std::make_unique<Linear>(5, 5, r));
                         f.push_back(normlab::make_norm_module("batchnorm", json::object(), {4, 5}));
                         f.push_back(std::make_unique<Tanh>());
                         return block(std::move(f));
                       },
                       {4, 5}};
  bn_block.atol = kNormAtol;
  bn_block.rtol = kNormRtol;
  add(bn_block);
  add({"residual_nested_3x5", [block](NRng& r) {
         Body inner;
         inner.push_back(std::make_unique<Linear>(5, 5, r));
         inner.push_back(std::make_unique<Tanh>());
         Body f;
         f.push_back(std::make_unique<Linear>(5, 5, r));
         f.push_back(std::make_unique<Tanh>());
         f.push_back(block(std::move(inner)));
         return block(std::move(f));
       },
       {3, 5}});
  add({"residual_empty_2x3", [block](NRng&) { return block(Body{}); }, {2, 3}});
  return out;
}

class LayerGrad : public ::testing::TestWithParam<LayerConfig> {};

TEST_P(LayerGrad, AnalyticMatchesFiniteDifference) {
  const LayerConfig& c = GetParam();
  NRng rng(c.seed);
  std::unique_ptr<Module> m = c.make(rng);
  Tensor x = tensor(c.shape, draw_input(rng, static_cast<size_t>(normlab::numel(c.shape)), c.input));
  // Non-trivial parameters everywhere (norm layers start at gamma = 1, beta = 0).
  if (dynamic_cast<NormModule*>(m.get()) != nullptr) {
    for (Param* p : m->parameters()) {
      p->value = normals(rng, p->value.size(), p->name == "gamma" ? 1.0 : 0.0, 0.3);
    }
  }
  // Weight norm starts with g = ||v||; move g away from it so that g/||v|| matters.
  for (Param* p : m->parameters()) {
    if (p->name != "weight_g") continue;
    for (float& g : p->value) g *= static_cast<float>(rng.uniform(0.5, 1.5));
  }
  check_module_gradients(*m, x, c.seed * 7 + 1, c.atol, c.rtol, c.name);
}

INSTANTIATE_TEST_SUITE_P(Sweep, LayerGrad, ::testing::ValuesIn(layer_configs()), ParamName());

// ---- gradient checks: the tolerance catches the classic mistakes ------------------------------

// Conv2d's dx with the kernel flipped spatially (a true convolution where the forward is a
// cross-correlation) must fail the check that the real dx passes.
TEST(GradCheckSensitivity, ConvDxWithFlippedKernelFails) {
  struct Cfg { Shape s; int64_t O, K, stride, pad; };
  for (const Cfg& c : std::vector<Cfg>{{{2, 3, 7, 6}, 4, 3, 1, 1}, {{2, 3, 7, 6}, 4, 3, 2, 0},
                                       {{2, 2, 9, 9}, 3, 5, 2, 2}}) {
    SCOPED_TRACE(shape_tag(c.s) + "_k" + std::to_string(c.K));
    NRng rng(11);
    Conv2d conv(c.s[1], c.O, c.K, c.stride, c.pad, rng);
    const Tensor x = tensor(c.s, normals(rng, static_cast<size_t>(normlab::numel(c.s))));
    Tensor y;
    conv.forward(x, y, true);
    const std::vector<float> w = normals(rng, y.data.size());
    const int64_t C = c.s[1], K = c.K;
    std::vector<float> flipped(conv.weight().value.size());
    for (int64_t oc = 0; oc < c.O * C; ++oc)
      for (int64_t i = 0; i < K; ++i)
        for (int64_t j = 0; j < K; ++j)
          flipped[(oc * K + i) * K + j] = conv.weight().value[(oc * K + K - 1 - i) * K + (K - 1 - j)];
    const int64_t Ho = y.shape[2], Wo = y.shape[3];
    const size_t cols = static_cast<size_t>(C * K * K * Ho * Wo);
    std::vector<float> dx(x.data.size()), dw(flipped.size()), db(static_cast<size_t>(c.O)),
        col(cols), dcol(cols);
    normlab::conv2d_backward(dx.data(), dw.data(), db.data(), col.data(), dcol.data(), w.data(),
                             x.ptr(), flipped.data(), c.s[0], C, c.s[2], c.s[3], c.O, K, c.stride,
                             c.pad);
    FiniteDiff fd(conv, x, w);
    const std::vector<double> fdx = fd.fd_x();
    EXPECT_FALSE(check_close("flipped-kernel dx", dx, fdx, kAtol, kRtol));
    EXPECT_TRUE(check_close("dx", analytic(conv, x, w).dx, fdx, kAtol, kRtol));
  }
}

// Linear's dW transposed (x^T dy instead of dy^T x; same shape when in == out) must fail.
TEST(GradCheckSensitivity, LinearTransposedDweightFails) {
  NRng rng(12);
  Linear lin(5, 5, rng);
  const Tensor x = tensor({3, 5}, normals(rng, 15));
  const std::vector<float> w = normals(rng, 15);
  const Analytic a = analytic(lin, x, w);
  std::vector<float> transposed(25);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 5; ++j) transposed[i * 5 + j] = a.grads[0][j * 5 + i];
  FiniteDiff fd(lin, x, w);
  const std::vector<double> fdw = fd.fd_param(lin.weight());
  EXPECT_FALSE(check_close("transposed dweight", transposed, fdw, kAtol, kRtol));
  EXPECT_TRUE(check_close("dweight", a.grads[0], fdw, kAtol, kRtol));
}

// Tanh's derivative taken at x (1 - x^2) instead of at y (1 - tanh(x)^2) must fail.
TEST(GradCheckSensitivity, TanhDerivativeAtXFails) {
  NRng rng(13);
  Tanh tanh_layer;
  const Tensor x = tensor({4, 6}, normals(rng, 24));
  const std::vector<float> w = normals(rng, 24);
  std::vector<float> wrong(24);
  for (size_t i = 0; i < 24; ++i) wrong[i] = w[i] * (1.0f - x.data[i] * x.data[i]);
  FiniteDiff fd(tanh_layer, x, w);
  const std::vector<double> fdx = fd.fd_x();
  EXPECT_FALSE(check_close("tanh dx at x", wrong, fdx, kAtol, kRtol));
  EXPECT_TRUE(check_close("tanh dx", analytic(tanh_layer, x, w).dx, fdx, kAtol, kRtol));
}

// ---- gradient checks: losses ------------------------------------------------------------------

// Richardson central difference of a double-valued function of one float scalar.
template <typename F>
double fd_scalar(float* v, F&& f) {
  const float base = *v;
  auto g = [&](double h) {
    const float vp = static_cast<float>(base + h), vm = static_cast<float>(base - h);
    *v = vp;
    const double lp = f();
    *v = vm;
    const double lm = f();
    *v = base;
    return (lp - lm) / (static_cast<double>(vp) - static_cast<double>(vm));
  };
  return (4 * g(kH) - g(2 * kH)) / 3;
}

struct CeCfg { int64_t N, K; double scale, offset; };

class CrossEntropyGrad : public ::testing::TestWithParam<CeCfg> {};

TEST_P(CrossEntropyGrad, AnalyticMatchesFiniteDifference) {
  const CeCfg c = GetParam();
  NRng rng(static_cast<uint64_t>(100 * c.N + c.K));
  std::vector<float> logits = normals(rng, static_cast<size_t>(c.N * c.K), c.offset, c.scale);
  std::vector<int32_t> labels(static_cast<size_t>(c.N));
  for (int32_t& l : labels) l = static_cast<int32_t>(rng.below(static_cast<uint32_t>(c.K)));
  std::vector<float> dlogits(logits.size()), probs(logits.size());
  const double loss = normlab::softmax_cross_entropy(dlogits.data(), probs.data(), logits.data(),
                                                     labels.data(), c.N, c.K);
  EXPECT_TRUE(std::isfinite(loss));
  std::vector<double> fd(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    fd[i] = fd_scalar(&logits[i], [&] {
      return normlab::softmax_cross_entropy(nullptr, nullptr, logits.data(), labels.data(), c.N, c.K);
    });
  }
  EXPECT_CLOSE("dlogits", dlogits, fd, kLossAtol, kLossRtol);
  std::cout << "[ gradcheck ] cross_entropy N=" << c.N << " K=" << c.K << " scale=" << c.scale
            << ": max |dlogits - fd| = " << max_abs_diff(dlogits, fd) << "\n";
  // Probabilities sum to 1 per row.
  for (int64_t n = 0; n < c.N; ++n) {
    double s = 0;
    for (int64_t k = 0; k < c.K; ++k) s += probs[static_cast<size_t>(n * c.K + k)];
    EXPECT_NEAR(s, 1.0, 1e-6);
  }
  // Without the 1/N the gradient is N times too large: it must fail (N >= 2, K >= 2).
  if (c.N >= 2 && c.K >= 2) {
    std::vector<float> unscaled(dlogits);
    for (float& v : unscaled) v *= static_cast<float>(c.N);
    EXPECT_FALSE(check_close("dlogits without 1/N", unscaled, fd, kLossAtol, kLossRtol));
  }
}

INSTANTIATE_TEST_SUITE_P(Sweep, CrossEntropyGrad,
                         ::testing::Values(CeCfg{1, 1, 1, 0}, CeCfg{3, 1, 1, 0}, CeCfg{4, 5, 1, 0},
                                           CeCfg{8, 10, 3, 0}, CeCfg{2, 3, 20, 0},
                                           CeCfg{5, 4, 1, 1000}, CeCfg{1, 2, 0.5, -3}),
                         [](const ::testing::TestParamInfo<CeCfg>& info) {
                           const CeCfg& c = info.param;
                           return "n" + std::to_string(c.N) + "_k" + std::to_string(c.K) + "_" +
                                  std::to_string(info.index);
                         });

TEST(MseGrad, AnalyticMatchesFiniteDifference) {
  for (int64_t n : {1, 7, 40}) {
    SCOPED_TRACE("n = " + std::to_string(n));
    NRng rng(static_cast<uint64_t>(n));
    std::vector<float> pred = normals(rng, static_cast<size_t>(n)), target = normals(rng, static_cast<size_t>(n));
    std::vector<float> dpred(pred.size());
    const double loss = normlab::mse(dpred.data(), pred.data(), target.data(), n);
    double want = 0;
    for (int64_t i = 0; i < n; ++i) want += std::pow(double{pred[i]} - double{target[i]}, 2);
    EXPECT_NEAR(loss, want / static_cast<double>(n), 1e-12);
    std::vector<double> fd(pred.size());
    for (size_t i = 0; i < pred.size(); ++i) {
      fd[i] = fd_scalar(&pred[i], [&] { return normlab::mse(nullptr, pred.data(), target.data(), n); });
    }
    EXPECT_CLOSE("dpred", dpred, fd, kLossAtol, kLossRtol);
    std::vector<float> half(dpred);
    for (float& v : half) v *= 0.5f;
    EXPECT_FALSE(check_close("dpred without the factor 2", half, fd, kLossAtol, kLossRtol));
  }
}

// ---- PyTorch fixtures -------------------------------------------------------------------------

struct FixtureCase {
  std::string name;
  json data;
  std::string load_error;
};

std::vector<FixtureCase> load_cases() {
  std::vector<FixtureCase> out;
  try {
    const json doc = load_fixture("layers.json");
    for (const json& c : doc.at("cases")) out.push_back({c.at("name").get<std::string>(), c, ""});
  } catch (const std::exception& e) {
    out.push_back({"load_error", json(), e.what()});
  }
  return out;
}

const std::vector<FixtureCase>& cases_once() {
  static const std::vector<FixtureCase> cases = load_cases();
  return cases;
}

std::unique_ptr<Module> module_for(const json& c) {
  const std::string layer = c.at("layer").get<std::string>();
  const json& cfg = c.at("config");
  NRng rng(0);  // parameters are overwritten from the fixture
  const normlab::WeightMode mode = normlab::weight_mode_from_name(cfg.value("mode", "plain"), "fixture");
  if (layer == "linear") {
    return std::make_unique<Linear>(cfg.at("in").get<int64_t>(), cfg.at("out").get<int64_t>(), rng,
                                    cfg.at("bias").get<bool>(), mode);
  }
  if (layer == "conv2d") {
    return std::make_unique<Conv2d>(cfg.at("in").get<int64_t>(), cfg.at("out").get<int64_t>(),
                                    cfg.at("kernel").get<int64_t>(), cfg.at("stride").get<int64_t>(),
                                    cfg.at("padding").get<int64_t>(), rng, cfg.at("bias").get<bool>(),
                                    mode);
  }
  if (layer == "maxpool2d") {
    return std::make_unique<MaxPool2d>(cfg.at("kernel").get<int64_t>(), cfg.at("stride").get<int64_t>());
  }
  if (layer == "globalavgpool") return std::make_unique<GlobalAvgPool>();
  if (layer == "relu") return std::make_unique<ReLU>();
  if (layer == "tanh") return std::make_unique<Tanh>();
  throw std::runtime_error("unknown fixture layer " + layer);
}

class LayersFixture : public ::testing::TestWithParam<FixtureCase> {};

TEST_P(LayersFixture, MatchesPyTorch) {
  const FixtureCase& fc = GetParam();
  ASSERT_TRUE(fc.load_error.empty()) << fc.load_error;
  const json& c = fc.data;
  const std::string layer = c.at("layer").get<std::string>();

  if (layer == "cross_entropy") {
    const int64_t N = c.at("N").get<int64_t>(), K = c.at("K").get<int64_t>();
    const std::vector<float> logits = floats(c.at("logits"));
    const std::vector<int32_t> labels = c.at("labels").get<std::vector<int32_t>>();
    std::vector<float> dlogits(logits.size()), probs(logits.size());
    const double loss = normlab::softmax_cross_entropy(dlogits.data(), probs.data(), logits.data(),
                                                       labels.data(), N, K);
    EXPECT_CLOSE("loss", std::vector<double>{loss}, std::vector<double>{c.at("loss").get<double>()},
                 kFixtureAtol, kFixtureRtol);
    EXPECT_CLOSE("dlogits", dlogits, floats(c.at("dlogits")), kFixtureAtol, kFixtureRtol);
    EXPECT_CLOSE("probs", probs, floats(c.at("probs")), kFixtureAtol, kFixtureRtol);
    return;
  }
  if (layer == "mse") {
    const int64_t n = c.at("n").get<int64_t>();
    const std::vector<float> pred = floats(c.at("pred")), target = floats(c.at("target"));
    std::vector<float> dpred(pred.size());
    const double loss = normlab::mse(dpred.data(), pred.data(), target.data(), n);
    EXPECT_CLOSE("loss", std::vector<double>{loss}, std::vector<double>{c.at("loss").get<double>()},
                 kFixtureAtol, kFixtureRtol);
    EXPECT_CLOSE("dpred", dpred, floats(c.at("dpred")), kFixtureAtol, kFixtureRtol);
    return;
  }

  std::unique_ptr<Module> m = module_for(c);
  const std::vector<Param*> params = m->parameters();
  if (c.contains("params")) {
    ASSERT_EQ(params.size(), c["params"].size());
    for (const auto& item : c["params"].items()) {
      Param& p = param(*m, item.key());
      const std::vector<float> v = floats(item.value());
      ASSERT_EQ(v.size(), p.value.size()) << item.key();
      p.value = v;
    }
  } else {
    ASSERT_TRUE(params.empty());
  }
  const Tensor x = tensor(shape_of(c.at("inputShape")), floats(c.at("x")));
  const Shape out_shape = shape_of(c.at("outputShape"));
  EXPECT_EQ(m->output_shape(x.shape), out_shape);
  Tensor y, dx;
  m->forward(x, y, true);
  ASSERT_EQ(y.shape, out_shape);
  EXPECT_CLOSE("y", y.data, floats(c.at("y")), kFixtureAtol, kFixtureRtol);
  m->backward(tensor(out_shape, floats(c.at("dy"))), dx);
  ASSERT_EQ(dx.shape, x.shape);
  EXPECT_CLOSE("dx", dx.data, floats(c.at("dx")), kFixtureAtol, kFixtureRtol);
  if (c.contains("grads")) {
    for (const auto& item : c["grads"].items()) {
      EXPECT_CLOSE("d" + item.key(), param(*m, item.key()).grad, floats(item.value()), kFixtureAtol,
                   kFixtureRtol);
    }
  }
  std::cout << "[ pytorch ] " << fc.name << ": max |diff| y " << max_abs_diff(y.data, floats(c.at("y")))
            << ", dx " << max_abs_diff(dx.data, floats(c.at("dx")));
  for (Param* p : params) std::cout << ", d" << p->name << " " << max_abs_diff(p->grad, floats(c.at("grads").at(p->name)));
  std::cout << "\n";
  // Inference mode gives the same output.
  Tensor y_infer;
  m->forward(x, y_infer, false);
  EXPECT_TRUE(check_identical("inference y", y_infer.data, y.data));
}

INSTANTIATE_TEST_SUITE_P(PyTorch, LayersFixture, ::testing::ValuesIn(cases_once()), ParamName());

// Guards against a vacuous pass (a truncated fixture file would just run fewer tests).
TEST(LayersFixtureFile, HasEveryKindOfCase) {
  const json doc = load_fixture("layers.json");
  std::map<std::string, int> count;
  for (const json& c : doc.at("cases")) {
    count[c.at("layer").get<std::string>()]++;
    if (c.contains("config") && c["config"].contains("mode")) {
      count[c["layer"].get<std::string>() + "_" + c["config"]["mode"].get<std::string>()]++;
    }
  }
  EXPECT_GE(count["linear_weightnorm"], 2);
  EXPECT_GE(count["conv2d_weightnorm"], 3);
  EXPECT_GE(count["linear_cosine"], 3);
  EXPECT_GE(count["linear_centered_cosine"], 3);
  EXPECT_GE(count["conv2d_cosine"], 4);
  EXPECT_GE(count["conv2d_centered_cosine"], 4);
  EXPECT_GE(count["linear"], 4);
  EXPECT_GE(count["conv2d"], 6);
  EXPECT_GE(count["maxpool2d"], 4);
  EXPECT_GE(count["globalavgpool"], 2);
  EXPECT_GE(count["relu"], 1);
  EXPECT_GE(count["tanh"], 1);
  EXPECT_GE(count["cross_entropy"], 4);
  EXPECT_GE(count["mse"], 2);
  EXPECT_EQ(doc["cases"].size(), cases_once().size());
}

// ---- initialisation ---------------------------------------------------------------------------

// Every value in [-bound, bound); mean ~0 and variance bound^2/3 within 10% (enough draws that the
// sampling error of the variance, sqrt(0.8/n) relative, is a few percent at most).
void check_uniform(const std::string& label, const std::vector<float>& v, double bound,
                   bool check_variance) {
  SCOPED_TRACE(label);
  double sum = 0, sq = 0;
  for (float e : v) {
    ASSERT_GE(e, -bound);
    ASSERT_LT(e, bound);
    sum += e;
    sq += static_cast<double>(e) * e;
  }
  if (!check_variance) return;
  const double n = static_cast<double>(v.size());
  ASSERT_GE(n, 2000) << "too few values for a 10% variance check";
  const double mean = sum / n, var = sq / n - mean * mean, want = bound * bound / 3;
  EXPECT_LT(std::fabs(mean), 0.05 * bound);
  EXPECT_NEAR(var, want, 0.1 * want);
}

TEST(Init, LinearBoundsAndVariance) {
  NRng rng(3);
  Linear lin(16, 4096, rng);
  const double bound = 1.0 / std::sqrt(16.0);
  check_uniform("weight", lin.weight().value, bound, true);
  check_uniform("bias", lin.bias().value, bound, true);
  NRng rng2(4);
  Linear wide(784, 32, rng2);
  check_uniform("weight 784->32", wide.weight().value, 1.0 / std::sqrt(784.0), true);
  check_uniform("bias 784->32", wide.bias().value, 1.0 / std::sqrt(784.0), false);
}

TEST(Init, Conv2dBoundsAndVariance) {
  NRng rng(5);
  Conv2d conv(8, 64, 3, 1, 1, rng);  // fan_in = 72
  const double bound = 1.0 / std::sqrt(72.0);
  check_uniform("weight", conv.weight().value, bound, true);
  check_uniform("bias", conv.bias().value, bound, false);
  NRng rng2(6);
  Conv2d pointwise(2, 2048, 1, 1, 0, rng2);  // fan_in = 2: 2048 biases
  check_uniform("1x1 weight", pointwise.weight().value, 1.0 / std::sqrt(2.0), true);
  check_uniform("1x1 bias", pointwise.bias().value, 1.0 / std::sqrt(2.0), true);
}

TEST(Init, SameSeedSameWeights) {
  NRng a(7), b(7), c(8);
  Linear la(10, 6, a), lb(10, 6, b), lc(10, 6, c);
  EXPECT_EQ(la.weight().value, lb.weight().value);
  EXPECT_EQ(la.bias().value, lb.bias().value);
  EXPECT_NE(la.weight().value, lc.weight().value);
  NRng d(7), e(7);
  Conv2d ca(3, 4, 3, 1, 1, d), cb(3, 4, 3, 1, 1, e);
  EXPECT_EQ(ca.weight().value, cb.weight().value);
  EXPECT_EQ(ca.bias().value, cb.bias().value);
}

// Draw order: the weight row-major, then the bias, each rng.uniform(-bound, bound) as float.
TEST(Init, DrawOrderWeightThenBias) {
  NRng rng(7), ref(7);
  Linear lin(3, 2, rng);
  const double bound = 1.0 / std::sqrt(3.0);
  for (float v : lin.weight().value) EXPECT_EQ(v, static_cast<float>(ref.uniform(-bound, bound)));
  for (float v : lin.bias().value) EXPECT_EQ(v, static_cast<float>(ref.uniform(-bound, bound)));
  // The generator is left just after the bias draws.
  EXPECT_EQ(rng.next_u32(), ref.next_u32());
  // Without bias only the weight is drawn.
  NRng r2(9), ref2(9);
  Conv2d conv(2, 3, 3, 1, 0, r2, false);
  const double cb = 1.0 / std::sqrt(18.0);
  for (float v : conv.weight().value) EXPECT_EQ(v, static_cast<float>(ref2.uniform(-cb, cb)));
  EXPECT_TRUE(conv.bias().value.empty());
  EXPECT_EQ(r2.next_u32(), ref2.next_u32());
}

TEST(Params, NamesShapesAndDecay) {
  NRng rng(1);
  Linear lin(4, 3, rng);
  ASSERT_EQ(lin.parameters().size(), 2u);
  EXPECT_EQ(lin.parameters()[0]->name, "weight");
  EXPECT_TRUE(lin.parameters()[0]->decay);
  EXPECT_EQ(lin.parameters()[0]->value.size(), 12u);
  EXPECT_EQ(lin.parameters()[1]->name, "bias");
  EXPECT_FALSE(lin.parameters()[1]->decay);
  EXPECT_EQ(Linear(4, 3, rng, false).parameters().size(), 1u);
  Conv2d conv(2, 5, 3, 1, 1, rng);
  ASSERT_EQ(conv.parameters().size(), 2u);
  EXPECT_EQ(conv.parameters()[0]->value.size(), 5u * 2 * 3 * 3);
  EXPECT_TRUE(conv.parameters()[0]->decay);
  EXPECT_FALSE(conv.parameters()[1]->decay);
  EXPECT_EQ(ReLU().parameters().size(), 0u);
  EXPECT_EQ(MaxPool2d(2, 2).parameters().size(), 0u);
  auto bn = normlab::make_norm_module("batchnorm", json::object(), {4, 3});
  ASSERT_EQ(bn->parameters().size(), 2u);
  for (Param* p : bn->parameters()) EXPECT_FALSE(p->decay) << p->name;
  EXPECT_EQ(bn->parameters()[0], &bn->layer().params()[0]);  // the layer's own params
}

// ---- module behaviour -------------------------------------------------------------------------

// An inference forward between a training forward and its backward does not disturb the cache.
TEST(Modules, InferenceForwardKeepsTrainingCache) {
  NRng rng(21);
  std::vector<std::unique_ptr<Module>> mods;
  mods.push_back(std::make_unique<Linear>(4, 3, rng));
  mods.push_back(std::make_unique<Conv2d>(2, 3, 3, 1, 1, rng));
  mods.push_back(std::make_unique<MaxPool2d>(2, 2));
  mods.push_back(std::make_unique<ReLU>());
  mods.push_back(std::make_unique<Tanh>());
  mods.push_back(std::make_unique<GlobalAvgPool>());
  mods.push_back(std::make_unique<Flatten>());
  for (auto& m : mods) {
    SCOPED_TRACE(m->kind());
    const Shape s = m->kind() == "linear" ? Shape{2, 4} : Shape{2, 2, 4, 4};
    const Tensor x1 = tensor(s, normals(rng, static_cast<size_t>(normlab::numel(s))));
    const Tensor x2 = tensor(s, normals(rng, static_cast<size_t>(normlab::numel(s))));
    Tensor y, y2, dx_ref, dx;
    m->forward(x1, y, true);
    const Tensor dy = tensor(y.shape, normals(rng, y.data.size()));
    m->backward(dy, dx_ref);
    std::vector<std::vector<float>> grads_ref;
    for (Param* p : m->parameters()) grads_ref.push_back(p->grad);
    m->forward(x2, y2, false);
    m->backward(dy, dx);
    EXPECT_TRUE(check_identical("dx", dx.data, dx_ref.data));
    for (size_t k = 0; k < grads_ref.size(); ++k) {
      EXPECT_TRUE(check_identical("grad", m->parameters()[k]->grad, grads_ref[k]));
    }
    EXPECT_EQ(m->output_shape(x1.shape), y.shape);
  }
}

TEST(Modules, MaxPoolTiesRouteToFirstMaximum) {
  MaxPool2d pool(2, 2);
  const Tensor x = tensor({1, 1, 2, 4}, {1, 1, 3, 2,  //
                                         1, 1, 3, 3});
  Tensor y, dx;
  pool.forward(x, y, true);
  EXPECT_EQ(y.data, (std::vector<float>{1, 3}));
  pool.backward(tensor({1, 1, 1, 2}, {10, 20}), dx);
  EXPECT_EQ(dx.data, (std::vector<float>{10, 0, 20, 0, 0, 0, 0, 0}));
}

TEST(Modules, ReluGradientAtZeroIsZero) {
  ReLU relu;
  Tensor y, dx;
  relu.forward(tensor({3}, {-1, 0, 2}), y, true);
  relu.backward(tensor({3}, {5, 5, 5}), dx);
  EXPECT_EQ(dx.data, (std::vector<float>{0, 0, 5}));
}

TEST(Modules, FlattenShapes) {
  Flatten f;
  Tensor y, dx;
  const Tensor x = tensor({2, 3, 2}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  f.forward(x, y, true);
  EXPECT_EQ(y.shape, (Shape{2, 6}));
  EXPECT_EQ(y.data, x.data);
  f.backward(y, dx);
  EXPECT_EQ(dx.shape, x.shape);
  EXPECT_EQ(dx.data, x.data);
}

TEST(Modules, Conv2dOutputShapes) {
  NRng rng(1);
  EXPECT_EQ(Conv2d(3, 8, 3, 1, 1, rng).output_shape({2, 3, 28, 28}), (Shape{2, 8, 28, 28}));
  EXPECT_EQ(Conv2d(3, 8, 3, 2, 1, rng).output_shape({2, 3, 7, 6}), (Shape{2, 8, 4, 3}));
  EXPECT_EQ(Conv2d(3, 8, 5, 2, 0, rng).output_shape({1, 3, 5, 6}), (Shape{1, 8, 1, 1}));
  EXPECT_EQ(Conv2d(1, 1, 3, 1, 1, rng).output_shape({1, 1, 1, 1}), (Shape{1, 1, 1, 1}));
  EXPECT_EQ(MaxPool2d(3, 2).output_shape({2, 3, 8, 8}), (Shape{2, 3, 3, 3}));
  EXPECT_EQ(GlobalAvgPool().output_shape({2, 3, 8, 8}), (Shape{2, 3}));
}

// Stride-1 convolutions take a direct path (no im2col; a contiguous col2im for "same" ones) that
// must give exactly the bits of the plain composition: im2col + gemm for y and dW, gemm + a
// scatter in col2im's order (c, ki, kj, oh, ow) for dx. Inputs with zeros (as after a ReLU);
// shapes with C*K*K and O above the GEMM's depth block of 256, odd widths, every padding.
TEST(Modules, Conv2dDirectPathIsIm2colGemmBitForBit) {
  struct Cfg { int64_t N, C, H, W, O, K, pad; };
  using normlab::Trans;
  for (const Cfg& c : std::vector<Cfg>{{3, 1, 28, 28, 8, 3, 1}, {2, 8, 14, 14, 16, 3, 1}, {2, 3, 9, 7, 5, 5, 2},
                                       {2, 4, 6, 9, 3, 3, 0}, {1, 3, 5, 6, 4, 2, 1}, {2, 2, 4, 5, 3, 1, 1},
                                       {1, 32, 5, 6, 7, 3, 1}, {1, 2, 5, 6, 300, 3, 1}, {2, 3, 3, 2, 5, 3, 3}}) {
    SCOPED_TRACE("C" + std::to_string(c.C) + " H" + std::to_string(c.H) + " W" + std::to_string(c.W) + " O" +
                 std::to_string(c.O) + " K" + std::to_string(c.K) + " pad" + std::to_string(c.pad));
    NRng rng(21);
    const int64_t Ho = normlab::conv_out_size(c.H, c.K, 1, c.pad), Wo = normlab::conv_out_size(c.W, c.K, 1, c.pad);
    const int64_t L = Ho * Wo, F = c.C * c.K * c.K, HW = c.H * c.W;
    std::vector<float> x = normals(rng, static_cast<size_t>(c.N * c.C * HW));
    std::vector<float> dy = normals(rng, static_cast<size_t>(c.N * c.O * L));
    for (size_t i = 0; i < x.size(); i += 3) x[i] = 0.0f;
    for (size_t i = 0; i < dy.size(); i += 4) dy[i] = 0.0f;
    const std::vector<float> w = normals(rng, static_cast<size_t>(c.O * F)), b = normals(rng, static_cast<size_t>(c.O));
    std::vector<float> col(static_cast<size_t>(F * L)), dcol(col.size());

    std::vector<float> y(dy.size()), dx(x.size()), dw(w.size()), db(b.size());
    normlab::conv2d_forward(y.data(), col.data(), x.data(), w.data(), b.data(), c.N, c.C, c.H, c.W, c.O, c.K, 1, c.pad);
    normlab::conv2d_backward(dx.data(), dw.data(), db.data(), col.data(), dcol.data(), dy.data(), x.data(), w.data(),
                             c.N, c.C, c.H, c.W, c.O, c.K, 1, c.pad);

    std::vector<float> ry(y.size()), rdx(x.size(), 0.0f), rdw(w.size());
    for (int64_t n = 0; n < c.N; ++n) {
      const float* xn = x.data() + n * c.C * HW;
      const float* dyn = dy.data() + n * c.O * L;
      float* yn = ry.data() + n * c.O * L;
      normlab::im2col(col.data(), xn, c.C, c.H, c.W, c.K, 1, c.pad, Ho, Wo);
      normlab::gemm(false, Trans::N, Trans::N, c.O, L, F, w.data(), F, col.data(), L, yn, L);
      for (int64_t o = 0; o < c.O; ++o)
        for (int64_t l = 0; l < L; ++l) yn[o * L + l] += b[static_cast<size_t>(o)];
      normlab::gemm(n > 0, Trans::N, Trans::T, c.O, F, L, dyn, L, col.data(), L, rdw.data(), F);
      normlab::gemm(false, Trans::T, Trans::N, F, L, c.O, w.data(), F, dyn, L, dcol.data(), L);
      for (int64_t ch = 0; ch < c.C; ++ch)
        for (int64_t ki = 0; ki < c.K; ++ki)
          for (int64_t kj = 0; kj < c.K; ++kj)
            for (int64_t oh = 0; oh < Ho; ++oh)
              for (int64_t ow = 0; ow < Wo; ++ow) {
                const int64_t ih = oh - c.pad + ki, iw = ow - c.pad + kj;
                if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
                rdx[static_cast<size_t>((n * c.C + ch) * HW + ih * c.W + iw)] +=
                    dcol[static_cast<size_t>(((ch * c.K + ki) * c.K + kj) * L + oh * Wo + ow)];
              }
    }
    const auto bits = [](const std::vector<float>& v) {
      std::vector<uint32_t> out(v.size());
      std::memcpy(out.data(), v.data(), v.size() * sizeof(float));
      return out;
    };
    EXPECT_EQ(bits(y), bits(ry));
    EXPECT_EQ(bits(dw), bits(rdw));
    EXPECT_EQ(bits(dx), bits(rdx));
  }
}

// y = x + relu(W x + b) by hand, two samples, one with a unit below the ReLU's kink:
//   W = [[1, 2], [3, -1]], b = [0.5, -0.5]
//   x1 = [1, -2]:     z = [-2.5, 4.5], f = [0, 4.5],  y = [1, 2.5]
//   x2 = [0.5, 0.5]:  z = [2, 0.5],    f = [2, 0.5],  y = [2.5, 1]
// Backward of dy1 = [1, 1], dy2 = [2, -1]: dz = dy where z > 0, so dz1 = [0, 1], dz2 = [2, -1];
//   dx = dy + W^T dz:  dx1 = [1, 1] + [3, -1] = [4, 0],  dx2 = [2, -1] + [-1, 5] = [1, 4]
//   dW = sum_n dz_n x_n^T = [[0, 0], [1, -2]] + [[1, 1], [-0.5, -0.5]] = [[1, 1], [0.5, -2.5]]
//   db = sum_n dz_n = [2, 0]
// Leaving out the skip path (dx = W^T dz, or y = f) or the ReLU mask fails every row.
TEST(Residual, HandComputedForwardAndBackward) {
  Body f;
  f.push_back(std::make_unique<Linear>(2, 2, std::vector<float>{1, 2, 3, -1}, std::vector<float>{0.5f, -0.5f}));
  f.push_back(std::make_unique<ReLU>());
  Residual res(std::move(f));
  EXPECT_EQ(res.kind(), "residual(linear relu)");
  Tensor y, dx;
  res.forward(tensor({2, 2}, {1, -2, 0.5f, 0.5f}), y, true);
  EXPECT_EQ(y.shape, (Shape{2, 2}));
  EXPECT_EQ(y.data, (std::vector<float>{1, 2.5f, 2.5f, 1}));
  EXPECT_EQ(res.output(0).data, (std::vector<float>{-2.5f, 4.5f, 2, 0.5f}));  // what f's layers gave
  res.backward(tensor({2, 2}, {1, 1, 2, -1}), dx);
  EXPECT_EQ(dx.data, (std::vector<float>{4, 0, 1, 4}));
  EXPECT_EQ(param(res, "weight").grad, (std::vector<float>{1, 1, 0.5f, -2.5f}));
  EXPECT_EQ(param(res, "bias").grad, (std::vector<float>{2, 0}));
  // The empty block is the identity: y = 2x, dx = 2 dy.
  Residual identity(Body{});
  identity.forward(tensor({1, 3}, {1, -2, 0.25f}), y, true);
  EXPECT_EQ(y.data, (std::vector<float>{2, -4, 0.5f}));
  identity.backward(tensor({1, 3}, {3, 0, -1}), dx);
  EXPECT_EQ(dx.data, (std::vector<float>{6, 0, -2}));
}

// A clone owns copies of the block's layers: training the original leaves it as it was.
TEST(Residual, CloneIsIndependent) {
  NRng rng(3);
  Body f;
  f.push_back(std::make_unique<Linear>(3, 3, rng));
  f.push_back(normlab::make_norm_module("batchnorm", json::object(), {4, 3}));
  Residual res(std::move(f));
  const std::unique_ptr<Module> copy = res.clone();
  EXPECT_EQ(copy->kind(), "residual(linear batchnorm)");
  const Tensor x = tensor({4, 3}, normals(rng, 12));
  Tensor y_copy, y_again, y;
  copy->forward(x, y_copy, false);
  res.forward(x, y, true);  // moves the original's running statistics
  for (Param* p : res.parameters()) {
    for (float& v : p->value) v *= 2;
  }
  copy->forward(x, y_again, false);
  EXPECT_TRUE(check_identical("clone's output", y_again.data, y_copy.data));
  ASSERT_EQ(copy->parameters().size(), res.parameters().size());
  EXPECT_NE(copy->parameters()[0], res.parameters()[0]);
}

TEST(Losses, CountCorrectFirstMaximumWins) {
  const std::vector<float> logits = {1, 3, 3,   // tie between 1 and 2: argmax 1
                                     5, 5, 5,   // all equal: argmax 0
                                     0, -1, 2};
  EXPECT_EQ(normlab::count_correct(logits.data(), std::vector<int32_t>{1, 0, 2}.data(), 3, 3), 3);
  EXPECT_EQ(normlab::count_correct(logits.data(), std::vector<int32_t>{2, 1, 2}.data(), 3, 3), 1);
}

TEST(Losses, CrossEntropyIsStableForHugeLogits) {
  const std::vector<float> logits = {1e30f, -1e30f, 0.0f, 88.0f, 89.0f, -1e4f};
  const std::vector<int32_t> labels = {1, 1};
  std::vector<float> d(6), p(6);
  const double loss = normlab::softmax_cross_entropy(d.data(), p.data(), logits.data(),
                                                     labels.data(), 2, 3);
  // Row 0: loss 2e30 (label -1e30 vs max 1e30); row 1: log(1 + e^-1) (label is the max).
  EXPECT_NEAR(loss, (2e30 + std::log1p(std::exp(-1.0))) / 2, 1e24);
  for (float v : d) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(p[0], 1.0f);
  EXPECT_NEAR(p[4], 1.0 / (1.0 + std::exp(-1.0)), 1e-7);
}

// ---- make_norm_module -------------------------------------------------------------------------

TEST(MakeNormModule, FillsShapeDependentOptions) {
  auto bn = normlab::make_norm_module("batchnorm", json::object(), {4, 3, 5, 5});
  EXPECT_EQ(normlab::layer_options(bn->layer())["channels"], 3);
  EXPECT_EQ(bn->kind(), "batchnorm");
  auto brn = normlab::make_norm_module("batchrenorm", nullptr, {4, 7});
  EXPECT_EQ(normlab::layer_options(brn->layer())["channels"], 7);
  auto in = normlab::make_norm_module("instancenorm", {{"eps", 1e-3}}, {4, 5, 6});
  EXPECT_EQ(normlab::layer_options(in->layer())["channels"], 5);
  EXPECT_EQ(normlab::layer_options(in->layer())["eps"], 1e-3);
  auto ln_cnn = normlab::make_norm_module("layernorm", json::object(), {4, 6, 3, 3});
  EXPECT_EQ(normlab::layer_options(ln_cnn->layer())["normalizedShape"], json({6, 3, 3}));
  auto ln_mlp = normlab::make_norm_module("layernorm", json::object(), {8, 20});
  EXPECT_EQ(normlab::layer_options(ln_mlp->layer())["normalizedShape"], json({20}));
  // Given options win.
  auto ln_given = normlab::make_norm_module("layernorm", {{"normalizedShape", {3}}}, {4, 6, 3, 3});
  EXPECT_EQ(normlab::layer_options(ln_given->layer())["normalizedShape"], json({3}));
  auto gn_given = normlab::make_norm_module("groupnorm", {{"groups", 2}}, {2, 12, 4, 4});
  EXPECT_EQ(normlab::layer_options(gn_given->layer())["groups"], 2);
}

TEST(MakeNormModule, GroupNormDefaultGroups) {
  // The largest divisor of C that is <= 8.
  const std::vector<std::pair<int64_t, int64_t>> table = {
      {1, 1}, {2, 2}, {5, 5}, {6, 6}, {7, 7}, {8, 8}, {10, 5}, {11, 1}, {12, 6}, {16, 8}, {32, 8},
      {36, 6}, {49, 7}, {128, 8}};
  for (const auto& [C, G] : table) {
    SCOPED_TRACE("C = " + std::to_string(C));
    EXPECT_EQ(normlab::default_groups(C), G);
    auto gn = normlab::make_norm_module("groupnorm", json::object(), {2, C, 3});
    EXPECT_EQ(normlab::layer_options(gn->layer())["groups"], G);
  }
}

TEST(MakeNormModule, ForwardAndBackwardAreTheLayers) {
  NRng rng(31);
  const Shape s = {4, 3, 2, 2};
  auto m = normlab::make_norm_module("groupnorm", {{"groups", 3}}, s);
  auto ref = normlab::create_norm("groupnorm", {{"channels", 3}, {"groups", 3}});
  const Tensor x = tensor(s, normals(rng, 48));
  const std::vector<float> dy = normals(rng, 48);
  Tensor y, dx;
  m->forward(x, y, true);
  m->backward(tensor(s, dy), dx);
  EXPECT_TRUE(check_identical("y", y.data, forward(*ref, x.data, s, true)));
  EXPECT_TRUE(check_identical("dx", dx.data, backward(*ref, dy)));
  EXPECT_TRUE(check_identical("dgamma", m->parameters()[0]->grad, param_grad(*ref, "gamma")));
}

TEST(MakeNormModule, OutputShapeDoesNotTouchState) {
  auto bn = normlab::make_norm_module("batchnorm", json::object(), {4, 3});
  set_state(bn->layer(), "runningMean", {1, 2, 3});
  EXPECT_EQ(bn->output_shape({1, 3}), (Shape{1, 3}));  // inference uses running stats: N = 1 is fine
  EXPECT_EQ(bn->output_shape({64, 3}), (Shape{64, 3}));
  EXPECT_EQ(state_value(bn->layer(), "runningMean"), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(state_value(bn->layer(), "numBatchesTracked"), (std::vector<float>{0}));
  EXPECT_TRUE(bn->layer().cached_shape().empty());
  // Conditions on the batch size are forward's: model builders track shapes with N = 1.
  auto bn_nostats = normlab::make_norm_module("batchnorm", {{"trackRunningStats", false}}, {1, 3});
  EXPECT_EQ(bn_nostats->output_shape({1, 3}), (Shape{1, 3}));
  Tensor y;
  EXPECT_NORMLAB_ERROR(bn_nostats->forward(Tensor({1, 3}), y, false),
                       HasSubstr("batchnorm: expected more than 1 value per channel"));
}

// ---- errors -----------------------------------------------------------------------------------

TEST(Errors, ConstructorSizes) {
  NRng rng(1);
  EXPECT_NORMLAB_ERROR(Linear(0, 3, rng), HasSubstr("linear: in_features must be a positive integer, got 0"));
  EXPECT_NORMLAB_ERROR(Linear(3, -2, rng), HasSubstr("linear: out_features must be a positive integer, got -2"));
  EXPECT_NORMLAB_ERROR(Conv2d(0, 3, 3, 1, 0, rng), HasSubstr("conv2d: in_channels must be a positive integer, got 0"));
  EXPECT_NORMLAB_ERROR(Conv2d(3, 0, 3, 1, 0, rng), HasSubstr("conv2d: out_channels must be a positive integer, got 0"));
  EXPECT_NORMLAB_ERROR(Conv2d(3, 4, 0, 1, 0, rng), HasSubstr("conv2d: kernel must be a positive integer, got 0"));
  EXPECT_NORMLAB_ERROR(Conv2d(3, 4, -3, 1, 0, rng), HasSubstr("conv2d: kernel must be a positive integer, got -3"));
  EXPECT_NORMLAB_ERROR(Conv2d(3, 4, 3, 0, 0, rng), HasSubstr("conv2d: stride must be a positive integer, got 0"));
  EXPECT_NORMLAB_ERROR(Conv2d(3, 4, 3, 1, -1, rng), HasSubstr("conv2d: padding must be >= 0, got -1"));
  EXPECT_NORMLAB_ERROR(Conv2d(1 << 20, 1 << 20, 3, 1, 0, rng), HasSubstr("conv2d: weight of"));
  EXPECT_NORMLAB_ERROR(Linear(int64_t{1} << 20, int64_t{1} << 20, rng), HasSubstr("linear: weight of"));
  EXPECT_NORMLAB_ERROR(MaxPool2d(0, 2), HasSubstr("maxpool2d: kernel must be a positive integer, got 0"));
  EXPECT_NORMLAB_ERROR(MaxPool2d(2, -1), HasSubstr("maxpool2d: stride must be a positive integer, got -1"));
  EXPECT_NORMLAB_ERROR(NormModule(nullptr), HasSubstr("layer must not be null"));
}

TEST(Errors, LinearInputs) {
  NRng rng(1);
  Linear lin(4, 2, rng);
  Tensor y;
  EXPECT_NORMLAB_ERROR(lin.forward(Tensor({2, 5}), y, true),
                       HasSubstr("linear: input shape [2,5] has 5 features, layer takes 4"));
  EXPECT_NORMLAB_ERROR(lin.forward(Tensor({2, 2, 2}), y, true),
                       HasSubstr("linear: input shape [2,2,2] must have 2 dims [N,features]"));
  EXPECT_NORMLAB_ERROR(lin.output_shape({4}), HasSubstr("linear: input shape [4] must have 2 dims"));
}

TEST(Errors, Conv2dInputs) {
  NRng rng(1);
  Conv2d conv(3, 4, 5, 1, 1, rng);
  Tensor y;
  EXPECT_NORMLAB_ERROR(conv.forward(Tensor({2, 3, 8}), y, true),
                       HasSubstr("conv2d: input shape [2,3,8] must have 4 dims [N,C,H,W]"));
  EXPECT_NORMLAB_ERROR(conv.forward(Tensor({2, 2, 8, 8}), y, true),
                       HasSubstr("conv2d: input shape [2,2,8,8] has 2 channels (dim 1), layer takes 3"));
  EXPECT_NORMLAB_ERROR(conv.forward(Tensor({2, 3, 2, 8}), y, true),
                       HasSubstr("conv2d: kernel 5 is larger than the padded input 4x10"));
  EXPECT_EQ(conv.output_shape({2, 3, 3, 3}), (Shape{2, 4, 1, 1}));  // 3 + 2*1 = 5: just fits
}

TEST(Errors, PoolingAndFlattenInputs) {
  MaxPool2d pool(3, 2);
  Tensor y;
  EXPECT_NORMLAB_ERROR(pool.forward(Tensor({2, 3, 8}), y, true),
                       HasSubstr("maxpool2d: input shape [2,3,8] must have 4 dims [N,C,H,W]"));
  EXPECT_NORMLAB_ERROR(pool.forward(Tensor({2, 3, 2, 8}), y, true),
                       HasSubstr("maxpool2d: kernel 3 is larger than the input 2x8"));
  EXPECT_NORMLAB_ERROR(GlobalAvgPool().output_shape({2, 3}),
                       HasSubstr("globalavgpool: input shape [2,3] must have at least 3 dims"));
  EXPECT_NORMLAB_ERROR(Flatten().output_shape({6}),
                       HasSubstr("flatten: input shape [6] must have at least 2 dims"));
}

TEST(Errors, BackwardWithoutForwardOrWithWrongDy) {
  NRng rng(1);
  std::vector<std::unique_ptr<Module>> mods;
  mods.push_back(std::make_unique<Linear>(4, 3, rng));
  mods.push_back(std::make_unique<Conv2d>(4, 3, 3, 1, 1, rng));
  mods.push_back(std::make_unique<MaxPool2d>(2, 2));
  mods.push_back(std::make_unique<ReLU>());
  mods.push_back(std::make_unique<Tanh>());
  mods.push_back(std::make_unique<GlobalAvgPool>());
  mods.push_back(std::make_unique<Flatten>());
  mods.push_back(normlab::make_norm_module("batchnorm", json::object(), {2, 4, 4, 4}));
  for (auto& m : mods) {
    SCOPED_TRACE(m->kind());
    const std::string who = m->kind() + ": ";
    Tensor y, dx;
    const Shape s = m->kind() == "linear" ? Shape{2, 4} : Shape{2, 4, 4, 4};
    // Inference forwards do not count.
    m->forward(Tensor(s, 0.5f), y, false);
    EXPECT_NORMLAB_ERROR(m->backward(y, dx), HasSubstr(who + "backward needs a training-mode forward first"));
    m->forward(Tensor(s, 0.5f), y, true);
    EXPECT_NORMLAB_ERROR(m->backward(Tensor({1, 1, 1, 1, 1}), dx),
                         HasSubstr(who + "dy shape [1,1,1,1,1] does not match the output shape"));
  }
}

TEST(Errors, Residual) {
  NRng rng(1);
  Body f;
  f.push_back(std::make_unique<Conv2d>(4, 8, 3, 1, 1, rng));
  f.push_back(std::make_unique<ReLU>());
  Residual widen(std::move(f));
  EXPECT_NORMLAB_ERROR(widen.output_shape({2, 4, 6, 6}),
                       HasSubstr("residual: y = x + f(x) needs f(x) shaped as x, but x is [2,4,6,6] and f(x) "
                                 "is [2,8,6,6] (residual(conv2d relu))"));
  Tensor y, dx;
  EXPECT_NORMLAB_ERROR(widen.forward(Tensor({2, 4, 6, 6}), y, true),
                       HasSubstr("residual: y = x + f(x) needs f(x) shaped as x, but x is [2,4,6,6]"));
  // A layer of f that cannot take x reports itself.
  EXPECT_NORMLAB_ERROR(widen.output_shape({2, 3, 6, 6}), HasSubstr("conv2d: input shape [2,3,6,6]"));
  Body null;
  null.push_back(nullptr);
  EXPECT_NORMLAB_ERROR(Residual(std::move(null)), HasSubstr("residual: a layer of the block is null"));
  Body g;
  g.push_back(std::make_unique<Tanh>());
  Residual res(std::move(g));
  res.forward(Tensor({2, 3}, 0.5f), y, false);
  EXPECT_NORMLAB_ERROR(res.backward(y, dx), HasSubstr("residual: backward needs a training-mode forward first"));
  res.forward(Tensor({2, 3}, 0.5f), y, true);
  EXPECT_NORMLAB_ERROR(res.backward(Tensor({3, 2}), dx),
                       HasSubstr("residual: dy shape [3,2] does not match the output shape [2,3] of the last "
                                 "training forward"));
}

TEST(Errors, NormModules) {
  EXPECT_NORMLAB_ERROR(normlab::make_norm_module("instancenorm", json::object(), {4, 3}),
                       HasSubstr("instancenorm: input shape [4,3] must have at least 3 dims"));
  EXPECT_NORMLAB_ERROR(normlab::make_norm_module("batchnorm", {{"channels", 5}}, {4, 3}),
                       HasSubstr("batchnorm: input shape [4,3] has 3 channels (dim 1), layer has 5"));
  EXPECT_NORMLAB_ERROR(normlab::make_norm_module("layernorm", {{"normalizedShape", {4}}}, {4, 3}),
                       HasSubstr("layernorm: input shape [4,3] does not end with normalizedShape [4]"));
  EXPECT_NORMLAB_ERROR(normlab::make_norm_module("groupnorm", {{"groups", 4}}, {4, 6}),
                       HasSubstr("groupnorm"));
  EXPECT_NORMLAB_ERROR(normlab::make_norm_module("batchnorm", json::object(), {4}),
                       HasSubstr("batchnorm: input shape [4] must have at least 2 dims"));
  EXPECT_NORMLAB_ERROR(normlab::make_norm_module("whitening", json::object(), {4, 3}),
                       HasSubstr("unknown normalization method 'whitening'"));
  EXPECT_NORMLAB_ERROR(normlab::make_norm_module("batchnorm", {{"chanels", 3}}, {4, 3}),
                       HasSubstr("chanels"));
  auto bn = normlab::make_norm_module("batchnorm", json::object(), {4, 3, 2, 2});
  Tensor y;
  EXPECT_NORMLAB_ERROR(bn->forward(Tensor({4, 5, 2, 2}), y, true),
                       HasSubstr("batchnorm: input shape [4,5,2,2] has 5 channels"));
}

TEST(Errors, Losses) {
  const std::vector<float> logits(8, 0.0f);
  std::vector<float> d(8, 7.0f);
  EXPECT_NORMLAB_ERROR(normlab::softmax_cross_entropy(d.data(), nullptr, logits.data(),
                                                      std::vector<int32_t>{0, 4}.data(), 2, 4),
                       HasSubstr("softmax_cross_entropy: labels[1] = 4 is out of range [0, 4)"));
  EXPECT_EQ(d, std::vector<float>(8, 7.0f));  // nothing written before the check
  EXPECT_NORMLAB_ERROR(normlab::softmax_cross_entropy(d.data(), nullptr, logits.data(),
                                                      std::vector<int32_t>{-1, 0}.data(), 2, 4),
                       HasSubstr("labels[0] = -1 is out of range [0, 4)"));
  EXPECT_NORMLAB_ERROR(normlab::softmax_cross_entropy(d.data(), nullptr, logits.data(),
                                                      std::vector<int32_t>{0}.data(), 0, 4),
                       HasSubstr("softmax_cross_entropy: batch size must be >= 1, got 0"));
  EXPECT_NORMLAB_ERROR(normlab::count_correct(logits.data(), std::vector<int32_t>{9, 0}.data(), 2, 4),
                       HasSubstr("count_correct: labels[0] = 9 is out of range [0, 4)"));
  EXPECT_NORMLAB_ERROR(normlab::mse(d.data(), logits.data(), logits.data(), 0),
                       HasSubstr("mse: number of elements must be >= 1, got 0"));
}

}  // namespace
}  // namespace normlab_test
