// What holds for every normalization method, swept over norm_methods(): NaN in the input
// propagates (as in PyTorch), a rejected forward leaves the training cache and the running state
// as they were, and a method without population statistics has no state to set or adapt. Each
// method has a row in layers() (a layer for [2, 3, 3, 5] inputs and a shape it refuses); a method
// without one fails EveryMethodTable.HasARow.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "test_util.h"

namespace normlab_test {
namespace {

using ::testing::HasSubstr;

const Shape kShape = {2, 3, 3, 5};

struct MethodRow {
  std::string method;
  json options;     // a layer for inputs of kShape
  Shape bad_shape;  // an input shape its forward refuses
};

void PrintTo(const MethodRow& r, std::ostream* os) { *os << r.method; }

const std::vector<MethodRow>& layers() {
  static const std::vector<MethodRow> rows = {
      {"batchnorm", {{"channels", 3}}, {2, 4, 3, 5}},
      {"batchrenorm", {{"channels", 3}}, {2, 4, 3, 5}},
      {"layernorm", {{"normalizedShape", {3, 5}}}, {2, 3, 5, 3}},
      {"groupnorm", {{"channels", 3}, {"groups", 3}}, {2, 4, 3, 5}},
      {"instancenorm", {{"channels", 3}}, {2, 4, 3, 5}},
      {"lrn", {{"size", 3}}, {2, 3}},
      {"rmsnorm", {{"normalizedShape", {3, 5}}}, {2, 3, 5, 3}},
      {"frn", {{"channels", 3}}, {2, 4, 3, 5}},
      {"l1batchnorm", {{"channels", 3}}, {2, 4, 3, 5}},
      {"generalizedbatchnorm", {{"channels", 3}}, {2, 4, 3, 5}},
      {"switchablenorm", {{"channels", 3}}, {2, 4, 3, 5}},
  };
  return rows;
}

TEST(EveryMethodTable, HasARow) {
  for (const std::string& m : normlab::norm_methods()) {
    EXPECT_TRUE(std::any_of(layers().begin(), layers().end(), [&](const MethodRow& r) { return r.method == m; }))
        << m << " has no row in layers()";
  }
}

class EveryMethod : public ::testing::TestWithParam<MethodRow> {};

// NaN in the input propagates (as in PyTorch).
TEST_P(EveryMethod, NanPropagates) {
  const MethodRow& row = GetParam();
  auto layer = make_layer(row.method, row.options);
  std::vector<float> x(numel(kShape), 0.5f);
  x[7] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> y = forward(*layer, x, kShape, true);
  EXPECT_TRUE(std::isnan(y[7]));
}

// A rejected forward leaves the previous training cache and the running state as they were.
TEST_P(EveryMethod, FailedForwardKeepsCacheAndState) {
  const MethodRow& row = GetParam();
  const std::string& m = row.method;
  Rng rng(99);
  const Shape& s = kShape;
  const std::vector<float> x = rng.normals(numel(s), 0.3, 1.5), dy = rng.normals(numel(s), 0.2, 1.0);
  auto ref = make_layer(m, row.options);
  forward(*ref, x, s, true);
  const std::vector<float> dx_ref = backward(*ref, dy);
  auto layer = make_layer(m, row.options);
  forward(*layer, x, s, true);
  const auto state_before = layer->state();
  const Shape& b = row.bad_shape;
  EXPECT_NORMLAB_ERROR(forward(*layer, std::vector<float>(numel(b), 1.0f), b, true), HasSubstr(m + ": input shape"));
  EXPECT_EQ(layer->cached_shape(), s);
  for (size_t i = 0; i < state_before.size(); ++i) EXPECT_EQ(layer->state()[i].value, state_before[i].value);
  EXPECT_TRUE(check_identical("dx after a failed forward", backward(*layer, dy), dx_ref));
  for (size_t i = 0; i < layer->params().size(); ++i) {
    EXPECT_TRUE(check_identical("d" + layer->params()[i].name, layer->params()[i].grad, ref->params()[i].grad));
  }
}

// A layer has running state exactly when its method keeps population statistics; one without has
// no state to set and nothing for AdaBN to adapt.
TEST_P(EveryMethod, StatelessMethodsHaveNoStateToSetOrAdapt) {
  const MethodRow& row = GetParam();
  const std::string& m = row.method;
  auto layer = make_layer(m, row.options);
  const bool stateless = normlab::method_info(m).population_statistics.empty();
  EXPECT_EQ(layer->state().empty(), stateless);
  if (!stateless) return;
  EXPECT_NORMLAB_ERROR(set_state(*layer, "runningMean", {0, 0, 0}),
                       HasSubstr(m + ": no state 'runningMean' (it has none)"));
  std::vector<float> x(90, 1.0f);
  EXPECT_FALSE(make_layer(m, row.options)->set_population_statistics(x.data(), kShape));
}

INSTANTIATE_TEST_SUITE_P(Methods, EveryMethod, ::testing::ValuesIn(layers()),
                         [](const ::testing::TestParamInfo<MethodRow>& info) { return info.param.method; });

}  // namespace
}  // namespace normlab_test
