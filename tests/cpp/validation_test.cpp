// Every validation error the core throws (normlab::Error), with its message, and what a layer is
// like after one: a rejected call changes nothing (no half-written params or state, no lost
// training cache), so the layer keeps computing the right numbers.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "normlab/core/shape.h"
#include "normlab/norm/layernorm.h"
#include "test_util.h"

namespace normlab_test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

const std::vector<std::string> kChannelMethods = {"batchnorm", "batchrenorm", "groupnorm",
                                                  "instancenorm"};
// The first five methods, all with exactly gamma and beta as parameters (tests of later methods'
// parameters and shape errors live with those methods' tests, e.g. methods/frn_test.cpp).
const std::vector<std::string> kGammaBetaMethods = {"batchnorm", "batchrenorm", "layernorm",
                                                    "groupnorm", "instancenorm"};

// Valid options for each method, to which a test adds or overrides one key.
json base_options(const std::string& method) {
  if (method == "layernorm") return {{"normalizedShape", {3, 5}}};
  if (method == "rmsnorm") return {{"normalizedShape", {3, 5}}};
  if (method == "lrn") return {{"size", 3}};
  if (method == "groupnorm") return {{"channels", 6}, {"groups", 3}};
  return {{"channels", 3}};
}

json with(json options, const std::string& key, json value) {
  options[key] = std::move(value);
  return options;
}

json without(json options, const std::string& key) {
  options.erase(key);
  return options;
}

// A valid training input for base_options(method).
Shape base_shape(const std::string& method) {
  if (method == "groupnorm") return {2, 6, 3, 5};
  return {2, 3, 3, 5};
}

// ---- error messages -----------------------------------------------------------------------

// fail() writes non-finite numbers as the JS API's user wrote them (NaN, Infinity, -Infinity), for
// float and double alike, and everything else as an ostream would.
TEST(ErrorMessages, NonFiniteNumbersSpelledAsInJs) {
  EXPECT_NORMLAB_ERROR(normlab::fail("x: ", std::nan(""), " ", INFINITY, " ", -INFINITY),
                       ::testing::Eq("x: NaN Infinity -Infinity"));
  EXPECT_NORMLAB_ERROR(normlab::fail("y: ", std::numeric_limits<float>::quiet_NaN(), "/",
                                     -std::numeric_limits<float>::infinity()),
                       ::testing::Eq("y: NaN/-Infinity"));
  EXPECT_NORMLAB_ERROR(normlab::fail("z: ", 1.5, " ", 3, " ", std::string("s"), " ", 2.5f),
                       ::testing::Eq("z: 1.5 3 s 2.5"));
  // normlab::Error is a std::runtime_error (the bindings catch it as such at the boundary).
  EXPECT_THROW(normlab::fail("e"), std::runtime_error);
}

// ---- create_norm --------------------------------------------------------------------------------

TEST(CreateNorm, MethodsList) {
  const std::vector<std::string>& all = normlab::norm_methods();
  ASSERT_GE(all.size(), 5u);
  EXPECT_EQ(std::vector<std::string>(all.begin(), all.begin() + 5),
            (std::vector<std::string>{"batchnorm", "batchrenorm", "layernorm", "groupnorm", "instancenorm"}));
  EXPECT_THAT(all, ::testing::IsSupersetOf({"lrn", "rmsnorm", "frn", "l1batchnorm"}));
  for (const std::string& m : normlab::norm_methods()) {
    auto layer = make_layer(m, base_options(m));
    EXPECT_EQ(layer->method(), m);
  }
}

TEST(CreateNorm, UnknownMethodListsKnownOnes) {
  for (const std::string bad : {"batchnorm2d", "", "BatchNorm", "rms_norm"}) {
    EXPECT_NORMLAB_ERROR(make_layer(bad, json::object()),
                         AllOf(HasSubstr("unknown normalization method '" + bad + "'"),
                               HasSubstr("(known: batchnorm, batchrenorm, layernorm, groupnorm, instancenorm, "),
                               HasSubstr("lrn, rmsnorm, frn, l1batchnorm")));
  }
}

TEST(CreateNorm, UnknownOptionListsKnownOnes) {
  const std::vector<std::pair<std::string, std::string>> known = {
      {"batchnorm", "channels, eps, momentum, affine, trackRunningStats"},
      {"batchrenorm", "channels, eps, momentum, rMax, dMax, affine"},
      {"layernorm", "normalizedShape, eps, affine"},
      {"groupnorm", "channels, groups, eps, affine"},
      {"instancenorm", "channels, eps, affine"}};
  for (const auto& [method, list] : known) {
    SCOPED_TRACE(method);
    // snake_case (PyTorch's spelling) is not an alias of the camelCase names.
    EXPECT_NORMLAB_ERROR(make_layer(method, with(base_options(method), "num_features", 3)),
                         AllOf(StartsWith(method + ": unknown option 'num_features'"),
                               HasSubstr("(known: " + list + ")")));
  }
  // Options that belong to another method are unknown too.
  EXPECT_NORMLAB_ERROR(make_layer("instancenorm", with(base_options("instancenorm"), "trackRunningStats", false)),
                       HasSubstr("instancenorm: unknown option 'trackRunningStats'"));
  EXPECT_NORMLAB_ERROR(make_layer("batchnorm", with(base_options("batchnorm"), "rMax", 3)),
                       HasSubstr("batchnorm: unknown option 'rMax'"));
  EXPECT_NORMLAB_ERROR(make_layer("layernorm", with(base_options("layernorm"), "channels", 3)),
                       HasSubstr("layernorm: unknown option 'channels'"));
}

TEST(CreateNorm, OptionsMustBeAnObject) {
  EXPECT_NORMLAB_ERROR(make_layer("batchnorm", json::array({3})),
                       HasSubstr("batchnorm: options must be an object"));
  EXPECT_NORMLAB_ERROR(make_layer("layernorm", json(5)), HasSubstr("layernorm: options must be an object"));
  // null means "no options": fine where nothing is required, an error about the required key otherwise.
  EXPECT_NORMLAB_ERROR(make_layer("batchnorm", json(nullptr)),
                       HasSubstr("batchnorm: option channels is required"));
}

TEST(CreateNorm, ChannelsMustBeAPositiveInteger) {
  for (const std::string& m : kChannelMethods) {
    SCOPED_TRACE(m);
    const json o = base_options(m);
    const json o_g1 = m == "groupnorm" ? with(o, "groups", 1) : o;  // groups must divide channels
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o_g1, "channels", 0)),
                         HasSubstr(m + ": channels must be a positive integer, got 0"));
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o_g1, "channels", -1)),
                         HasSubstr(m + ": channels must be a positive integer, got -1"));
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o_g1, "channels", 2.5)),
                         HasSubstr(m + ": option channels must be an integer, got 2.5"));
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o_g1, "channels", "NaN")),
                         HasSubstr(m + ": option channels must be an integer, got \"NaN\""));
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o_g1, "channels", "Infinity")),
                         HasSubstr(m + ": option channels must be an integer, got \"Infinity\""));
    // Oversized layers are refused before anything is allocated (2^24 channels at most).
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o_g1, "channels", 1e12)),
                         HasSubstr(m + ": channels must be at most 16777216, got 1000000000000"));
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o_g1, "channels", 16777217)),
                         HasSubstr(m + ": channels must be at most 16777216, got 16777217"));
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o_g1, "channels", "3")),
                         HasSubstr(m + ": option channels must be a number, got \"3\""));
    EXPECT_NORMLAB_ERROR(make_layer(m, without(o, "channels")),
                         HasSubstr(m + ": option channels is required"));
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o, "channels", nullptr)),
                         HasSubstr(m + ": option channels is required"));
    // A whole number written as a float is an integer.
    EXPECT_NO_THROW(make_layer(m, with(o_g1, "channels", 4.0)));
  }
}

TEST(CreateNorm, GroupsMustDivideChannels) {
  EXPECT_NORMLAB_ERROR(make_layer("groupnorm", {{"channels", 6}, {"groups", 4}}),
                       HasSubstr("groupnorm: groups (4) must divide channels (6)"));
  EXPECT_NORMLAB_ERROR(make_layer("groupnorm", {{"channels", 6}, {"groups", 12}}),
                       HasSubstr("groupnorm: groups (12) must divide channels (6)"));
  EXPECT_NORMLAB_ERROR(make_layer("groupnorm", {{"channels", 6}, {"groups", 0}}),
                       HasSubstr("groupnorm: groups must be a positive integer, got 0"));
  EXPECT_NORMLAB_ERROR(make_layer("groupnorm", {{"channels", 6}, {"groups", -2}}),
                       HasSubstr("groupnorm: groups must be a positive integer, got -2"));
  EXPECT_NORMLAB_ERROR(make_layer("groupnorm", {{"channels", 6}, {"groups", 1.5}}),
                       HasSubstr("groupnorm: option groups must be an integer, got 1.5"));
  EXPECT_NORMLAB_ERROR(make_layer("groupnorm", {{"channels", 6}}),
                       HasSubstr("groupnorm: option groups is required"));
  for (int g : {1, 2, 3, 6}) EXPECT_NO_THROW(make_layer("groupnorm", {{"channels", 6}, {"groups", g}}));
}

TEST(CreateNorm, EpsMustBeFiniteAndPositive) {
  for (const std::string& m : normlab::norm_methods()) {
    SCOPED_TRACE(m);
    if (m == "lrn") continue;  // no eps: its k > 0 keeps the denominator positive
    const json o = base_options(m);
    const std::string prefix = m + ": eps must be a finite number > 0, got ";
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o, "eps", 0)), HasSubstr(prefix + "0"));
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o, "eps", -1e-5)), HasSubstr(prefix + "-1e-05"));
    // Non-finite numbers arrive as the strings the JS wrapper writes for them.
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o, "eps", "NaN")), HasSubstr(prefix + "NaN"));
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o, "eps", "Infinity")), HasSubstr(prefix + "Infinity"));
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o, "eps", "-Infinity")), HasSubstr(prefix + "-Infinity"));
    // Other strings and other types are not numbers.
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o, "eps", "nan")),
                         HasSubstr(m + ": option eps must be a number, got \"nan\""));
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o, "eps", true)),
                         HasSubstr(m + ": option eps must be a number, got true"));
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o, "eps", json::array({1e-5}))),
                         HasSubstr(m + ": option eps must be a number, got [1e-05]"));
    // null means the default (1e-5; rmsnorm float32's machine epsilon, frn 1e-6).
    auto layer = make_layer(m, with(o, "eps", nullptr));
    const double default_eps = m == "rmsnorm" ? 1.1920928955078125e-07 : m == "frn" ? 1e-6 : 1e-5;
    EXPECT_EQ(normlab::layer_options(*layer)["eps"], default_eps);
    EXPECT_EQ(normlab::layer_options(*make_layer(m, with(o, "eps", 1e-300)))["eps"], 1e-300);
  }
}

TEST(CreateNorm, Momentum) {
  for (const std::string m : {"batchnorm", "batchrenorm"}) {
    SCOPED_TRACE(m);
    const json o = base_options(m);
    const std::string prefix =
        std::string(m) + (std::string(m) == "batchnorm" ? ": momentum must be in [0, 1] or null, got "
                                                        : ": momentum must be in [0, 1], got ");
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o, "momentum", 1.5)), HasSubstr(prefix + "1.5"));
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o, "momentum", -0.1)), HasSubstr(prefix + "-0.1"));
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o, "momentum", "NaN")), HasSubstr(prefix + "NaN"));
    EXPECT_NORMLAB_ERROR(make_layer(m, with(o, "momentum", "Infinity")), HasSubstr(prefix + "Infinity"));
    // The closed interval's ends are fine.
    EXPECT_EQ(normlab::layer_options(*make_layer(m, with(o, "momentum", 0)))["momentum"], 0.0);
    EXPECT_EQ(normlab::layer_options(*make_layer(m, with(o, "momentum", 1)))["momentum"], 1.0);
  }
  // null: BatchNorm's cumulative moving average (PyTorch momentum=None) ...
  auto bn = make_layer("batchnorm", {{"channels", 3}, {"momentum", nullptr}});
  EXPECT_TRUE(normlab::layer_options(*bn)["momentum"].is_null());
  // ... which Batch Renorm does not have: there null is an error, not silently the default.
  EXPECT_NORMLAB_ERROR(make_layer("batchrenorm", {{"channels", 3}, {"momentum", nullptr}}),
                       HasSubstr("batchrenorm: momentum must be in [0, 1], got null"));
  // Absent: the defaults.
  EXPECT_EQ(normlab::layer_options(*make_layer("batchnorm", {{"channels", 3}}))["momentum"], 0.1);
}

TEST(CreateNorm, BatchRenormLimits) {
  const json o = base_options("batchrenorm");
  EXPECT_NORMLAB_ERROR(make_layer("batchrenorm", with(o, "rMax", 0.5)),
                       HasSubstr("batchrenorm: rMax must be a finite number >= 1, got 0.5"));
  EXPECT_NORMLAB_ERROR(make_layer("batchrenorm", with(o, "rMax", "Infinity")),
                       HasSubstr("batchrenorm: rMax must be a finite number >= 1, got Infinity"));
  EXPECT_NORMLAB_ERROR(make_layer("batchrenorm", with(o, "rMax", "NaN")),
                       HasSubstr("batchrenorm: rMax must be a finite number >= 1, got NaN"));
  EXPECT_NORMLAB_ERROR(make_layer("batchrenorm", with(o, "dMax", -1)),
                       HasSubstr("batchrenorm: dMax must be a finite number >= 0, got -1"));
  EXPECT_NORMLAB_ERROR(make_layer("batchrenorm", with(o, "dMax", "Infinity")),
                       HasSubstr("batchrenorm: dMax must be a finite number >= 0, got Infinity"));
  EXPECT_NORMLAB_ERROR(make_layer("batchrenorm", with(o, "dMax", "NaN")),
                       HasSubstr("batchrenorm: dMax must be a finite number >= 0, got NaN"));
  auto brn = make_layer("batchrenorm", with(with(o, "rMax", 1), "dMax", 0));  // the limits' ends
  EXPECT_EQ(normlab::layer_options(*brn)["rMax"], 1.0);
  EXPECT_EQ(normlab::layer_options(*brn)["dMax"], 0.0);
}

TEST(CreateNorm, BooleansMustBeBooleans) {
  EXPECT_NORMLAB_ERROR(make_layer("batchnorm", {{"channels", 3}, {"affine", "yes"}}),
                       HasSubstr("batchnorm: option affine must be true or false, got \"yes\""));
  EXPECT_NORMLAB_ERROR(make_layer("batchnorm", {{"channels", 3}, {"trackRunningStats", 1}}),
                       HasSubstr("batchnorm: option trackRunningStats must be true or false, got 1"));
  EXPECT_NORMLAB_ERROR(make_layer("layernorm", {{"normalizedShape", {3}}, {"affine", 0}}),
                       HasSubstr("layernorm: option affine must be true or false, got 0"));
}

TEST(CreateNorm, NormalizedShape) {
  EXPECT_NORMLAB_ERROR(make_layer("layernorm", {{"normalizedShape", json::array()}}),
                       HasSubstr("layernorm: option normalizedShape must be a non-empty array of positive integers, got []"));
  EXPECT_NORMLAB_ERROR(make_layer("layernorm", {{"normalizedShape", 5}}),
                       HasSubstr("layernorm: option normalizedShape must be a non-empty array of positive integers, got 5"));
  EXPECT_NORMLAB_ERROR(make_layer("layernorm", {{"normalizedShape", {3, 0}}}),
                       HasSubstr("layernorm: option normalizedShape: shape dim 1 must be a positive integer, got 0"));
  EXPECT_NORMLAB_ERROR(make_layer("layernorm", {{"normalizedShape", {-4}}}),
                       HasSubstr("layernorm: option normalizedShape: shape dim 0 must be a positive integer, got -4"));
  EXPECT_NORMLAB_ERROR(make_layer("layernorm", {{"normalizedShape", {2.5}}}),
                       HasSubstr("layernorm: option normalizedShape: shape dim 0 must be a positive integer, got 2.5"));
  EXPECT_NORMLAB_ERROR(make_layer("layernorm", {{"normalizedShape", {3, "NaN"}}}),
                       HasSubstr("layernorm: option normalizedShape: shape dim 1 must be a positive integer, got NaN"));
  EXPECT_NORMLAB_ERROR(make_layer("layernorm", {{"normalizedShape", {65536, 65536}}}),
                       HasSubstr("layernorm: normalizedShape must have at most 16777216 elements, got [65536,65536]"));
  EXPECT_NORMLAB_ERROR(make_layer("layernorm", json::object()),
                       HasSubstr("layernorm: option normalizedShape is required"));
  // The low-level constructor checks too (it does not trust its caller).
  normlab::LayerNormOptions lo;
  EXPECT_NORMLAB_ERROR(normlab::LayerNorm{lo}, HasSubstr("layernorm: normalizedShape must not be empty"));
  lo.normalized_shape = {4, 0};
  EXPECT_NORMLAB_ERROR(normlab::LayerNorm{lo},
                       HasSubstr("layernorm: normalizedShape: shape dim 1 must be a positive integer, got 0"));
}

// Every layer's options round-trip through layer_options, defaults filled in.
TEST(CreateNorm, LayerOptionsRoundTrip) {
  const std::vector<std::pair<std::string, json>> want = {
      {"batchnorm", {{"channels", 3}, {"eps", 1e-5}, {"momentum", 0.1}, {"affine", true}, {"trackRunningStats", true}}},
      {"batchrenorm", {{"channels", 3}, {"eps", 1e-5}, {"momentum", 0.01}, {"rMax", 3.0}, {"dMax", 5.0}, {"affine", true}}},
      {"layernorm", {{"normalizedShape", {3, 5}}, {"eps", 1e-5}, {"affine", true}}},
      {"groupnorm", {{"channels", 6}, {"groups", 3}, {"eps", 1e-5}, {"affine", true}}},
      // affine defaults to true for InstanceNorm too (unlike PyTorch).
      {"instancenorm", {{"channels", 3}, {"eps", 1e-5}, {"affine", true}}}};
  for (const auto& [m, full] : want) {
    SCOPED_TRACE(m);
    auto layer = make_layer(m, base_options(m));
    EXPECT_EQ(normlab::layer_options(*layer), full);
    auto again = make_layer(m, normlab::layer_options(*layer));
    EXPECT_EQ(normlab::layer_options(*again), full);
  }
  auto bn = make_layer("batchnorm", {{"channels", 2}, {"momentum", nullptr}, {"affine", false},
                                     {"trackRunningStats", false}, {"eps", 0.25}});
  auto bn2 = make_layer("batchnorm", normlab::layer_options(*bn));
  EXPECT_EQ(normlab::layer_options(*bn2), normlab::layer_options(*bn));
  EXPECT_TRUE(bn2->params().empty());
  EXPECT_TRUE(bn2->state().empty());
}

// ---- forward shape checks --------------------------------------------------------------------

TEST(Forward, WrongChannels) {
  for (const std::string& m : kChannelMethods) {
    SCOPED_TRACE(m);
    auto layer = make_layer(m, base_options(m));
    const int64_t C = m == "groupnorm" ? 6 : 3;
    const Shape s{2, C + 1, 5};
    const std::vector<float> x(numel(s), 1.0f);
    for (bool training : {true, false}) {
      EXPECT_NORMLAB_ERROR(forward(*layer, x, s, training),
                           HasSubstr(m + ": input shape [2," + std::to_string(C + 1) + ",5] has " +
                                     std::to_string(C + 1) + " channels (dim 1), layer has " +
                                     std::to_string(C)));
    }
  }
}

TEST(Forward, RankTooSmall) {
  auto in = make_layer("instancenorm", {{"channels", 3}});
  EXPECT_NORMLAB_ERROR(forward(*in, std::vector<float>(6), {2, 3}, true),
                       HasSubstr("instancenorm: input shape [2,3] must have at least 3 dims [N,C,L,...]"));
  EXPECT_NORMLAB_ERROR(forward(*in, std::vector<float>(6), {2, 3}, false),
                       HasSubstr("instancenorm: input shape [2,3] must have at least 3 dims"));
  for (const std::string m : {"batchnorm", "batchrenorm", "groupnorm"}) {
    SCOPED_TRACE(m);
    auto layer = make_layer(m, base_options(m));
    EXPECT_NORMLAB_ERROR(forward(*layer, std::vector<float>(3), {3}, true),
                         HasSubstr(m + std::string(": input shape [3] must have at least 2 dims [N,C,...]")));
  }
  // Rank 2 is fine for the others (InstanceNorm alone needs a spatial axis).
  auto gn = make_layer("groupnorm", base_options("groupnorm"));
  EXPECT_NO_THROW(forward(*gn, std::vector<float>(12, 0.5f), {2, 6}, true));
}

TEST(Forward, LayerNormTrailingDims) {
  auto ln = make_layer("layernorm", {{"normalizedShape", {3, 4}}});
  EXPECT_NORMLAB_ERROR(forward(*ln, std::vector<float>(30), {2, 3, 5}, true),
                       HasSubstr("layernorm: input shape [2,3,5] does not end with normalizedShape [3,4]"));
  EXPECT_NORMLAB_ERROR(forward(*ln, std::vector<float>(24), {2, 4, 3}, false),
                       HasSubstr("layernorm: input shape [2,4,3] does not end with normalizedShape [3,4]"));
  EXPECT_NORMLAB_ERROR(forward(*ln, std::vector<float>(4), {4}, true),
                       HasSubstr("layernorm: input shape [4] does not end with normalizedShape [3,4]"));
  // The input may be exactly normalizedShape (one row), or have any number of leading dims.
  EXPECT_NO_THROW(forward(*ln, std::vector<float>(12, 1.0f), {3, 4}, true));
  EXPECT_NO_THROW(forward(*ln, std::vector<float>(48, 1.0f), {2, 2, 3, 4}, true));
}

TEST(Forward, OneValuePerChannelWithBatchStatistics) {
  auto bn = make_layer("batchnorm", {{"channels", 3}});
  for (const Shape& s : {Shape{1, 3}, Shape{1, 3, 1}, Shape{1, 3, 1, 1}}) {
    SCOPED_TRACE(normlab::to_string(s));
    EXPECT_NORMLAB_ERROR(forward(*bn, std::vector<float>(3), s, true),
                         HasSubstr("batchnorm: expected more than 1 value per channel when using "
                                   "batch statistics, got input shape " + normlab::to_string(s)));
  }
  // Inference with running statistics takes a single sample ...
  EXPECT_NO_THROW(forward(*bn, {1, 2, 3}, {1, 3}, false));
  // ... without them, inference uses batch statistics and has the same restriction.
  auto bn_nt = make_layer("batchnorm", {{"channels", 3}, {"trackRunningStats", false}});
  EXPECT_NORMLAB_ERROR(forward(*bn_nt, {1, 2, 3}, {1, 3}, false),
                       HasSubstr("batchnorm: expected more than 1 value per channel when using batch "
                                 "statistics, got input shape [1,3]"));
  EXPECT_NORMLAB_ERROR(forward(*bn_nt, {1, 2, 3}, {1, 3}, true), HasSubstr("more than 1 value per channel"));
  // Two values per channel (from N or from space) are enough.
  EXPECT_NO_THROW(forward(*bn, std::vector<float>(6, 0.5f), {2, 3}, true));
  EXPECT_NO_THROW(forward(*bn, std::vector<float>(6, 0.5f), {1, 3, 2}, true));

  auto brn = make_layer("batchrenorm", {{"channels", 3}});
  EXPECT_NORMLAB_ERROR(forward(*brn, {1, 2, 3}, {1, 3}, true),
                       HasSubstr("batchrenorm: expected more than 1 value per channel when using batch statistics, "
                                 "got input shape [1,3]"));
  EXPECT_NORMLAB_ERROR(forward(*brn, {1, 2, 3}, {1, 3, 1, 1}, true),
                       HasSubstr("batchrenorm: expected more than 1 value per channel when using batch statistics"));
  EXPECT_NO_THROW(forward(*brn, {1, 2, 3}, {1, 3}, false));
}

// ---- backward without a training forward -------------------------------------------------------

TEST(Backward, NeedsATrainingForward) {
  for (const std::string& m : normlab::norm_methods()) {
    SCOPED_TRACE(m);
    auto layer = make_layer(m, base_options(m));
    const Shape s = base_shape(m);
    const std::vector<float> x(numel(s), 0.5f), dy(numel(s), 1.0f);
    const std::string msg = m + ": backward needs a training-mode forward first";
    EXPECT_TRUE(layer->cached_shape().empty());
    EXPECT_NORMLAB_ERROR(backward(*layer, dy), HasSubstr(msg));
    forward(*layer, x, s, /*training=*/false);
    EXPECT_TRUE(layer->cached_shape().empty());
    EXPECT_NORMLAB_ERROR(backward(*layer, dy), HasSubstr(msg));
    forward(*layer, x, s, /*training=*/true);
    EXPECT_EQ(layer->cached_shape(), s);
    EXPECT_NO_THROW(backward(*layer, dy));
  }
}

// ---- set_param / set_state ----------------------------------------------------------------------

TEST(SetParam, Errors) {
  for (const std::string& m : kGammaBetaMethods) {
    SCOPED_TRACE(m);
    auto layer = make_layer(m, base_options(m));
    const size_t P = layer->params()[0].value.size();
    EXPECT_EQ(P, m == "layernorm" ? 15u : m == "groupnorm" ? 6u : 3u);
    EXPECT_NORMLAB_ERROR(set_param(*layer, "weight", std::vector<float>(P, 1)),
                         HasSubstr(m + ": no parameter 'weight' (known: gamma, beta)"));
    EXPECT_NORMLAB_ERROR(set_param(*layer, "gamma", std::vector<float>(P - 1, 1)),
                         HasSubstr(m + ": gamma needs " + std::to_string(P) + " values, got " + std::to_string(P - 1)));
    EXPECT_NORMLAB_ERROR(set_param(*layer, "beta", std::vector<float>(P + 1, 1)),
                         HasSubstr(m + ": beta needs " + std::to_string(P) + " values, got " + std::to_string(P + 1)));
    std::vector<float> bad(P, 1.0f);
    bad[1] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_NORMLAB_ERROR(set_param(*layer, "gamma", bad), HasSubstr(m + ": gamma[1] is not finite"));
    bad[1] = 1.0f;
    bad[P - 1] = -std::numeric_limits<float>::infinity();
    EXPECT_NORMLAB_ERROR(set_param(*layer, "beta", bad),
                         HasSubstr(m + ": beta[" + std::to_string(P - 1) + "] is not finite"));
    // Nothing was written by the failed calls.
    EXPECT_EQ(param_value(*layer, "gamma"), std::vector<float>(P, 1.0f));
    EXPECT_EQ(param_value(*layer, "beta"), std::vector<float>(P, 0.0f));
    // Without affine there are no parameters at all.
    auto plain = make_layer(m, with(base_options(m), "affine", false));
    EXPECT_TRUE(plain->params().empty());
    EXPECT_NORMLAB_ERROR(set_param(*plain, "gamma", std::vector<float>(P, 1)),
                         HasSubstr(m + ": no parameter 'gamma' (it has none)"));
  }
}

TEST(SetState, BatchNorm) {
  auto bn = make_layer("batchnorm", {{"channels", 3}});
  EXPECT_NORMLAB_ERROR(set_state(*bn, "runningStd", {1, 1, 1}),
                       HasSubstr("batchnorm: no state 'runningStd' (known: runningMean, runningVar, numBatchesTracked)"));
  EXPECT_NORMLAB_ERROR(set_state(*bn, "runningMean", {0, 0}),
                       HasSubstr("batchnorm: runningMean needs 3 values, got 2"));
  EXPECT_NORMLAB_ERROR(set_state(*bn, "numBatchesTracked", {1, 2}),
                       HasSubstr("batchnorm: numBatchesTracked needs 1 values, got 2"));
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  EXPECT_NORMLAB_ERROR(set_state(*bn, "runningMean", {0, nan, 0}),
                       HasSubstr("batchnorm: runningMean[1] is not finite"));
  EXPECT_NORMLAB_ERROR(set_state(*bn, "runningVar", {1, 1, inf}),
                       HasSubstr("batchnorm: runningVar[2] is not finite"));
  EXPECT_NORMLAB_ERROR(set_state(*bn, "runningVar", {1, 1, -0.5f}),
                       HasSubstr("batchnorm: runningVar[2] must be >= 0, got -0.5"));
  EXPECT_NORMLAB_ERROR(set_state(*bn, "numBatchesTracked", {1.5f}),
                       HasSubstr("batchnorm: numBatchesTracked must be a whole number >= 0, got 1.5"));
  EXPECT_NORMLAB_ERROR(set_state(*bn, "numBatchesTracked", {-1}),
                       HasSubstr("batchnorm: numBatchesTracked must be a whole number >= 0, got -1"));
  EXPECT_EQ(state_value(*bn, "runningMean"), std::vector<float>(3, 0.0f));
  EXPECT_EQ(state_value(*bn, "runningVar"), std::vector<float>(3, 1.0f));
  EXPECT_EQ(state_value(*bn, "numBatchesTracked"), std::vector<float>{0.0f});
  // A zero variance is a valid state (a constant feature); inference then divides by sqrt(eps).
  EXPECT_NO_THROW(set_state(*bn, "runningVar", {0, 1, 2}));
  EXPECT_NO_THROW(set_state(*bn, "numBatchesTracked", {7}));
  EXPECT_EQ(state_value(*bn, "runningVar"), (std::vector<float>{0, 1, 2}));

  auto bn_nt = make_layer("batchnorm", {{"channels", 3}, {"trackRunningStats", false}});
  EXPECT_NORMLAB_ERROR(set_state(*bn_nt, "runningMean", {0, 0, 0}),
                       HasSubstr("batchnorm: no state 'runningMean' (it has none)"));
}

TEST(SetState, BatchRenorm) {
  auto brn = make_layer("batchrenorm", {{"channels", 2}});
  EXPECT_NORMLAB_ERROR(set_state(*brn, "runningVar", {1, 1}),
                       HasSubstr("batchrenorm: no state 'runningVar' (known: runningMean, runningStd)"));
  EXPECT_NORMLAB_ERROR(set_state(*brn, "runningStd", {0, 1}),
                       HasSubstr("batchrenorm: runningStd[0] must be > 0, got 0"));
  EXPECT_NORMLAB_ERROR(set_state(*brn, "runningStd", {1, -2}),
                       HasSubstr("batchrenorm: runningStd[1] must be > 0, got -2"));
  EXPECT_NORMLAB_ERROR(set_state(*brn, "runningStd", {std::numeric_limits<float>::quiet_NaN(), 1}),
                       HasSubstr("batchrenorm: runningStd[0] is not finite"));
  EXPECT_NORMLAB_ERROR(set_state(*brn, "runningMean", {1, 2, 3}),
                       HasSubstr("batchrenorm: runningMean needs 2 values, got 3"));
  EXPECT_EQ(state_value(*brn, "runningStd"), std::vector<float>(2, 1.0f));
  // runningMean may be any finite number.
  EXPECT_NO_THROW(set_state(*brn, "runningMean", {-1e30f, 1e30f}));
}

TEST(SetState, StatelessMethodsHaveNone) {
  for (const std::string m : {"layernorm", "groupnorm", "instancenorm"}) {
    auto layer = make_layer(m, base_options(m));
    EXPECT_TRUE(layer->state().empty());
    EXPECT_NORMLAB_ERROR(set_state(*layer, "runningMean", {0, 0, 0}),
                         HasSubstr(std::string(m) + ": no state 'runningMean' (it has none)"));
  }
}

TEST(SetLimits, ErrorsLeaveLimitsUnchanged) {
  auto layer = make_layer("batchrenorm", {{"channels", 2}, {"rMax", 2}, {"dMax", 1}});
  normlab::BatchRenorm& brn = as_brn(*layer);
  EXPECT_NORMLAB_ERROR(brn.set_limits(0.5, 1), HasSubstr("batchrenorm: rMax must be a finite number >= 1, got 0.5"));
  EXPECT_NORMLAB_ERROR(brn.set_limits(2, -1), HasSubstr("batchrenorm: dMax must be a finite number >= 0, got -1"));
  EXPECT_NORMLAB_ERROR(brn.set_limits(std::nan(""), 1), HasSubstr("rMax must be a finite number >= 1, got NaN"));
  EXPECT_NORMLAB_ERROR(brn.set_limits(INFINITY, 1), HasSubstr("rMax must be a finite number >= 1, got Infinity"));
  EXPECT_NORMLAB_ERROR(brn.set_limits(2, std::nan("")), HasSubstr("dMax must be a finite number >= 0, got NaN"));
  // rMax valid but dMax not: neither is applied.
  EXPECT_NORMLAB_ERROR(brn.set_limits(5, -3), HasSubstr("dMax must be a finite number >= 0, got -3"));
  EXPECT_EQ(normlab::layer_options(brn)["rMax"], 2.0);
  EXPECT_EQ(normlab::layer_options(brn)["dMax"], 1.0);
  // And the layer still clips with the old limits.
  set_state(brn, "runningStd", {1e-3f, 1e3f});
  set_state(brn, "runningMean", {-100.0f, 1e5f});
  forward(brn, {1, 2, 3, 5, 7, 9, 4, 1}, {2, 2, 2}, true);
  EXPECT_EQ(brn.last_r(), (std::vector<float>{2.0f, 0.5f}));
  EXPECT_EQ(brn.last_d(), (std::vector<float>{1.0f, -1.0f}));
}

// ---- shape_from_doubles ---------------------------------------------------------------------------

TEST(ShapeFromDoubles, Errors) {
  using normlab::shape_from_doubles;
  const double nan = std::nan(""), inf = INFINITY;
  EXPECT_EQ(shape_from_doubles({2, 3, 4}, "t", 2), (Shape{2, 3, 4}));
  EXPECT_EQ(shape_from_doubles({1}, "t", 1), (Shape{1}));
  EXPECT_EQ(shape_from_doubles({}, "t", 0), Shape{});
  EXPECT_NORMLAB_ERROR(shape_from_doubles({2, -3}, "forward", 2),
                       HasSubstr("forward: shape dim 1 must be a positive integer, got -3"));
  EXPECT_NORMLAB_ERROR(shape_from_doubles({2.5, 3}, "forward", 2),
                       HasSubstr("forward: shape dim 0 must be a positive integer, got 2.5"));
  EXPECT_NORMLAB_ERROR(shape_from_doubles({2, 3, 0}, "forward", 2),
                       HasSubstr("forward: shape dim 2 must be a positive integer, got 0"));
  EXPECT_NORMLAB_ERROR(shape_from_doubles({2, nan}, "forward", 2),
                       HasSubstr("forward: shape dim 1 must be a positive integer, got NaN"));
  EXPECT_NORMLAB_ERROR(shape_from_doubles({inf, 2}, "forward", 2),
                       HasSubstr("forward: shape dim 0 must be a positive integer, got Infinity"));
  EXPECT_NORMLAB_ERROR(shape_from_doubles({0.5}, "forward", 1),
                       HasSubstr("forward: shape dim 0 must be a positive integer, got 0.5"));
  EXPECT_NORMLAB_ERROR(shape_from_doubles({-0.0, 1}, "forward", 1),
                       HasSubstr("forward: shape dim 0 must be a positive integer"));
  EXPECT_NORMLAB_ERROR(shape_from_doubles({3}, "forward", 2),
                       HasSubstr("forward: shape must have at least 2 dims, got 1"));
  EXPECT_NORMLAB_ERROR(shape_from_doubles({}, "forward", 1),
                       HasSubstr("forward: shape must have at least 1 dims, got 0"));
  // Overflow: the product, not a single dim, is bounded (2^31 - 1 elements).
  EXPECT_NORMLAB_ERROR(shape_from_doubles({65536, 65536}, "forward", 2),
                       HasSubstr("forward: shape has more than 2147483647 elements"));
  EXPECT_NORMLAB_ERROR(shape_from_doubles({2, 1073741824}, "forward", 2),
                       HasSubstr("shape has more than 2147483647 elements"));
  EXPECT_NORMLAB_ERROR(shape_from_doubles({1e300, 1e300}, "forward", 2),
                       HasSubstr("shape has more than 2147483647 elements"));
  EXPECT_NORMLAB_ERROR(shape_from_doubles({9007199254740993.0, 1}, "forward", 1),
                       HasSubstr("shape has more than"));
  // Exactly the bound is fine (validation only; nothing is allocated).
  EXPECT_EQ(shape_from_doubles({2147483647}, "t", 1), (Shape{2147483647}));
  EXPECT_EQ(shape_from_doubles({1, 2147483647, 1}, "t", 1), (Shape{1, 2147483647, 1}));
  // The message names the first bad dim, in order.
  EXPECT_THAT(error_message([&] { shape_from_doubles({2, 0, -1}, "w", 1); }),
              MatchesRegex("w: shape dim 1 must be a positive integer, got 0"));
}

// ---- the layer after an error ------------------------------------------------------------------

// A forward rejected for its shape happens before the previous training cache or the running
// state is touched: backward still differentiates the last good forward, the state is unchanged.
TEST(AfterErrors, FailedForwardKeepsCacheAndState) {
  for (const std::string& m : kGammaBetaMethods) {
    SCOPED_TRACE(m);
    Rng rng(99);
    const Shape s = base_shape(m);
    const std::vector<float> x = rng.normals(numel(s), 0.3, 1.5), dy = rng.normals(numel(s), 0.2, 1.0);
    auto ref = make_layer(m, base_options(m));
    const std::vector<float> y_ref = forward(*ref, x, s, true);
    const std::vector<float> dx_ref = backward(*ref, dy);
    const std::vector<float> dg_ref = param_grad(*ref, "gamma");

    auto layer = make_layer(m, base_options(m));
    forward(*layer, x, s, true);
    const auto state_before = layer->state();
    // Wrong channels / trailing dims, in both modes.
    const Shape bad = m == "layernorm" ? Shape{2, 3, 5, 3} : Shape{2, s[1] + 1, 3, 5};
    const std::vector<float> xb(numel(bad), 1.0f);
    EXPECT_NORMLAB_ERROR(forward(*layer, xb, bad, true), HasSubstr(m + ": input shape"));
    EXPECT_NORMLAB_ERROR(forward(*layer, xb, bad, false), HasSubstr(m + ": input shape"));
    EXPECT_EQ(layer->cached_shape(), s);
    ASSERT_EQ(layer->state().size(), state_before.size());
    for (size_t i = 0; i < state_before.size(); ++i) {
      EXPECT_EQ(layer->state()[i].value, state_before[i].value) << state_before[i].name;
    }
    EXPECT_TRUE(check_identical("dx after a failed forward", backward(*layer, dy), dx_ref));
    EXPECT_TRUE(check_identical("dgamma after a failed forward", param_grad(*layer, "gamma"), dg_ref));
    // And the layer goes on working.
    EXPECT_TRUE(check_identical("y of the next forward", forward(*layer, x, s, true), forward(*ref, x, s, true)));
  }
}

// A rejected set_param / set_state writes nothing (not even the values before the bad one), so the
// outputs are those of the unchanged layer.
TEST(AfterErrors, FailedSettersLeaveOutputsUnchanged) {
  Rng rng(7);
  const Shape s{4, 3, 2};
  const std::vector<float> x = rng.normals(numel(s), 1.0, 2.0);
  auto bn = make_layer("batchnorm", {{"channels", 3}});
  set_param(*bn, "gamma", {1.5f, -0.5f, 2.0f});
  set_state(*bn, "runningMean", {0.5f, 1.0f, -1.0f});
  set_state(*bn, "runningVar", {2.0f, 0.5f, 1.0f});
  const std::vector<float> y_infer = forward(*bn, x, s, false);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NORMLAB_ERROR(set_param(*bn, "gamma", {9.0f, 9.0f, nan}), HasSubstr("gamma[2] is not finite"));
  EXPECT_NORMLAB_ERROR(set_state(*bn, "runningVar", {9.0f, 9.0f, -1.0f}), HasSubstr("runningVar[2] must be >= 0"));
  EXPECT_NORMLAB_ERROR(set_state(*bn, "runningMean", {9.0f, 9.0f}), HasSubstr("runningMean needs 3 values"));
  EXPECT_EQ(param_value(*bn, "gamma"), (std::vector<float>{1.5f, -0.5f, 2.0f}));
  EXPECT_EQ(state_value(*bn, "runningVar"), (std::vector<float>{2.0f, 0.5f, 1.0f}));
  EXPECT_TRUE(check_identical("inference y", forward(*bn, x, s, false), y_infer));
  // The inference output is the documented formula, in double: gamma*(x - mean)/sqrt(var + eps).
  std::vector<double> want(x.size());
  const float g[] = {1.5f, -0.5f, 2.0f}, mu[] = {0.5f, 1.0f, -1.0f}, var[] = {2.0f, 0.5f, 1.0f};
  for (size_t e = 0; e < x.size(); ++e) {
    const size_t c = (e / 2) % 3;
    want[e] = g[c] * (x[e] - mu[c]) / std::sqrt(var[c] + 1e-5);
  }
  EXPECT_CLOSE("inference y vs formula", y_infer, want, 1e-6, 1e-6);
}

// A training forward after a failed one starts a fresh cache of the new shape.
TEST(AfterErrors, NewShapeAfterFailure) {
  auto gn = make_layer("groupnorm", {{"channels", 4}, {"groups", 2}});
  Rng rng(3);
  const std::vector<float> x1 = rng.normals(2 * 4 * 3), x2 = rng.normals(3 * 4 * 5);
  forward(*gn, x1, {2, 4, 3}, true);
  EXPECT_NORMLAB_ERROR(forward(*gn, std::vector<float>(10), {2, 5}, true), HasSubstr("has 5 channels"));
  EXPECT_EQ(gn->cached_shape(), (Shape{2, 4, 3}));
  forward(*gn, x2, {3, 4, 5}, true);
  EXPECT_EQ(gn->cached_shape(), (Shape{3, 4, 5}));
  auto fresh = make_layer("groupnorm", {{"channels", 4}, {"groups", 2}});
  forward(*fresh, x2, {3, 4, 5}, true);
  const std::vector<float> dy = rng.normals(x2.size());
  EXPECT_TRUE(check_identical("dx", backward(*gn, dy), backward(*fresh, dy)));
}

}  // namespace
}  // namespace normlab_test

// ---- once core bugs: zero/negative dims through the C++ API, one spatial element in InstanceNorm ----

namespace normlab_test {
namespace {

// NormLayer::forward must check the dims of a Shape given through the C++ API: a zero dim would
// make BatchNorm/Batch Renorm take moments of 0 values (0/0) and write NaN into the running state;
// a negative dim would throw std::length_error after dropping the previous training cache.
TEST(ValidationFormerBugs, ForwardRejectsNonPositiveDims) {
  for (const std::string& m : normlab::norm_methods()) {
    SCOPED_TRACE(m);
    auto layer = make_layer(m, base_options(m));
    const Shape s = base_shape(m);
    Rng rng(1);
    const std::vector<float> x = rng.normals(numel(s)), dy = rng.normals(numel(s));
    forward(*layer, x, s, true);
    const auto state_before = layer->state();
    std::vector<float> buf(numel(s));
    Shape zero = s, negative = s;
    zero[0] = 0;
    negative[0] = -2;
    EXPECT_NORMLAB_ERROR(layer->forward(buf.data(), zero, true, buf.data()), HasSubstr(m + ": "));
    EXPECT_NORMLAB_ERROR(layer->forward(buf.data(), negative, true, buf.data()), HasSubstr(m + ": "));
    EXPECT_EQ(layer->cached_shape(), s);
    for (size_t i = 0; i < state_before.size(); ++i) {
      EXPECT_EQ(layer->state()[i].value, state_before[i].value) << state_before[i].name;
    }
  }
}

// PyTorch's instance_norm refuses one spatial element ("Expected more than 1 spatial element when
// training", F._verify_spatial_size, in eval mode too since it always uses input statistics), as
// the core's BatchNorm does for one value per channel (it used to return beta).
TEST(ValidationFormerBugs, InstanceNormNeedsMoreThanOneSpatialElement) {
  auto in = make_layer("instancenorm", {{"channels", 3}});
  for (bool training : {true, false}) {
    EXPECT_NORMLAB_ERROR(forward(*in, std::vector<float>(6, 1.0f), {2, 3, 1}, training),
                         HasSubstr("instancenorm: expected more than 1 spatial element"));
    EXPECT_NORMLAB_ERROR(forward(*in, std::vector<float>(6, 1.0f), {2, 3, 1, 1}, training),
                         HasSubstr("instancenorm: expected more than 1 spatial element"));
  }
}

}  // namespace
}  // namespace normlab_test
