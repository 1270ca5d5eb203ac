// The runner on the user's own data: the held-out share and its stratified, seeded split (class
// counts worked out by hand), the digits given as user data training exactly like the built-in
// digits set, a given test set, the config's JSON form, and every refusal naming the data set.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "normlab/data/datasets.h"
#include "normlab/run/runner.h"
#include "test_util.h"

namespace normlab_test {
namespace {

using json = nlohmann::json;
using normlab::Dataset;
using normlab::Runner;
using ::testing::AllOf;
using ::testing::HasSubstr;

normlab::RunConfig config(json j) { return normlab::run_config_from_json(j); }

// n examples of one feature, the example's index, with the given labels.
Dataset indexed(const std::vector<int32_t>& labels, int32_t classes) {
  Dataset d;
  d.num_classes = classes;
  const int64_t n = static_cast<int64_t>(labels.size());
  d.x = normlab::Tensor(Shape{n, 1});
  for (int64_t i = 0; i < n; ++i) d.x.data[static_cast<size_t>(i)] = static_cast<float>(i);
  d.labels = labels;
  return d;
}

// 15 examples of class 0, 10 of class 1, 5 of class 2, interleaved.
std::vector<int32_t> labels_15_10_5() {
  std::vector<int32_t> labels;
  for (int i = 0; i < 5; ++i) labels.insert(labels.end(), {0, 0, 0, 1, 1, 2});
  return labels;
}

std::vector<int64_t> counts(const std::vector<int32_t>& labels, int32_t classes) {
  std::vector<int64_t> out(static_cast<size_t>(classes), 0);
  for (int32_t l : labels) ++out.at(static_cast<size_t>(l));
  return out;
}

const json kUserCsv = {{"name", "iris.csv"}, {"source", "csv"}};

TEST(HeldOut, RoundsToNearestAndKeepsOneOnEachSide) {
  EXPECT_EQ(normlab::held_out(10, 0.2, "d"), 2);
  EXPECT_EQ(normlab::held_out(11, 0.2, "d"), 2);   // 2.2
  EXPECT_EQ(normlab::held_out(13, 0.2, "d"), 3);   // 2.6
  EXPECT_EQ(normlab::held_out(3, 0.5, "d"), 2);    // 1.5: half away from zero
  EXPECT_EQ(normlab::held_out(5, 0.05, "d"), 1);   // 0.25, but at least one
  EXPECT_EQ(normlab::held_out(4, 0.99, "d"), 3);   // 3.96, but one stays for training
  EXPECT_EQ(normlab::held_out(1797, 500.0 / 1797, "d"), 500);
  EXPECT_NORMLAB_ERROR(normlab::held_out(1, 0.2, "mine"), HasSubstr("mine: needs at least 2 examples"));
  EXPECT_NORMLAB_ERROR(normlab::held_out(10, 1, "mine"), HasSubstr("mine: the test fraction must be in (0, 1), got 1"));
  EXPECT_NORMLAB_ERROR(normlab::held_out(10, 0, "mine"), HasSubstr("got 0"));
}

TEST(UserData, HeldOutSplitIsStratifiedAndDrawnFromTheSeed) {
  // 30 examples, 6 held out (0.2): each class gives 6 * n_c / 30 of its own, 3 + 2 + 1.
  json j = {{"dataset", kUserCsv}, {"methods", {"ln"}}, {"model", {{"hidden", {4}}}}, {"batchSize", 4}, {"steps", 2}};
  Dataset all = indexed(labels_15_10_5(), 3);
  all.class_names = {"setosa", "versicolor", "virginica"};
  Runner a(config(j), all, Dataset());
  std::vector<float> x;
  std::vector<int32_t> labels;
  EXPECT_EQ(a.samples("test", 100, x, labels), 6);
  EXPECT_EQ(counts(labels, 3), (std::vector<int64_t>{3, 2, 1}));
  const std::vector<float> test_a = x;
  EXPECT_EQ(a.samples("train", 100, x, labels), 24);
  EXPECT_EQ(counts(labels, 3), (std::vector<int64_t>{12, 8, 4}));
  // Disjoint and covering: every index once, each with its own label.
  std::set<int> seen;
  for (const std::vector<float>* part : {&test_a, static_cast<const std::vector<float>*>(&x)}) {
    for (float v : *part) EXPECT_TRUE(seen.insert(static_cast<int>(v)).second) << v;
  }
  EXPECT_EQ(seen.size(), 30u);
  for (size_t i = 0; i < labels.size(); ++i) EXPECT_EQ(labels[i], labels_15_10_5()[static_cast<size_t>(x[i])]);

  const json result = a.result();
  EXPECT_EQ(result["data"], (json{{"train", 24}, {"test", 6}, {"classes", 3}, {"name", "iris.csv"},
                                  {"classNames", {"setosa", "versicolor", "virginica"}}}));
  EXPECT_EQ(result["config"]["dataset"], (json{{"name", "iris.csv"}, {"source", "csv"}, {"testFraction", 0.2}}));

  // The same seed holds out the same examples; another seed others, in the same numbers.
  Runner b(config(j), all, Dataset());
  std::vector<float> test_b;
  b.samples("test", 100, test_b, labels);
  EXPECT_EQ(test_a, test_b);
  j["seed"] = 2;
  Runner c(config(j), all, Dataset());
  std::vector<float> test_c;
  c.samples("test", 100, test_c, labels);
  EXPECT_NE(test_a, test_c);
  EXPECT_EQ(counts(labels, 3), (std::vector<int64_t>{3, 2, 1}));
}

std::vector<uint8_t> digits_bytes() {
  std::ifstream in(std::string(NORMLAB_DATA_DIR) + "/digits.nlds", std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(UserData, DigitsAsUserDataTrainLikeTheBuiltInSet) {
  // The built-in digits hold out 500 of 1,797 with split_fixed and the run's seed; the same images
  // given as the user's data with testFraction 500/1797 are split, batched and trained identically.
  const std::vector<uint8_t> bytes = digits_bytes();
  const json base = {{"methods", {"bn", "ln"}}, {"model", {{"hidden", {32}}}}, {"batchSize", 16},
                     {"steps", 40}, {"evalInterval", 20}, {"seed", 3}};
  json builtin = base, user = base;
  builtin["dataset"] = {{"name", "digits"}};
  user["dataset"] = {{"name", "my digits"}, {"source", "nlds"}, {"testFraction", 500.0 / 1797}};
  Runner a(config(builtin), bytes);
  Runner b(config(user), normlab::parse_digits(bytes.data(), bytes.size()), Dataset());
  a.step(40);
  b.step(40);
  const json ra = a.result(), rb = b.result();
  ASSERT_EQ(ra["methods"][0]["train"]["loss"].size(), 40u);
  EXPECT_EQ(ra["methods"], rb["methods"]);
  EXPECT_EQ(rb["data"]["train"], 1297);
  EXPECT_EQ(rb["data"]["classNames"], (json{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));
  EXPECT_FALSE(ra["data"].contains("classNames"));  // the built-in sets' results are as they were
}

TEST(UserData, AGivenTestSetIsUsedAsIs) {
  const json j = {{"dataset", kUserCsv}, {"methods", {"gn"}}, {"model", {{"hidden", {4}}}}, {"batchSize", 4}, {"steps", 3}};
  Dataset train = indexed(labels_15_10_5(), 3), test = indexed({2, 1, 0, 0}, 3);
  Runner r(config(j), train, test);
  r.step(3);
  const json result = r.result();
  EXPECT_EQ(result["data"]["train"], 30);
  EXPECT_EQ(result["data"]["test"], 4);
  EXPECT_EQ(result["data"]["classNames"], (json{"0", "1", "2"}));  // none given: the indices
  EXPECT_TRUE(result["config"]["dataset"]["testFraction"].is_null());
  std::vector<float> x;
  std::vector<int32_t> labels;
  r.samples("test", 10, x, labels);
  EXPECT_EQ(labels, (std::vector<int32_t>{2, 1, 0, 0}));
}

TEST(UserData, RefusalsNameTheDataSet) {
  const json j = {{"dataset", kUserCsv}, {"methods", {"ln"}}, {"batchSize", 4}};
  const Dataset good = indexed(labels_15_10_5(), 3);
  Dataset one_class = indexed(std::vector<int32_t>(10, 1), 3);
  EXPECT_NORMLAB_ERROR(Runner(config(j), one_class, Dataset()),
                       HasSubstr("iris.csv: every training example has the label 1; a classifier needs at least 2 classes"));
  EXPECT_NORMLAB_ERROR(Runner(config(j), indexed({0, 0, 0}, 1), Dataset()),
                       HasSubstr("iris.csv: a classifier needs at least 2 classes, the data set has 1"));
  Dataset nan = good;
  nan.x.data[7] = std::nanf("");
  EXPECT_NORMLAB_ERROR(Runner(config(j), nan, Dataset()),
                       HasSubstr("iris.csv: value 0 of example 7 is NaN; every value must be a finite number"));
  Dataset wide = good;
  wide.x.shape = {15, 2};
  EXPECT_NORMLAB_ERROR(Runner(config(j), good, wide), HasSubstr("x has 15 rows but there are 30 labels"));
  Dataset two_features = indexed({0, 1}, 3);
  two_features.x = normlab::Tensor(Shape{2, 2});
  EXPECT_NORMLAB_ERROR(Runner(config(j), good, two_features),
                       HasSubstr("iris.csv: test examples of shape [2] but training examples of shape [1]"));
  EXPECT_NORMLAB_ERROR(Runner(config(j), good, indexed({0, 1}, 2)),
                       HasSubstr("iris.csv: the test set has 2 classes, the training set 3"));
  Dataset named = good;
  named.class_names = {"a", "b"};
  EXPECT_NORMLAB_ERROR(Runner(config(j), named, Dataset()), HasSubstr("iris.csv: 2 class names for 3 classes"));
  json big = j;
  big["batchSize"] = 25;
  EXPECT_NORMLAB_ERROR(Runner(config(big), good, Dataset()),
                       HasSubstr("iris.csv: 24 training examples (30 less 6 held out for testing) are fewer than the batch size 25"));
  EXPECT_NORMLAB_ERROR(Runner(config(big), indexed({0, 1, 0}, 2), indexed({1, 0}, 2)),
                       HasSubstr("iris.csv: 3 training examples are fewer than the batch size 25"));
  json huge = j;
  huge["model"] = {{"hidden", {4096, 4096}}};
  EXPECT_NORMLAB_ERROR(Runner(config(huge), good, Dataset(), 1048576.0),
                       AllOf(HasSubstr("iris.csv: this run needs about "), HasSubstr("more than the 1 MiB of memory available"),
                             HasSubstr("or fewer examples or features")));
  // The constructors and the config must agree on whose data it is.
  EXPECT_NORMLAB_ERROR(Runner(config(j), std::vector<uint8_t>{}),
                       HasSubstr("runner: the data set 'iris.csv' (source csv) needs its examples"));
  EXPECT_NORMLAB_ERROR(Runner(config({{"methods", {"ln"}}}), good, Dataset()),
                       HasSubstr("runner: examples were given but the config names the built-in data set 'moons'"));
}

TEST(UserData, ConfigJson) {
  const json user = {{"name", "iris.csv"}, {"source", "csv"}, {"testFraction", 0.25}};
  EXPECT_EQ(normlab::run_config_to_json(config({{"dataset", user}, {"methods", {"ln"}}}))["dataset"], user);
  const normlab::DatasetSpec d = config({{"dataset", {{"source", "arrays"}}}, {"methods", {"ln"}}}).dataset;
  EXPECT_EQ(d.name, "data");
  EXPECT_EQ(d.test_fraction, 0.2);
  EXPECT_TRUE(d.user());
  EXPECT_FALSE(config({{"methods", {"ln"}}}).dataset.user());
  EXPECT_NORMLAB_ERROR(config({{"dataset", {{"source", "xlsx"}}}, {"methods", {"ln"}}}),
                       HasSubstr("dataset: unknown source 'xlsx' (known: arrays, csv, nlds)"));
  EXPECT_NORMLAB_ERROR(config({{"dataset", {{"source", "csv"}, {"testFraction", 1}}}, {"methods", {"ln"}}}),
                       HasSubstr("dataset: testFraction must be in (0, 1), got 1"));
  EXPECT_NORMLAB_ERROR(config({{"dataset", {{"source", "csv"}, {"noise", 0.1}}}, {"methods", {"ln"}}}),
                       HasSubstr("unknown option 'noise'"));
  EXPECT_NORMLAB_ERROR(config({{"dataset", {{"name", "moons"}, {"testFraction", 0.1}}}, {"methods", {"ln"}}}),
                       HasSubstr("unknown option 'testFraction'"));
}

}  // namespace
}  // namespace normlab_test
