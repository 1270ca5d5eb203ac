// Weight Normalization and Cosine Normalization beyond the PyTorch fixtures and the finite-difference
// sweep of layers_test.cpp: the layer API (create_weight_layer: options, defaults, seeds, every
// validation error), the models the runner builds (the same initial weights as every other method,
// the layers in each mode, the model's own backward against finite differences), the runner
// (method names, aliases, labels, ids; wn and cn train on moons), and that the gradient checks
// catch the mistakes an implementation is likely to make.
#include <cmath>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "normlab/nn/conv2d.h"
#include "normlab/nn/linear.h"
#include "normlab/nn/model.h"
#include "normlab/nn/weight_layer.h"
#include "normlab/nn/weight_mode.h"
#include "normlab/norm/registry.h"
#include "normlab/run/runner.h"
#include "test_util.h"

namespace normlab_test {
namespace {

using normlab::Conv2d;
using normlab::Linear;
using normlab::Module;
using normlab::Param;
using normlab::Tensor;
using normlab::WeightMode;
using ::testing::AllOf;
using ::testing::HasSubstr;

Param* find(Module& m, const std::string& name) {
  for (Param* p : m.parameters()) {
    if (p->name == name) return p;
  }
  return nullptr;
}

std::vector<std::string> names(Module& m) {
  std::vector<std::string> out;
  for (Param* p : m.parameters()) out.push_back(p->name);
  return out;
}

// ---- layer API ----------------------------------------------------------------------------------

TEST(WeightLayers, MethodLists) {
  EXPECT_EQ(normlab::weight_methods(), (std::vector<std::string>{"weightnorm", "cosinenorm"}));
  const std::vector<std::string> all = normlab::layer_methods();
  ASSERT_EQ(all.size(), normlab::norm_methods().size() + 2);
  EXPECT_EQ(all[all.size() - 2], "weightnorm");
  EXPECT_EQ(all.back(), "cosinenorm");
  for (const std::string& m : normlab::norm_methods()) EXPECT_FALSE(normlab::is_weight_method(m)) << m;
  // create_norm knows they are not normalization layers; its unknown-method error lists them.
  EXPECT_NORMLAB_ERROR(normlab::create_norm("weightnorm", json::object()),
                       HasSubstr("weightnorm: not a normalization layer but a weight reparameterization"));
  EXPECT_NORMLAB_ERROR(normlab::create_norm("whitening", json::object()),
                       HasSubstr("switchablenorm, weightnorm, cosinenorm)"));
}

TEST(WeightLayers, CreateLinearAndConvWithDefaults) {
  auto wn = normlab::create_weight_layer("weightnorm", {{"inFeatures", 5}, {"outFeatures", 3}});
  EXPECT_EQ(wn->kind(), "linear_weightnorm");
  EXPECT_EQ(names(*wn), (std::vector<std::string>{"weight_g", "weight_v", "bias"}));
  EXPECT_EQ(normlab::weight_layer_options(*wn, 0),
            json({{"inFeatures", 5}, {"outFeatures", 3}, {"bias", true}, {"seed", 0}}));
  EXPECT_FALSE(find(*wn, "weight_g")->decay);
  EXPECT_TRUE(find(*wn, "weight_v")->decay);
  EXPECT_FALSE(find(*wn, "bias")->decay);

  auto cn = normlab::create_weight_layer("cosinenorm", {{"inFeatures", 5}, {"outFeatures", 3}});
  EXPECT_EQ(cn->kind(), "linear_cosine");
  EXPECT_EQ(names(*cn), (std::vector<std::string>{"weight"}));  // no bias by default
  EXPECT_EQ(normlab::weight_layer_options(*cn, 0),
            json({{"inFeatures", 5}, {"outFeatures", 3}, {"bias", false}, {"seed", 0}, {"centered", false}}));

  auto cc = normlab::create_weight_layer(
      "cosinenorm", {{"inChannels", 2}, {"outChannels", 4}, {"kernelSize", 3}, {"padding", 1},
                     {"centered", true}, {"bias", true}, {"seed", 9}});
  EXPECT_EQ(cc->kind(), "conv2d_centered_cosine");
  EXPECT_EQ(names(*cc), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(normlab::weight_layer_options(*cc, 9),
            json({{"inChannels", 2}, {"outChannels", 4}, {"kernelSize", 3}, {"stride", 1}, {"padding", 1},
                  {"bias", true}, {"seed", 9}, {"centered", true}}));
  EXPECT_EQ(cc->output_shape({2, 2, 5, 5}), (Shape{2, 4, 5, 5}));

  auto wc = normlab::create_weight_layer("weightnorm", {{"inChannels", 3}, {"outChannels", 2}, {"kernelSize", 3},
                                                        {"stride", 2}});
  EXPECT_EQ(wc->kind(), "conv2d_weightnorm");
  EXPECT_EQ(wc->output_shape({1, 3, 7, 7}), (Shape{1, 2, 3, 3}));
}

// The weights come from Rng(seed) exactly as the plain layer's: weight_v is the plain weight and
// weight_g its row norms, so the effective weight is the plain one bit for bit.
TEST(WeightLayers, SeededWeightsAreThePlainLayers) {
  for (int64_t seed : {0, 7}) {
    normlab::Rng rng(static_cast<uint64_t>(seed));
    Linear plain(6, 4, rng);
    auto wn = normlab::create_weight_layer("weightnorm", {{"inFeatures", 6}, {"outFeatures", 4}, {"seed", seed}});
    auto& lin = dynamic_cast<Linear&>(*wn);
    EXPECT_TRUE(check_identical("weight_v", lin.weight().value, plain.weight().value));
    EXPECT_TRUE(check_identical("bias", lin.bias().value, plain.bias().value));
    EXPECT_TRUE(check_identical("effective weight", lin.effective_weight(), plain.weight().value));
    for (int64_t o = 0; o < 4; ++o) {
      double s = 0;
      for (int64_t i = 0; i < 6; ++i) s += std::pow(plain.weight().value[o * 6 + i], 2);
      EXPECT_NEAR(lin.weight_g().value[o], std::sqrt(s), 1e-6);
    }
    auto cn = normlab::create_weight_layer("cosinenorm", {{"inFeatures", 6}, {"outFeatures", 4}, {"seed", seed}});
    EXPECT_TRUE(check_identical("cosine weight", find(*cn, "weight")->value, plain.weight().value));
  }
  normlab::Rng rng(3);
  Conv2d plain(2, 3, 3, 1, 1, rng);
  auto wc = normlab::create_weight_layer("weightnorm", {{"inChannels", 2}, {"outChannels", 3}, {"kernelSize", 3},
                                                        {"padding", 1}, {"seed", 3}});
  EXPECT_TRUE(check_identical("conv effective weight", dynamic_cast<Conv2d&>(*wc).effective_weight(),
                              plain.weight().value));
  // Same x, same output as the plain layer at first.
  const Tensor x({2, 2, 4, 4}, 0.25f);
  Tensor y1, y2;
  plain.forward(x, y1, false);
  wc->forward(x, y2, false);
  EXPECT_TRUE(check_identical("y", y2.data, y1.data));
}

// Cosine outputs are cosines: in [-1, 1], 1 for an input parallel to a weight row, and
// invariant to the scale of x and of w (and, centred, to adding a constant to either).
TEST(WeightLayers, CosineOutputsAreCosines) {
  for (bool centered : {false, true}) {
    SCOPED_TRACE(centered ? "centred" : "plain");
    auto m = normlab::create_weight_layer("cosinenorm", {{"inFeatures", 4}, {"outFeatures", 3}, {"centered", centered}});
    Param& w = *find(*m, "weight");
    w.value = {1, 2, 3, 4, -1, 0, 2, 0.5f, 0, 0, 1, -3};
    // Row 0 is w_0 times 2.5; row 1 is -w_1 scaled by 0.5 plus 7 (a constant: centred only).
    Tensor x({2, 4});
    for (int i = 0; i < 4; ++i) {
      x.data[i] = 2.5f * w.value[i];
      x.data[4 + i] = -0.5f * w.value[4 + i] + (centered ? 7.0f : 0.0f);
    }
    Tensor y;
    m->forward(x, y, false);
    EXPECT_NEAR(y.data[0], 1.0, 1e-6);
    EXPECT_NEAR(y.data[3 + 1], -1.0, 1e-6);
    for (float v : y.data) EXPECT_LE(std::fabs(v), 1.0 + 1e-6);
    // By hand: cos(x_0, w_2) = (3 - 12) / (sqrt(30) sqrt(10)) = -9/sqrt(300) for plain cosine.
    if (!centered) {
      EXPECT_NEAR(y.data[2], -9.0 / std::sqrt(300.0), 1e-6);
    } else {
      // Centred: x_0 -> (-1.5, -0.5, 0.5, 1.5), w_2 -> (0.5, 0.5, 1.5, -2.5): Pearson's r.
      const double num = -0.75 - 0.25 + 0.75 - 3.75, den = std::sqrt(5.0) * std::sqrt(9.0);
      EXPECT_NEAR(y.data[2], num / den, 1e-6);
    }
  }
}

// A zero input vector: the norm is clamped at 1e-8, the cosine is 0 (plus bias).
TEST(WeightLayers, CosineOfAZeroVectorIsZero) {
  auto m = normlab::create_weight_layer("cosinenorm", {{"inFeatures", 3}, {"outFeatures", 2}, {"bias", true}});
  find(*m, "bias")->value = {0.5f, -0.25f};
  Tensor y;
  m->forward(Tensor({1, 3}, 0.0f), y, true);
  EXPECT_EQ(y.data, (std::vector<float>{0.5f, -0.25f}));
  Tensor dx;
  m->backward(Tensor({1, 2}, 1.0f), dx);
  for (float v : dx.data) EXPECT_TRUE(std::isfinite(v));
}

TEST(WeightLayers, ValidationErrors) {
  auto make = [](const std::string& method, const json& o) { normlab::create_weight_layer(method, o); };
  EXPECT_NORMLAB_ERROR(make("spectralnorm", {{"inFeatures", 3}}),
                       HasSubstr("unknown weight method 'spectralnorm' (known: weightnorm, cosinenorm)"));
  EXPECT_NORMLAB_ERROR(make("weightnorm", json::array()), HasSubstr("weightnorm: options must be an object"));
  EXPECT_NORMLAB_ERROR(make("weightnorm", {{"inFeatures", 3}}), HasSubstr("weightnorm: option outFeatures is required"));
  EXPECT_NORMLAB_ERROR(make("weightnorm", {{"inFeatures", 0}, {"outFeatures", 2}}),
                       HasSubstr("weightnorm: inFeatures must be a positive integer, got 0"));
  EXPECT_NORMLAB_ERROR(make("cosinenorm", {{"inFeatures", 2.5}, {"outFeatures", 2}}),
                       HasSubstr("cosinenorm: option inFeatures must be an integer, got 2.5"));
  EXPECT_NORMLAB_ERROR(make("weightnorm", {{"inFeatures", 3}, {"outFeatures", 2}, {"centered", true}}),
                       HasSubstr("weightnorm: unknown option 'centered' (known: inFeatures, outFeatures, bias, seed)"));
  EXPECT_NORMLAB_ERROR(make("cosinenorm", {{"inFeatures", 3}, {"outFeatures", 2}, {"centered", 1}}),
                       HasSubstr("cosinenorm: option centered must be true or false, got 1"));
  EXPECT_NORMLAB_ERROR(make("weightnorm", {{"inFeatures", 3}, {"outFeatures", 2}, {"bias", "yes"}}),
                       HasSubstr("weightnorm: option bias must be true or false"));
  EXPECT_NORMLAB_ERROR(make("weightnorm", {{"inFeatures", 3}, {"outFeatures", 2}, {"seed", -1}}),
                       HasSubstr("weightnorm: seed must be an integer >= 0, got -1"));
  EXPECT_NORMLAB_ERROR(make("weightnorm", {{"inFeatures", 8192}, {"outFeatures", 8192}}),
                       HasSubstr("weightnorm: the weight of 8192x8192 has more than 16777216 elements"));
  // Linear and Conv2d options are not mixed.
  EXPECT_NORMLAB_ERROR(make("weightnorm", {{"inFeatures", 3}, {"outFeatures", 2}, {"kernelSize", 3}}),
                       HasSubstr("weightnorm: inFeatures is a Linear option, but kernelSize makes a Conv2d"));
  EXPECT_NORMLAB_ERROR(make("cosinenorm", {{"inChannels", 3}, {"outChannels", 2}}),
                       HasSubstr("cosinenorm: inChannels is a Conv2d option: give kernelSize too"));
  EXPECT_NORMLAB_ERROR(make("cosinenorm", {{"inFeatures", 3}, {"outFeatures", 2}, {"stride", 2}}),
                       HasSubstr("cosinenorm: stride is a Conv2d option"));
  EXPECT_NORMLAB_ERROR(make("weightnorm", {{"inChannels", 3}, {"outChannels", 2}, {"kernelSize", 0}}),
                       HasSubstr("weightnorm: kernelSize must be a positive integer, got 0"));
  EXPECT_NORMLAB_ERROR(make("weightnorm", {{"inChannels", 3}, {"outChannels", 2}, {"kernelSize", 3}, {"stride", 0}}),
                       HasSubstr("weightnorm: stride must be a positive integer, got 0"));
  EXPECT_NORMLAB_ERROR(make("weightnorm", {{"inChannels", 3}, {"outChannels", 2}, {"kernelSize", 3}, {"padding", -1}}),
                       HasSubstr("weightnorm: padding must be an integer in [0, 16777216], got -1"));
  EXPECT_NORMLAB_ERROR(make("weightnorm", {{"inChannels", 3}, {"kernelSize", 3}}),
                       HasSubstr("weightnorm: option outChannels is required"));
  // Shapes are the layers' own errors.
  auto lin = normlab::create_weight_layer("cosinenorm", {{"inFeatures", 3}, {"outFeatures", 2}});
  Tensor y;
  EXPECT_NORMLAB_ERROR(lin->forward(Tensor({2, 4}), y, false), HasSubstr("linear: input shape [2,4] has 4 features, layer takes 3"));
  EXPECT_NORMLAB_ERROR(normlab::weight_mode_from_name("cos", "fixture"),
                       HasSubstr("fixture: weight mode must be one of plain, weightnorm, cosine, centered_cosine, got 'cos'"));
}

// ---- models -------------------------------------------------------------------------------------

normlab::Model model(const std::string& kind, const std::string& method, const json& options,
                     const std::string& activation = "relu") {
  normlab::ModelSpec spec;
  spec.kind = kind;
  spec.hidden = {8, 6};
  spec.channels = {3, 4};
  spec.activation = activation;
  const Shape sample = kind == "cnn" ? Shape{1, 8, 8} : Shape{5};
  return normlab::build_model(spec, sample, 3, method, options, normlab::Rng(42).fork(2));
}

// Linear / Conv2d layers of a model in order (const_cast: layer() is const, parameters() not).
std::vector<Module*> weight_layers(normlab::Model& m) {
  std::vector<Module*> out;
  for (size_t i = 0; i < m.size(); ++i) {
    auto* mod = const_cast<Module*>(&m.layer(i));
    if (dynamic_cast<Linear*>(mod) != nullptr || dynamic_cast<Conv2d*>(mod) != nullptr) out.push_back(mod);
  }
  return out;
}

std::vector<float> effective(Module* m) {
  if (auto* l = dynamic_cast<Linear*>(m)) return l->effective_weight();
  return dynamic_cast<Conv2d*>(m)->effective_weight();
}

TEST(WeightModels, LayersAndIdenticalInitialWeights) {
  for (const std::string kind : {"mlp", "cnn"}) {
    SCOPED_TRACE(kind);
    normlab::Model bn = model(kind, "batchnorm", json::object());
    normlab::Model wn = model(kind, "weightnorm", json::object());
    normlab::Model cn = model(kind, "cosinenorm", json::object());
    normlab::Model cc = model(kind, "cosinenorm", {{"centered", true}});
    if (kind == "mlp") {
      EXPECT_EQ(wn.summary(), "linear_weightnorm relu linear_weightnorm relu linear");
      EXPECT_EQ(cn.summary(), "linear_cosine relu linear_cosine relu linear");
      EXPECT_EQ(cc.summary(), "linear_centered_cosine relu linear_centered_cosine relu linear");
    } else {
      EXPECT_EQ(wn.summary(), "conv2d_weightnorm relu maxpool2d conv2d_weightnorm relu maxpool2d flatten linear");
      EXPECT_EQ(cn.summary(), "conv2d_cosine relu maxpool2d conv2d_cosine relu maxpool2d flatten linear");
    }
    auto ref = weight_layers(bn);
    for (normlab::Model* m : {&wn, &cn, &cc}) {
      auto layers = weight_layers(*m);
      ASSERT_EQ(layers.size(), ref.size());
      for (size_t k = 0; k < ref.size(); ++k) {
        SCOPED_TRACE(layers[k]->kind());
        Param* w_ref = find(*ref[k], "weight");
        Param* w = find(*layers[k], "weight") ? find(*layers[k], "weight") : find(*layers[k], "weight_v");
        ASSERT_NE(w, nullptr);
        // The stored weight (weight_v for weight norm) is the plain model's, every layer.
        EXPECT_TRUE(check_identical("weight", w->value, w_ref->value));
        const bool hidden = k + 1 < ref.size();
        if (m == &wn) {
          // weight norm's effective weight equals it too; biases are kept.
          EXPECT_TRUE(check_identical("effective weight", effective(layers[k]), w_ref->value));
          EXPECT_TRUE(check_identical("bias", find(*layers[k], "bias")->value, find(*ref[k], "bias")->value));
        } else if (hidden) {
          EXPECT_EQ(find(*layers[k], "bias"), nullptr);  // cosine units have no bias
        } else {
          // The classifier stays plain, with the plain model's bias (the cosine layers' bias draws
          // were taken and discarded).
          EXPECT_EQ(layers[k]->kind(), "linear");
          EXPECT_TRUE(check_identical("classifier bias", find(*layers[k], "bias")->value,
                                      find(*ref[k], "bias")->value));
        }
      }
    }
    // No normalization layers: nothing for the runner's norm-state snapshots.
    EXPECT_TRUE(wn.norms().empty());
    EXPECT_TRUE(cn.norms().empty());
  }
}

TEST(WeightModels, OptionErrors) {
  EXPECT_NORMLAB_ERROR(model("mlp", "weightnorm", {{"centered", true}}),
                       HasSubstr("weightnorm: unknown option 'centered' (weightnorm takes no options)"));
  EXPECT_NORMLAB_ERROR(model("mlp", "cosinenorm", {{"centred", true}}),
                       HasSubstr("cosinenorm: unknown option 'centred' (known: centered)"));
  EXPECT_NORMLAB_ERROR(model("mlp", "cosinenorm", {{"centered", "yes"}}),
                       HasSubstr("cosinenorm: option centered must be true or false"));
}

// The model's backward (which takes a shortcut at its first parameterised layer for plain layers)
// gives every parameter of every mode its true gradient: central differences of
// L = sum(w * logits) with tanh activations (smooth; MLPs: the CNN's max pools have kinks, see
// the next test), h = 1e-2 with Richardson extrapolation.
TEST(WeightModels, ModelBackwardMatchesFiniteDifferences) {
  struct Case { std::string kind, method; json options; };
  for (const Case& c : std::vector<Case>{{"mlp", "weightnorm", json::object()},
                                         {"mlp", "cosinenorm", json::object()},
                                         {"mlp", "cosinenorm", {{"centered", true}}}}) {
    SCOPED_TRACE(c.kind + " " + c.method + " " + c.options.dump());
    normlab::Model m = model(c.kind, c.method, c.options, "tanh");
    normlab::Rng rng(5);
    const Shape xs = c.kind == "cnn" ? Shape{3, 1, 8, 8} : Shape{3, 5};
    Tensor x(xs);
    for (float& v : x.data) v = static_cast<float>(rng.normal());
    std::vector<float> w(9);
    for (float& v : w) v = static_cast<float>(rng.normal());
    // Move weight_g away from ||v||.
    for (Param* p : m.parameters()) {
      if (p->name == "weight_g") {
        for (float& g : p->value) g *= static_cast<float>(rng.uniform(0.5, 1.5));
      }
    }
    auto loss = [&] {
      const Tensor& logits = m.forward(x, true);
      double l = 0;
      for (size_t i = 0; i < w.size(); ++i) l += double{w[i]} * logits.data[i];
      return l;
    };
    loss();
    Tensor dl({3, 3});
    dl.data = w;
    m.backward(dl);
    std::vector<std::vector<float>> grads;
    for (Param* p : m.parameters()) grads.push_back(p->grad);
    const std::vector<Param*> params = m.parameters();
    for (size_t k = 0; k < params.size(); ++k) {
      Param& p = *params[k];
      std::vector<float> got;
      std::vector<double> fd;
      for (size_t i = 0; i < p.value.size(); i += std::max<size_t>(1, p.value.size() / 7)) {
        const float base = p.value[i];
        auto g = [&](double h) {
          p.value[i] = static_cast<float>(base + h);
          const double up = loss(), hi = p.value[i];
          p.value[i] = static_cast<float>(base - h);
          const double down = loss(), lo = p.value[i];
          p.value[i] = base;
          return (up - down) / (hi - lo);
        };
        fd.push_back((4 * g(1e-2) - g(2e-2)) / 3);
        got.push_back(grads[k][i]);
      }
      EXPECT_CLOSE(p.name + " of parameter " + std::to_string(k), got, fd, 2e-3, 2e-3);
    }
  }
}

// CNNs: the model's backward gives the same gradients, bit for bit, as every layer's own backward
// run in reverse (so its first-layer shortcut is not taken for weight modes, or is exact).
TEST(WeightModels, CnnBackwardIsTheLayersBackward) {
  for (const json& options : {json::object(), json{{"centered", true}}}) {
    for (const std::string method : {"weightnorm", "cosinenorm"}) {
      if (method == "weightnorm" && !options.empty()) continue;
      SCOPED_TRACE(method + " " + options.dump());
      normlab::Model m = model("cnn", method, options);
      normlab::Rng rng(8);
      Tensor x({3, 1, 8, 8});
      for (float& v : x.data) v = static_cast<float>(rng.normal());
      Tensor dl({3, 3});
      for (float& v : dl.data) v = static_cast<float>(rng.normal());
      m.forward(x, true);
      Tensor g = dl, next;
      for (size_t i = m.size(); i-- > 0;) {
        const_cast<Module&>(m.layer(i)).backward(g, next);
        std::swap(g, next);
      }
      std::vector<std::vector<float>> want;
      for (Param* p : m.parameters()) want.push_back(p->grad);
      m.forward(x, true);
      m.backward(dl);
      const std::vector<Param*> params = m.parameters();
      for (size_t k = 0; k < params.size(); ++k) {
        EXPECT_TRUE(check_identical(params[k]->name + " " + std::to_string(k), params[k]->grad, want[k]));
      }
    }
  }
}

// ---- runner -------------------------------------------------------------------------------------

TEST(WeightRunner, NamesAliasesLabelsIds) {
  EXPECT_EQ(normlab::canonical_method("wn"), "weightnorm");
  EXPECT_EQ(normlab::canonical_method("cn"), "cosinenorm");
  EXPECT_EQ(normlab::canonical_method("weightnorm"), "weightnorm");
  EXPECT_NORMLAB_ERROR(normlab::canonical_method("wnorm"),
                       AllOf(HasSubstr("unknown method 'wnorm' (known: none, batchnorm, "),
                             HasSubstr("switchablenorm, weightnorm, cosinenorm; aliases bn, brn, ln, gn, in, "
                                       "rms, l1bn, gbn, sn, wn, cn)")));
  const json config = {{"methods", {"wn", "cn", {{"method", "cosinenorm"}, {"options", {{"centered", true}}}}}}};
  expect_run_methods(config, {{"weightnorm", "wn", "Weight Norm"},
                              {"cosinenorm", "cn", "Cosine Norm"},
                              {"", "cn-2", "Cosine Norm (centred)"}});
}

// Mean training loss over the first and the last 20 steps of a method's result.
std::pair<double, double> first_last(const json& m) {
  const std::vector<double> loss = m["train"]["loss"].get<std::vector<double>>();
  double first = 0, last = 0;
  for (size_t i = 0; i < 20; ++i) {
    first += loss[i] / 20;
    last += loss[loss.size() - 1 - i] / 20;
  }
  return {first, last};
}

// Weight norm learns moons as well as BatchNorm. Cosine norm learns, but its first layer sees
// only the direction of each 2-D point (and, centred, only the sign of x1 - x2: a centred
// 2-vector is +-(x1 - x2)/2 (1, -1)), so it is held to less.
TEST(WeightRunner, TrainsOnMoons) {
  const json config = {
      {"dataset", {{"name", "moons"}, {"trainSize", 400}, {"testSize", 200}}},
      {"model", {{"hidden", {32, 32}}}},
      {"methods", {"bn", "wn", "cn", {{"method", "cn"}, {"options", {{"centered", true}}}}}},
      {"optimizer", {{"kind", "adam"}, {"lr", 0.01}, {"weightDecay", 1e-4}}},
      {"steps", 300},
      {"seed", 3}};
  normlab::Runner runner(normlab::run_config_from_json(config), {});
  runner.step(300);
  const json r = runner.result();
  ASSERT_EQ(r["methods"].size(), 4u);
  const double min_accuracy[] = {0.95, 0.95, 0.8, 0.75};
  for (size_t k = 0; k < 4; ++k) {
    const json& m = r["methods"][k];
    SCOPED_TRACE(m["id"].get<std::string>());
    EXPECT_TRUE(m["diverged"].is_null());
    ASSERT_EQ(m["train"]["loss"].size(), 300u);
    const auto [first, last] = first_last(m);
    // The centred variant's first layer passes one bit per point, its loss falls only a little.
    EXPECT_LT(last, (k < 2 ? 0.5 : k == 2 ? 0.8 : 0.98) * first) << "first " << first << ", last " << last;
    EXPECT_GT(m["final"]["testAccuracy"].get<double>(), min_accuracy[k]);
  }
  EXPECT_EQ(r["methods"][1]["model"], "linear_weightnorm relu linear_weightnorm relu linear");
  EXPECT_EQ(r["methods"][2]["model"], "linear_cosine relu linear_cosine relu linear");
  EXPECT_EQ(r["methods"][3]["label"], "Cosine Norm (centred)");
}

// On images (8x8 digits, a CNN), where receptive fields carry the signal in their direction,
// cosine norm (and its centred form) and weight norm all learn.
TEST(WeightRunner, TrainsOnDigits) {
  const std::string path = std::string(NORMLAB_DATA_DIR) + "/digits.nlds";
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << path;
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const json config = {
      {"dataset", {{"name", "digits"}, {"testSize", 300}}},
      {"model", {{"kind", "cnn"}, {"channels", {8, 16}}}},
      {"methods", {"bn", "wn", "cn", {{"method", "cn"}, {"options", {{"centered", true}}}}}},
      {"optimizer", {{"kind", "adam"}, {"lr", 0.01}}},
      {"steps", 200},
      {"seed", 1}};
  normlab::Runner runner(normlab::run_config_from_json(config), bytes);
  runner.step(200);
  const json r = runner.result();
  for (const json& m : r["methods"]) {
    SCOPED_TRACE(m["id"].get<std::string>());
    EXPECT_TRUE(m["diverged"].is_null());
    const auto [first, last] = first_last(m);
    EXPECT_LT(last, 0.3 * first) << "first " << first << ", last " << last;
    EXPECT_GT(m["final"]["testAccuracy"].get<double>(), 0.85);
  }
  EXPECT_EQ(r["methods"][2]["model"],
            "conv2d_cosine relu maxpool2d conv2d_cosine relu maxpool2d flatten linear");
}

// ---- the checks catch the likely mistakes ---------------------------------------------------------

// Plain finite differences of L = sum(dy * y) of a module w.r.t. one parameter.
std::vector<double> fd_param(Module& m, const Tensor& x, const std::vector<float>& dy, Param& p) {
  std::vector<double> out;
  auto loss = [&] {
    Tensor y;
    m.forward(x, y, true);
    double l = 0;
    for (size_t i = 0; i < dy.size(); ++i) l += double{dy[i]} * y.data[i];
    return l;
  };
  for (size_t i = 0; i < p.value.size(); ++i) {
    const float base = p.value[i];
    p.value[i] = base + 1e-2f;
    const double up = loss();
    p.value[i] = base - 1e-2f;
    const double down = loss();
    p.value[i] = base;
    out.push_back((up - down) / 2e-2);
  }
  return out;
}

// Weight norm's dv without the projection term (g/||v|| dw) and cosine's dw without it
// ((dU)/||w||) must fail the comparison that the real gradients pass.
TEST(WeightSensitivity, MissingProjectionTermsFail) {
  normlab::Rng rng(17);
  Tensor x({4, 5});
  for (float& v : x.data) v = static_cast<float>(rng.normal());
  std::vector<float> dy(12);
  for (float& v : dy) v = static_cast<float>(rng.normal());
  Tensor dyt({4, 3});
  dyt.data = dy;

  Linear wn(5, 3, rng, true, WeightMode::weight_norm);
  for (float& g : wn.weight_g().value) g *= 1.7f;
  Tensor y, dx;
  wn.forward(x, y, true);
  wn.backward(dyt, dx);
  const std::vector<double> fdv = fd_param(wn, x, dy, wn.weight());
  EXPECT_TRUE(check_close("dv", wn.weight().grad, fdv, 2e-3, 2e-3));
  std::vector<float> w = wn.effective_weight(), dw(15), wrong(15);
  normlab::linear_backward(nullptr, dw.data(), nullptr, dy.data(), x.ptr(), w.data(), 4, 5, 3);
  for (int o = 0; o < 3; ++o) {
    const float n = normlab::l2_norm(wn.weight().value.data() + o * 5, 5);
    for (int i = 0; i < 5; ++i) wrong[o * 5 + i] = wn.weight_g().value[o] / n * dw[o * 5 + i];
  }
  EXPECT_FALSE(check_close("dv without projection", wrong, fdv, 2e-3, 2e-3));

  Linear cn(5, 3, rng, false, WeightMode::cosine);
  cn.forward(x, y, true);
  cn.backward(dyt, dx);
  const std::vector<double> fdw = fd_param(cn, x, dy, cn.weight());
  EXPECT_TRUE(check_close("cosine dw", cn.weight().grad, fdw, 2e-3, 2e-3));
  std::vector<float> u(15), un(3), z(20), zn(4), du(15);
  normlab::cosine_normalize(u.data(), un.data(), cn.weight().value.data(), 3, 5, 5, 1, false);
  normlab::cosine_normalize(z.data(), zn.data(), x.ptr(), 4, 5, 5, 1, false);
  normlab::linear_backward(nullptr, du.data(), nullptr, dy.data(), z.data(), u.data(), 4, 5, 3);
  for (int o = 0; o < 3; ++o)
    for (int i = 0; i < 5; ++i) wrong[o * 5 + i] = du[o * 5 + i] / un[o];
  EXPECT_FALSE(check_close("cosine dw without projection", wrong, fdw, 2e-3, 2e-3));

  // (Centred cosine's final mean subtraction is not checked this way: the layers' dZ and dU are
  // sums of centred rows, so the subtraction removes only rounding. The centred fixtures and the
  // finite-difference sweep cover that mode.)
}

}  // namespace
}  // namespace normlab_test
