// The method table (method_info.h) against the layers it describes: for every method, each flag
// is checked by what a layer made from the table's own defaults does: usesBatchStatistics (the
// batch-size-1 refusal, training differs from inference), needsSpatialDims (an [N, C] input is
// refused), foldable (inference_affine reproduces the inference forward), populationStatistics
// (AdaBN changes exactly those buffers), and every option default equals what layer_options reports.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <set>

#include "normlab/nn/norm_module.h"
#include "test_util.h"

namespace {

using namespace normlab_test;

using normlab::MethodInfo;
using normlab::ModelFill;

const Shape kShape = {4, 3, 2, 2};

std::vector<const MethodInfo*> layer_methods() {
  std::vector<const MethodInfo*> out;
  for (const MethodInfo* m : normlab::method_table()) {
    if (m->create != nullptr) out.push_back(m);
  }
  return out;
}

// What an MLP needs beyond the model's defaults: FRN on [N, C] learns its eps (its paper's remedy
// for 1x1 activations; the CLI's --frn-learnable-eps).
const json kMlpOptions = {{"frn", {{"learnableEps", true}}}};

// The method's layer as a model makes it for activations of `shape` (make_norm_module: the
// table's fill and model defaults), with 1 for a required integer the model does not fill (LRN's
// size).
std::unique_ptr<NormLayer> model_layer(const MethodInfo& m, const Shape& shape) {
  json o = shape.size() == 2 && kMlpOptions.contains(m.name) ? kMlpOptions.at(m.name) : json::object();
  for (const auto& opt : m.options) {
    if (opt.default_value.is_null() && !opt.nullable && !opt.from_model && opt.type == "integer" &&
        opt.key != "channels") {
      o[opt.key] = 1;
    }
  }
  auto module = normlab::make_norm_module(m.name, o, shape);
  return normlab::create_norm(m.name, normlab::layer_options(module->layer()));
}

// n seeded normals with the given spread and mean.
std::vector<float> values(int64_t n, uint64_t seed, double stddev = 1.0, double mean = 0.0) {
  return Rng(seed).normals(static_cast<size_t>(n), mean, stddev);
}

std::string method_name(const ::testing::TestParamInfo<const MethodInfo*>& info) {
  return info.param->name;
}

class MethodTable : public ::testing::TestWithParam<const MethodInfo*> {};

TEST_P(MethodTable, FindsItselfByNameAndEveryAlias) {
  const MethodInfo& m = *GetParam();
  EXPECT_EQ(normlab::find_method(m.name), &m);
  for (const std::string& a : m.aliases) EXPECT_EQ(normlab::find_method(a), &m) << a;
}

TEST_P(MethodTable, EveryDefaultIsWhatTheLayerReports) {
  const MethodInfo& m = *GetParam();
  auto layer = model_layer(m, kShape);
  const json reported = normlab::layer_options(*layer);
  std::set<std::string> keys;
  for (const auto& opt : m.options) {
    keys.insert(opt.key);
    if (opt.default_value.is_null()) continue;
    ASSERT_TRUE(reported.contains(opt.key)) << m.name << "." << opt.key;
    if (opt.type == "number") {
      EXPECT_DOUBLE_EQ(reported.at(opt.key).get<double>(), opt.default_value.get<double>()) << m.name << "." << opt.key;
    } else {
      EXPECT_EQ(reported.at(opt.key), opt.default_value) << m.name << "." << opt.key;
    }
  }
  for (const auto& [key, value] : reported.items()) EXPECT_TRUE(keys.count(key)) << m.name << " reports " << key;
}

TEST_P(MethodTable, UsesBatchStatisticsIsWhatTrainingDoes) {
  const MethodInfo& m = *GetParam();
  const Shape one = {1, 3, 1, 1};  // a single value per channel
  if (m.uses_batch_statistics) {
    auto layer = model_layer(m, one);
    const std::vector<float> x1 = values(numel(one), 3);
    EXPECT_THAT(error_message([&] { forward(*layer, x1, one, true); }),
                ::testing::HasSubstr("expected more than 1 value per channel"));
  }
  // After a training step, inference differs from a training forward exactly when the method
  // normalizes with the batch's statistics (the running ones have moved only part of the way).
  auto fresh = model_layer(m, kShape);
  const std::vector<float> x = values(numel(kShape), 5, 2.0, 1.0);
  forward(*fresh, x, kShape, true);
  const std::vector<float> train = forward(*fresh, x, kShape, true);
  const std::vector<float> infer = forward(*fresh, x, kShape, false);
  EXPECT_EQ(max_abs_diff(train, infer) > 1e-3, m.uses_batch_statistics) << m.name;
}

TEST_P(MethodTable, NeedsSpatialDimsIsWhatTheShapeCheckSays) {
  const MethodInfo& m = *GetParam();
  const Shape flat = {4, 3};
  if (m.needs_spatial_dims) {
    EXPECT_FALSE(error_message([&] { model_layer(m, flat); }).empty()) << m.name;
  } else {
    EXPECT_NO_THROW(model_layer(m, flat)->check_input_shape(flat)) << m.name;
  }
}

TEST_P(MethodTable, FoldableLayersAnswerTheirInferenceAffine) {
  const MethodInfo& m = *GetParam();
  auto layer = model_layer(m, kShape);
  const std::vector<float> x = values(numel(kShape), 7, 2.0, 0.5);
  for (int i = 0; i < 3; ++i) forward(*layer, values(numel(kShape), 11 + i, 3.0, 1.0), kShape, true);
  for (auto& p : layer->params()) {  // non-trivial gamma and beta
    for (size_t i = 0; i < p.value.size(); ++i) p.value[i] = 0.5f + 0.25f * static_cast<float>(i);
  }
  normlab::InferenceAffine map;
  std::string why;
  ASSERT_EQ(layer->inference_affine(map, why), m.foldable) << m.name << ": " << why;
  if (!m.foldable) {
    EXPECT_FALSE(why.empty());
    EXPECT_TRUE(map.centre.empty() && map.scale.empty() && map.shift.empty());
    return;
  }
  ASSERT_EQ(map.centre.size(), 3u);
  const std::vector<float> y = forward(*layer, x, kShape, false);
  const int64_t hw = 4;
  for (size_t i = 0; i < y.size(); ++i) {
    const size_t c = (i / hw) % 3;
    const double want = (double{x[i]} - map.centre[c]) * map.scale[c] + map.shift[c];
    EXPECT_NEAR(y[i], want, 1e-5 * (1 + std::abs(want))) << m.name << " at " << i;
  }
}

TEST_P(MethodTable, AdaBnReplacesExactlyThePopulationStatistics) {
  const MethodInfo& m = *GetParam();
  auto layer = model_layer(m, kShape);
  forward(*layer, values(numel(kShape), 13, 1.0, 0.0), kShape, true);
  std::vector<normlab::StateBuffer> before = layer->state();
  const std::vector<float> target = values(numel(kShape), 17, 4.0, 3.0);  // another domain
  EXPECT_EQ(layer->set_population_statistics(target.data(), kShape), !m.population_statistics.empty()) << m.name;
  std::set<std::string> changed;
  for (size_t i = 0; i < before.size(); ++i) {
    if (before[i].value != layer->state()[i].value) changed.insert(before[i].name);
  }
  EXPECT_EQ(changed, std::set<std::string>(m.population_statistics.begin(), m.population_statistics.end())) << m.name;
}

INSTANTIATE_TEST_SUITE_P(All, MethodTable, ::testing::ValuesIn(layer_methods()), method_name);

TEST(MethodTable, DescribesAllFourteenMethodsInOrder) {
  std::vector<std::string> names;
  for (const MethodInfo* m : normlab::method_table()) names.push_back(m->name);
  EXPECT_THAT(names, ::testing::ElementsAre("none", "batchnorm", "batchrenorm", "layernorm", "groupnorm", "instancenorm",
                                            "lrn", "rmsnorm", "frn", "l1batchnorm", "generalizedbatchnorm",
                                            "switchablenorm", "weightnorm", "cosinenorm"));
  std::vector<std::string> batch;
  for (const MethodInfo* m : normlab::method_table()) {
    if (m->uses_batch_statistics) batch.push_back(m->aliases[0]);
  }
  EXPECT_THAT(batch, ::testing::ElementsAre("bn", "brn", "l1bn", "gbn", "sn"));
}

TEST(MethodTable, NoneIsTheBaselineNotALayer) {
  const MethodInfo& none = normlab::method_info("none");
  EXPECT_TRUE(none.baseline);
  EXPECT_FALSE(none.weight_method());
  EXPECT_EQ(none.label, "No normalization");
  EXPECT_EQ(none.id(), "none");
  EXPECT_EQ(normlab::method_info("batchnorm").id(), "bn");
  EXPECT_EQ(normlab::method_info("lrn").id(), "lrn");
  EXPECT_EQ(std::count(normlab::norm_methods().begin(), normlab::norm_methods().end(), "none"), 0);
  EXPECT_EQ(std::count(normlab::weight_methods().begin(), normlab::weight_methods().end(), "none"), 0);
  EXPECT_NORMLAB_ERROR(normlab::create_norm("none", nlohmann::json::object()),
                       ::testing::StrEq("none: the comparisons' baseline without normalization, not a layer"));
}

}  // namespace
