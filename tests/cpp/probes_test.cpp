// The landscape and internal-covariate-shift probes (run/probes.h): a quadratic loss whose gradient's
// Lipschitz constant is known, a two-layer scalar network whose ICS is worked out by hand, the
// optimizer replica, the cost in passes, and that probing leaves the model and the run untouched.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "normlab/core/error.h"
#include "normlab/core/rng.h"
#include "normlab/nn/linear.h"
#include "normlab/nn/loss.h"
#include "normlab/nn/model.h"
#include "normlab/nn/optim.h"
#include "normlab/run/probes.h"
#include "normlab/run/runner.h"

namespace normlab_test {
namespace {

using json = nlohmann::json;
using normlab::Linear;
using normlab::Model;
using normlab::Tensor;

// |actual - expected| <= atol + rtol * |expected|
void expect_close(double actual, double expected, double rtol, const std::string& what, double atol = 1e-7) {
  EXPECT_LE(std::fabs(actual - expected), atol + rtol * std::fabs(expected))
      << what << ": " << actual << " vs " << expected;
}

// Mean squared error against fixed targets, as a probe loss.
normlab::ProbeLoss mse_loss(const std::vector<float>& targets) {
  return [targets](const Tensor& out, Tensor& dout) {
    return normlab::mse(dout.ptr(), out.ptr(), targets.data(), out.numel());
  };
}

// ---- a quadratic loss -------------------------------------------------------------------------
// y = w . x + b (a Linear(2, 1)) on 4 inputs x = (+-2, +-1) with targets t = theta* . (x, 1), under
// MSE: L(theta) = 1/4 sum_i ((theta - theta*) . a_i)^2 with a_i = (x_i, 1), and A^T A = diag(16, 4, 4)
// (the columns of A are orthogonal), so
//   L = 1/2 d^T H d,  g = H d,  H = diag(8, 2, 2),  d = theta - theta*,
// the gradient's Lipschitz constant is the largest eigenvalue, 8, and along the gradient
//   L(theta - eta g) = sum_j H_j/2 d_j^2 (1 - eta H_j)^2,  ||g - grad L(theta - eta g)|| = eta ||H g||,
// so the effective beta-smoothness is ||H g|| / ||g|| for every eta: 8 when d is along the first axis.
struct Quadratic {
  const std::vector<float> x = {2, 1, 2, -1, -2, 1, -2, -1};  // (4, 2)
  const double theta_star[3] = {0.5, -1.0, 0.25};               // w1, w2, b
  const double h[3] = {8, 2, 2};
  std::vector<float> targets() const {
    std::vector<float> t;
    for (int i = 0; i < 4; ++i) {
      t.push_back(static_cast<float>(theta_star[0] * x[2 * i] + theta_star[1] * x[2 * i + 1] + theta_star[2]));
    }
    return t;
  }
  // The model at theta* + d.
  Model model(const double d[3]) const {
    Model m;
    m.add(std::make_unique<Linear>(2, 1,
                                   std::vector<float>{static_cast<float>(theta_star[0] + d[0]),
                                                      static_cast<float>(theta_star[1] + d[1])},
                                   std::vector<float>{static_cast<float>(theta_star[2] + d[2])}));
    return m;
  }
  Tensor input() const {
    Tensor t({4, 2});
    t.data = x;
    return t;
  }
};

TEST(Probes, QuadraticLossesAndGradientsAlongTheGradientAreTheHandWorkedOnes) {
  const Quadratic q;
  const double d[3] = {0.5, 1.0, -1.0};
  const Model model = q.model(d);
  normlab::ProbeRequest request;
  request.etas = {0.01, 0.05, 0.1, 0.3};
  const normlab::ProbeResult r = normlab::probe(model, q.input(), mse_loss(q.targets()), request);
  const normlab::LandscapeProbe& L = r.landscape;
  double loss = 0, g2 = 0, hg2 = 0;
  for (int j = 0; j < 3; ++j) {
    loss += q.h[j] / 2 * d[j] * d[j];
    g2 += q.h[j] * q.h[j] * d[j] * d[j];
    hg2 += q.h[j] * q.h[j] * q.h[j] * q.h[j] * d[j] * d[j];
  }
  expect_close(L.loss, loss, 1e-6, "L(w)");  // 4 * 0.25 + 1 + 1 = 3
  expect_close(L.gradient_norm, std::sqrt(g2), 1e-6, "||g||");
  ASSERT_EQ(L.losses.size(), 4u);
  double lo = 1e300, hi = -1e300, dist_max = 0;
  for (size_t e = 0; e < 4; ++e) {
    const double eta = request.etas[e];
    double expected = 0;
    for (int j = 0; j < 3; ++j) expected += q.h[j] / 2 * d[j] * d[j] * std::pow(1 - eta * q.h[j], 2);
    expect_close(L.losses[e], expected, 1e-5, "L(w - eta g), eta " + std::to_string(eta), 1e-6);
    expect_close(L.gradient_distances[e], eta * std::sqrt(hg2), 1e-5, "gradient distance, eta " + std::to_string(eta));
    lo = std::min(lo, expected);
    hi = std::max(hi, expected);
    dist_max = std::max(dist_max, eta * std::sqrt(hg2));
  }
  expect_close(L.loss_min, lo, 1e-5, "lossMin", 1e-6);
  expect_close(L.loss_max, hi, 1e-5, "lossMax");
  expect_close(L.gradient_distance_max, dist_max, 1e-5, "gradientDistanceMax");
  // ||H g|| / ||g|| = sqrt(4096 * 0.25 + 16 + 16) / sqrt(64 * 0.25 + 4 + 4) = 6.6332...: below 8.
  expect_close(L.beta_smoothness, std::sqrt(hg2 / g2), 1e-5, "betaSmoothness");
  EXPECT_LT(L.beta_smoothness, 8.0);
  EXPECT_EQ(r.passes, 5);  // grad L(w), then one per eta
}

TEST(Probes, BetaSmoothnessOfAQuadraticIsItsGradientsLipschitzConstant) {
  // d along the Hessian's top eigenvector: the gradient is too, and ||g - g'|| / ||eta g|| is the
  // largest eigenvalue 8 (the Lipschitz constant of the gradient) at every step size.
  const Quadratic q;
  const double d[3] = {0.25, 0, 0};
  normlab::ProbeRequest request;
  request.etas = {0.001, 0.01, 0.1, 0.2, 1.0};
  const normlab::ProbeResult r = normlab::probe(q.model(d), q.input(), mse_loss(q.targets()), request);
  expect_close(r.landscape.beta_smoothness, 8.0, 1e-5, "betaSmoothness");
  for (size_t e = 0; e < request.etas.size(); ++e) {
    const double eta = request.etas[e];
    expect_close(r.landscape.gradient_distances[e] / (eta * r.landscape.gradient_norm), 8.0, 1e-4,
                 "ratio at eta " + std::to_string(eta));
    // L(theta - eta g) = 4 (0.25)^2 (1 - 8 eta)^2: 0 at eta 1/8, back to L(w) at eta 1/4.
    expect_close(r.landscape.losses[e], 0.25 * std::pow(1 - 8 * eta, 2), 1e-5, "loss", 1e-7);
  }
  // A gradient of zero (at the minimum) moves nothing: smoothness 0, not 0/0.
  const double zero[3] = {0, 0, 0};
  const normlab::ProbeResult at_min = normlab::probe(q.model(zero), q.input(), mse_loss(q.targets()), request);
  EXPECT_EQ(at_min.landscape.gradient_norm, 0.0);
  EXPECT_EQ(at_min.landscape.beta_smoothness, 0.0);
  EXPECT_EQ(at_min.landscape.loss_max, 0.0);
}

// ---- internal covariate shift, by hand --------------------------------------------------------
// y = w2 (w1 x + b1) + b2 (two Linear(1, 1)), one example, L = (y - t)^2. With h = w1 x + b1 and
// r = y - t: dL/dw1 = 2 r w2 x, dL/db1 = 2 r w2, dL/dw2 = 2 r h, dL/db2 = 2 r. Layer 1 takes its SGD
// step (w1 - lr dL/dw1, b1 - lr dL/db1), giving h' and r'; layer 2's gradient there is
// G' = (2 r' h', 2 r'), against G = (2 r h, 2 r).
TEST(Probes, InternalCovariateShiftOfTwoScalarLayersIsTheHandWorkedOne) {
  const double w1 = 0.8, b1 = -0.3, w2 = 1.5, b2 = 0.2, x = 1.25, t = 2.0, lr = 0.1;
  Model model;
  model.add(std::make_unique<Linear>(1, 1, std::vector<float>{static_cast<float>(w1)}, std::vector<float>{static_cast<float>(b1)}));
  model.add(std::make_unique<Linear>(1, 1, std::vector<float>{static_cast<float>(w2)}, std::vector<float>{static_cast<float>(b2)}));
  normlab::OptimizerOptions sgd;
  sgd.lr = lr;
  normlab::Optimizer optimizer(sgd, model.parameters());
  Tensor input({1, 1});
  input.data = {static_cast<float>(x)};
  normlab::ProbeRequest request;
  request.ics = true;
  request.optimizer = &optimizer;
  request.lr = lr;
  const normlab::ProbeResult r = normlab::probe(model, input, mse_loss({static_cast<float>(t)}), request);

  const double h = w1 * x + b1, res = w2 * h + b2 - t;
  const double w1n = w1 - lr * 2 * res * w2 * x, b1n = b1 - lr * 2 * res * w2;
  const double hn = w1n * x + b1n, resn = w2 * hn + b2 - t;
  const double G[2] = {2 * res * h, 2 * res}, Gn[2] = {2 * resn * hn, 2 * resn};
  const double l2 = std::hypot(G[0] - Gn[0], G[1] - Gn[1]);
  const double cosine = (G[0] * Gn[0] + G[1] * Gn[1]) / (std::hypot(G[0], G[1]) * std::hypot(Gn[0], Gn[1]));
  ASSERT_EQ(r.ics.size(), 1u);  // layer 1 has nothing below it
  EXPECT_EQ(r.ics[0].layer, 2);
  EXPECT_EQ(r.ics[0].kind, "linear");
  expect_close(r.ics[0].l2, l2, 1e-5, "l2");
  expect_close(r.ics[0].cosine, cosine, 1e-6, "cosine");
  EXPECT_GT(l2, 0.1);  // the case is not degenerate
  EXPECT_EQ(r.passes, 2);
}

TEST(Probes, AnOptimizerReplicaStepsLikeTheOriginal) {
  // SGD with momentum and Nesterov, Adam and AdamW with weight decay, each after some steps of
  // their own: the replica over a copy of the parameters makes the original's next step exactly.
  for (const json& options : {json{{"kind", "sgd"}, {"lr", 0.1}, {"momentum", 0.9}, {"nesterov", true}, {"weightDecay", 0.01}},
                              json{{"kind", "adam"}, {"lr", 0.01}, {"weightDecay", 0.1}},
                              json{{"kind", "adamw"}, {"lr", 0.01}, {"weightDecay", 0.1}}}) {
    normlab::Rng rng(3);
    Linear a(3, 2, rng);
    normlab::Optimizer original(normlab::optimizer_options_from_json(options), a.parameters());
    for (int step = 0; step < 3; ++step) {
      for (normlab::Param* p : a.parameters()) {
        for (float& g : p->grad) g = static_cast<float>(rng.normal());
      }
      original.step(0.1);
    }
    std::unique_ptr<normlab::Module> b = a.clone();
    normlab::Optimizer replica(original, b->parameters());
    for (normlab::Param* p : a.parameters()) {
      for (float& g : p->grad) g = static_cast<float>(rng.normal());
    }
    for (size_t k = 0; k < a.parameters().size(); ++k) b->parameters()[k]->grad = a.parameters()[k]->grad;
    original.step(0.05);
    replica.step(0.05);
    for (size_t k = 0; k < a.parameters().size(); ++k) {
      EXPECT_EQ(a.parameters()[k]->value, b->parameters()[k]->value) << options.dump();
    }
  }
  normlab::Rng rng(1);
  Linear a(3, 2, rng), c(2, 2, rng);
  normlab::Optimizer original(normlab::OptimizerOptions{}, a.parameters());
  EXPECT_THROW(normlab::Optimizer(original, c.parameters()), normlab::Error);
}

// ---- in a model, in the runner ----------------------------------------------------------------

// Every parameter, grad and running-state value of a model, for comparisons bit for bit.
std::vector<std::vector<float>> everything(Model& m) {
  std::vector<std::vector<float>> out;
  for (normlab::Param* p : m.parameters()) {
    out.push_back(p->value);
    out.push_back(p->grad);
  }
  for (normlab::NormModule* n : m.norms()) {
    for (const normlab::StateBuffer& s : n->layer().state()) out.push_back(s.value);
  }
  return out;
}

TEST(Probes, LeaveTheModelUntouchedAndCostOnePassPerEtaAndIcsRow) {
  // An MLP 2-16-16-2 with Batch Renorm relaxed half way (its limits between 1 and rMax), after a
  // training step: the probes' L(w) is the training loss the model itself gives on the batch.
  normlab::ModelSpec spec;
  spec.kind = "mlp";
  spec.hidden = {16, 16};
  Model model = normlab::build_model(spec, {2}, 2, "batchrenorm", json::object(), normlab::Rng(4));
  for (normlab::NormModule* n : model.norms()) n->layer().relax_corrections(0.5);
  normlab::Rng rng(5);
  Tensor x({8, 2});
  for (float& v : x.data) v = static_cast<float>(rng.normal());
  std::vector<int32_t> labels = {0, 1, 1, 0, 1, 0, 0, 1};
  const normlab::ProbeLoss loss = [&](const Tensor& out, Tensor& dout) {
    return normlab::softmax_cross_entropy(dout.ptr(), nullptr, out.ptr(), labels.data(), out.shape[0], 2);
  };
  normlab::Optimizer optimizer(normlab::optimizer_options_from_json({{"lr", 0.1}, {"momentum", 0.9}}), model.parameters());
  Tensor dout;
  {
    const Tensor& out = model.forward(x, true);
    dout.resize(out.shape);
    loss(out, dout);
    model.backward(dout);
    optimizer.step(0.1);
  }
  const auto before = everything(model);
  normlab::ProbeRequest request;
  request.etas = {0.025, 0.05, 0.1, 0.2, 0.4};
  request.ics = true;
  request.optimizer = &optimizer;
  request.lr = 0.1;
  const normlab::ProbeResult r = normlab::probe(model, x, loss, request);
  EXPECT_EQ(everything(model), before);
  // linear brn relu linear brn relu linear: the 2nd and 3rd Linear have layers below them.
  ASSERT_EQ(r.ics.size(), 2u);
  EXPECT_EQ(r.ics[0].layer, 2);
  EXPECT_EQ(r.ics[1].layer, 3);
  for (const normlab::IcsProbe& row : r.ics) {
    EXPECT_GT(row.l2, 0);
    EXPECT_LE(row.cosine, 1.0 + 1e-9);
    EXPECT_GT(row.cosine, -1.0);
  }
  EXPECT_EQ(r.passes, 1 + 5 + 2);
  EXPECT_LE(r.passes - 2, 1 + 2 * 5);  // the landscape's share within 1 + 2 x etas
  // The training forward of the model itself on the batch, from the same state.
  const auto state = everything(model);
  const Tensor& out = model.forward(x, true);
  dout.resize(out.shape);
  EXPECT_DOUBLE_EQ(r.landscape.loss, loss(out, dout));
  EXPECT_THROW(normlab::probe(model, x, loss, {{0.1, -1.0}, false, nullptr, 0}), normlab::Error);
  EXPECT_THROW(normlab::probe(model, x, loss, {{}, true, nullptr, 0}), normlab::Error);
}

// The result without the probes' fields (config.probes, eval[k].landscape and .ics).
json without_probes(json result) {
  result["config"].erase("probes");
  for (json& m : result["methods"]) {
    for (json& e : m["eval"]) {
      e.erase("landscape");
      e.erase("ics");
    }
  }
  return result;
}

TEST(Probes, TheTrainingTrajectoryIsBitIdenticalWithAndWithoutProbes) {
  for (const json& optimizer : {json{{"kind", "sgd"}, {"lr", 0.1}, {"momentum", 0.9}},
                                json{{"kind", "adam"}, {"lr", 0.01}}}) {
    json base = {{"dataset", {{"name", "moons"}, {"trainSize", 200}, {"testSize", 100}}},
                 {"model", {{"kind", "mlp"}, {"hidden", {16, 16}}}},
                 {"methods", {"none", "bn", "brn", "ln", "gbn"}},
                 {"batchSize", 16},
                 {"optimizer", optimizer},
                 {"steps", 60},
                 {"evalInterval", 20},
                 {"seed", 7}};
    normlab::Runner plain(normlab::run_config_from_json(base), {});
    plain.step(60);
    json probed_config = base;
    probed_config["probes"] = {{"landscape", true}, {"ics", true}};
    normlab::Runner probed(normlab::run_config_from_json(probed_config), {});
    // Stepped in uneven chunks: probes run at the evaluations wherever the chunks end.
    probed.step(7);
    probed.step(33);
    probed.step(20);
    const json a = plain.result(), b = probed.result();
    EXPECT_EQ(without_probes(b).dump(), a.dump()) << optimizer.dump();
    EXPECT_FALSE(a["config"].contains("probes"));
    for (const std::string id : {"none", "bn", "brn", "ln", "gbn"}) {
      EXPECT_EQ(everything(plain.model(id)), everything(probed.model(id))) << id;
    }
    // Every evaluation of every method has both probes.
    const double lr = optimizer["lr"];
    EXPECT_EQ(b["config"]["probes"]["etas"], json({lr / 4, lr / 2, lr, 2 * lr, 4 * lr}));
    for (const json& m : b["methods"]) {
      ASSERT_EQ(m["eval"].size(), 3u);
      for (const json& e : m["eval"]) {
        const json& L = e["landscape"];
        EXPECT_EQ(L["etas"], b["config"]["probes"]["etas"]);
        EXPECT_EQ(L["losses"].size(), 5u);
        EXPECT_LE(L["lossMin"].get<double>(), L["lossMax"].get<double>());
        EXPECT_GT(L["betaSmoothness"].get<double>(), 0);
        ASSERT_EQ(e["ics"].size(), 2u) << m["id"];
        EXPECT_EQ(e["ics"][0]["layer"], 2);
      }
    }
  }
}

TEST(Probes, TheProbeBatchIsTheSameForEveryMethodAndDrawnFromTheSeed) {
  // Two runs of one method each: the probes of "bn" alone equal those of "bn" beside "none"; a
  // different seed gives different probes.
  json c = {{"methods", {"bn"}}, {"steps", 20}, {"evalInterval", 10}, {"probes", {{"landscape", true}}},
            {"dataset", {{"name", "moons"}, {"trainSize", 200}, {"testSize", 50}}}};
  normlab::Runner one(normlab::run_config_from_json(c), {});
  one.step(20);
  c["methods"] = {"none", "bn"};
  normlab::Runner two(normlab::run_config_from_json(c), {});
  two.step(20);
  EXPECT_EQ(one.result()["methods"][0]["eval"].dump(), two.result()["methods"][1]["eval"].dump());
  c["seed"] = 2;
  normlab::Runner other(normlab::run_config_from_json(c), {});
  other.step(20);
  EXPECT_NE(other.result()["methods"][1]["eval"][0]["landscape"]["loss"],
            two.result()["methods"][1]["eval"][0]["landscape"]["loss"]);
}

TEST(Probes, ConfigIsValidated) {
  auto parse = [](json probes) {
    return normlab::run_config_from_json({{"methods", {"bn"}}, {"optimizer", {{"lr", 0.2}}}, {"probes", probes}});
  };
  EXPECT_EQ(parse({{"landscape", true}}).probes.etas, (std::vector<double>{0.05, 0.1, 0.2, 0.4, 0.8}));
  EXPECT_EQ(parse({{"landscape", true}, {"etas", {0.5, 1}}}).probes.etas, (std::vector<double>{0.5, 1}));
  EXPECT_FALSE(parse(nullptr).probes.enabled());
  EXPECT_TRUE(parse({{"ics", true}}).probes.etas.empty());
  auto message = [&](json probes) {
    try {
      parse(probes);
    } catch (const normlab::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  using ::testing::HasSubstr;
  EXPECT_THAT(message({{"landscap", true}}), HasSubstr("landscap"));
  EXPECT_THAT(message({{"landscape", 1}}), HasSubstr("landscape"));
  EXPECT_THAT(message({{"landscape", true}, {"etas", json::array()}}), HasSubstr("1 to 16 step sizes"));
  EXPECT_THAT(message({{"landscape", true}, {"etas", {0.1, -1}}}), HasSubstr("finite number > 0, got -1"));
  EXPECT_THAT(message({{"landscape", true}, {"etas", {"Infinity"}}}), HasSubstr("got \"Infinity\""));
  EXPECT_THAT(message({{"ics", true}, {"etas", {0.1}}}), HasSubstr("set landscape: true"));
  EXPECT_THAT(message(true), HasSubstr("probes"));
}

}  // namespace
}  // namespace normlab_test
