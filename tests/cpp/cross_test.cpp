// Identities between methods, each checked on forward outputs, input gradients and parameter
// gradients:
//   Batch Renorm with rMax = 1, dMax = 0         == BatchNorm (training mode)
//   GroupNorm with groups = 1                    == LayerNorm over (C, H, W) with gamma/beta
//                                                   broadcast over space (dgamma/dbeta summed)
//   GroupNorm with groups = C                    == InstanceNorm
//   BatchNorm trackRunningStats=false, inference == BatchNorm training output
// The two sides run different kernels (different association and summation order), so they agree
// to float32 rounding, not bitwise: |diff| <= 1e-5 + 1e-5*|want| (values O(1), sums O(10); a
// real discrepancy, e.g. one element of the wrong group, is O(0.1) or more). Measured: <= 1e-6.
#include <string>
#include <vector>

#include "test_util.h"

namespace normlab_test {
namespace {

constexpr double kAtol = 1e-5;
constexpr double kRtol = 1e-5;

std::vector<float> input(Rng& rng, const Shape& s) {
  // Per-channel offsets and scales, so statistics over the wrong axes give visibly different numbers.
  const int64_t n = numel(s), C = s[1], S = n / (s[0] * C);
  std::vector<float> x(n);
  for (int64_t e = 0; e < n; ++e) {
    const int64_t c = (e / S) % C;
    x[e] = static_cast<float>(0.7 * c - 1.0 + (0.5 + 0.4 * c) * rng.normal());
  }
  return x;
}

struct StepResult {
  std::vector<float> y, dx, dgamma, dbeta;
};

StepResult train_step(NormLayer& layer, const std::vector<float>& x, const Shape& s,
               const std::vector<float>& dy) {
  StepResult r;
  r.y = forward(layer, x, s, true);
  r.dx = backward(layer, dy);
  if (!layer.params().empty()) {
    r.dgamma = param_grad(layer, "gamma");
    r.dbeta = param_grad(layer, "beta");
  }
  return r;
}

void expect_same(const StepResult& got, const StepResult& want) {
  EXPECT_CLOSE("y", got.y, want.y, kAtol, kRtol);
  EXPECT_CLOSE("dx", got.dx, want.dx, kAtol, kRtol);
  EXPECT_CLOSE("dgamma", got.dgamma, want.dgamma, kAtol, kRtol);
  EXPECT_CLOSE("dbeta", got.dbeta, want.dbeta, kAtol, kRtol);
}

class ShapeParam : public ::testing::TestWithParam<Shape> {};
std::string shape_name(const ::testing::TestParamInfo<Shape>& info) {
  std::string t = "s";
  for (int64_t d : info.param) t += "_" + std::to_string(d);
  return t;
}

// ---- Batch Renorm (rMax=1, dMax=0) == BatchNorm ------------------------------------------------

class BrnEqualsBn : public ShapeParam {};

TEST_P(BrnEqualsBn, ThreeStepsAffineAndNot) {
  const Shape s = GetParam();
  const int64_t C = s[1];
  for (bool affine : {true, false}) {
    SCOPED_TRACE(affine ? "affine" : "no affine");
    Rng rng(77 + C);
    auto bn = make_layer("batchnorm", {{"channels", C}, {"affine", affine}});
    // A non-default running state and momentum: with r = 1 and d = 0 it must not matter.
    auto brn = make_layer("batchrenorm",
                          {{"channels", C}, {"rMax", 1}, {"dMax", 0}, {"momentum", 0.5}, {"affine", affine}});
    set_state(*brn, "runningMean", rng.normals(C, 3.0, 1.0));
    set_state(*brn, "runningStd", std::vector<float>(C, 0.25f));
    if (affine) {
      const std::vector<float> g = rng.normals(C, 1.0, 0.5), b = rng.normals(C, 0.0, 0.3);
      set_param(*bn, "gamma", g);
      set_param(*bn, "beta", b);
      set_param(*brn, "gamma", g);
      set_param(*brn, "beta", b);
    }
    for (int step = 0; step < 3; ++step) {
      SCOPED_TRACE("step " + std::to_string(step));
      const std::vector<float> x = input(rng, s), dy = rng.normals(x.size(), 0.3, 1.0);
      const StepResult want = train_step(*bn, x, s, dy);
      const StepResult got = train_step(*brn, x, s, dy);
      expect_same(got, want);
      EXPECT_EQ(as_brn(*brn).last_r(), std::vector<float>(C, 1.0f));
      for (float d : as_brn(*brn).last_d()) EXPECT_EQ(d, 0.0f);
    }
  }
}

// set_limits(1, 0) on a layer made with other limits gives BatchNorm too, and the previous limits
// come back when set again.
TEST(BrnEqualsBnAfterSetLimits, SwitchesBothWays) {
  const Shape s{4, 3, 5};
  Rng rng(5);
  auto bn = make_layer("batchnorm", {{"channels", 3}});
  auto brn = make_layer("batchrenorm", {{"channels", 3}, {"rMax", 3}, {"dMax", 5}, {"momentum", 0}});
  // Running state far from the batch statistics, so rMax=3, dMax=5 visibly clip.
  set_state(*brn, "runningMean", {4.0f, -4.0f, 0.0f});
  set_state(*brn, "runningStd", {0.1f, 0.1f, 10.0f});
  const std::vector<float> x = input(rng, s), dy = rng.normals(x.size(), 0.3, 1.0);
  const StepResult clipped = train_step(*brn, x, s, dy);
  const StepResult want = train_step(*bn, x, s, dy);
  EXPECT_GT(max_abs_diff(clipped.y, want.y), 0.5);
  as_brn(*brn).set_limits(1, 0);
  expect_same(train_step(*brn, x, s, dy), want);
  as_brn(*brn).set_limits(3, 5);
  const StepResult again = train_step(*brn, x, s, dy);
  EXPECT_TRUE(check_identical("y after restoring the limits", again.y, clipped.y));
  EXPECT_EQ(normlab::layer_options(*brn)["rMax"], 3.0);
  EXPECT_EQ(normlab::layer_options(*brn)["dMax"], 5.0);
}

INSTANTIATE_TEST_SUITE_P(Shapes, BrnEqualsBn,
                         ::testing::Values(Shape{4, 3}, Shape{2, 3, 5}, Shape{2, 3, 3, 5},
                                           Shape{3, 1, 7}),
                         shape_name);

// ---- GroupNorm(groups=1) == LayerNorm over (C, H, W) -------------------------------------------

class GnG1EqualsLn : public ShapeParam {};

TEST_P(GnG1EqualsLn, BroadcastAffine) {
  const Shape s = GetParam();
  const int64_t C = s[1], S = numel(s) / (s[0] * C);
  Rng rng(11 + numel(s));
  auto gn = make_layer("groupnorm", {{"channels", C}, {"groups", 1}});
  std::vector<int64_t> ns(s.begin() + 1, s.end());
  auto ln = make_layer("layernorm", {{"normalizedShape", ns}});
  const std::vector<float> g = rng.normals(C, 1.0, 0.5), b = rng.normals(C, 0.0, 0.3);
  std::vector<float> gl(C * S), bl(C * S);
  for (int64_t i = 0; i < C * S; ++i) {
    gl[i] = g[i / S];
    bl[i] = b[i / S];
  }
  set_param(*gn, "gamma", g);
  set_param(*gn, "beta", b);
  set_param(*ln, "gamma", gl);
  set_param(*ln, "beta", bl);
  const std::vector<float> x = input(rng, s), dy = rng.normals(x.size(), 0.3, 1.0);
  const StepResult got = train_step(*gn, x, s, dy);
  StepResult want = train_step(*ln, x, s, dy);
  // LayerNorm's elementwise gradients summed over the positions sharing a channel.
  std::vector<float> dg(C, 0), db(C, 0);
  std::vector<double> dg64(C, 0), db64(C, 0);
  for (int64_t i = 0; i < C * S; ++i) {
    dg64[i / S] += want.dgamma[i];
    db64[i / S] += want.dbeta[i];
  }
  for (int64_t c = 0; c < C; ++c) {
    dg[c] = static_cast<float>(dg64[c]);
    db[c] = static_cast<float>(db64[c]);
  }
  want.dgamma = dg;
  want.dbeta = db;
  expect_same(got, want);
  // Inference is the same computation for both.
  EXPECT_CLOSE("inference y", forward(*gn, x, s, false), forward(*ln, x, s, false), kAtol, kRtol);
}

INSTANTIATE_TEST_SUITE_P(Shapes, GnG1EqualsLn,
                         ::testing::Values(Shape{2, 4}, Shape{3, 4, 7}, Shape{2, 4, 3, 5},
                                           Shape{1, 6, 2, 3}),
                         shape_name);

// ---- GroupNorm(groups=C) == InstanceNorm -------------------------------------------------------

class GnGcEqualsIn : public ShapeParam {};

TEST_P(GnGcEqualsIn, AffineAndNot) {
  const Shape s = GetParam();
  const int64_t C = s[1];
  for (bool affine : {true, false}) {
    SCOPED_TRACE(affine ? "affine" : "no affine");
    Rng rng(23 + numel(s));
    auto gn = make_layer("groupnorm", {{"channels", C}, {"groups", C}, {"affine", affine}});
    auto in = make_layer("instancenorm", {{"channels", C}, {"affine", affine}});
    if (affine) {
      const std::vector<float> g = rng.normals(C, 1.0, 0.5), b = rng.normals(C, 0.0, 0.3);
      set_param(*gn, "gamma", g);
      set_param(*gn, "beta", b);
      set_param(*in, "gamma", g);
      set_param(*in, "beta", b);
    }
    const std::vector<float> x = input(rng, s), dy = rng.normals(x.size(), 0.3, 1.0);
    expect_same(train_step(*gn, x, s, dy), train_step(*in, x, s, dy));
    EXPECT_CLOSE("inference y", forward(*gn, x, s, false), forward(*in, x, s, false), kAtol, kRtol);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, GnGcEqualsIn,
                         ::testing::Values(Shape{2, 3, 5}, Shape{2, 3, 3, 5}, Shape{1, 4, 7},
                                           Shape{3, 2, 2, 2}),
                         shape_name);

// ---- BatchNorm without running stats: inference == training ------------------------------------

TEST(BnNoRunningStats, InferenceEqualsTrainingOutput) {
  for (const Shape& s : {Shape{4, 3}, Shape{2, 3, 5}, Shape{2, 3, 3, 5}}) {
    SCOPED_TRACE(normlab::to_string(s));
    Rng rng(31 + numel(s));
    auto bn = make_layer("batchnorm", {{"channels", 3}, {"trackRunningStats", false}});
    auto tracked = make_layer("batchnorm", {{"channels", 3}});
    const std::vector<float> g = rng.normals(3, 1.0, 0.5), b = rng.normals(3, 0.0, 0.3);
    for (auto* l : {bn.get(), tracked.get()}) {
      set_param(*l, "gamma", g);
      set_param(*l, "beta", b);
    }
    EXPECT_TRUE(bn->state().empty());
    const std::vector<float> x = input(rng, s);
    const std::vector<float> y_infer = forward(*bn, x, s, false);
    const std::vector<float> y_train = forward(*bn, x, s, true);
    EXPECT_TRUE(check_identical("inference vs training", y_infer, y_train));
    EXPECT_TRUE(check_identical("vs tracked BN training", forward(*tracked, x, s, true), y_train));
    // The tracked layer's inference uses its running statistics instead: different numbers.
    EXPECT_GT(max_abs_diff(forward(*tracked, x, s, false), y_train), 0.1);
  }
}

// LayerNorm, GroupNorm and InstanceNorm have no running state: both modes are the same map.
TEST(StatelessMethods, InferenceEqualsTraining) {
  const Shape s{2, 4, 3, 5};
  const std::vector<std::pair<std::string, json>> layers = {
      {"layernorm", {{"normalizedShape", {3, 5}}}},
      {"groupnorm", {{"channels", 4}, {"groups", 2}}},
      {"instancenorm", {{"channels", 4}}}};
  for (const auto& [method, options] : layers) {
    SCOPED_TRACE(method);
    Rng rng(3);
    auto layer = make_layer(method, options);
    EXPECT_TRUE(layer->state().empty());
    const std::vector<float> x = input(rng, s);
    EXPECT_TRUE(check_identical("inference vs training", forward(*layer, x, s, false),
                                forward(*layer, x, s, true)));
  }
}

}  // namespace
}  // namespace normlab_test
