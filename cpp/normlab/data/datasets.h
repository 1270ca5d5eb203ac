// Data sets of the training core: 2-D synthetic sets (the TensorFlow Playground's four,
// scikit-learn's two moons, multiclass spirals and blobs) drawn from our Rng, and real digits read
// from the compact NLDS binary format below. Every entry point validates its arguments and throws
// normlab::Error naming the data set and the problem.
//
// Conventions the training runner relies on:
// - Labels are 0..num_classes-1, and class k is the k-th group a generator draws. For the
//   playground's sets (labelled -1/+1 there) its +1 group is class 0 and its -1 group class 1:
//   circle class 0 is the inner disc, xor class 0 is x*y >= 0, gauss class 0 is the blob at (+,+);
//   spiral arm k is class k; moons class 0 is the outer (upper) moon, as in scikit-learn.
// - Features of the playground sets (circle, xor, gauss, spiral, blobs) are the playground's
//   coordinates divided by 6, its plotting range [-6, 6] becoming [-1, 1] (see kPlaygroundScale).
//   Moons keep scikit-learn's own coordinates (x in [-1, 2], y in [-0.5, 1] before noise), so
//   numbers quoted for sklearn.make_moons carry over.
// - make_2d returns each set in a random order; make_2d_set keeps generation order (class by class,
//   and along each arm for the spirals and moons).
//
// NLDS ("normlab data set") format, little-endian, no padding:
//   offset 0   char[4]  magic "NLDS"
//          4   uint32   version (1)
//          8   uint32   N, number of images
//         12   uint32   H, height
//         16   uint32   W, width
//         20   uint32   num_classes
//         24   uint32   max_value, the largest pixel value (16 for the UCI digits, 255 for MNIST)
//         28   uint8    N labels, each < num_classes
//     28 + N   uint8    N*H*W pixels, image after image, row-major, each <= max_value
//   total size 28 + N + N*H*W bytes, exactly. data/README.md describes the shipped files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "normlab/core/rng.h"
#include "normlab/core/tensor.h"

namespace normlab {

struct Dataset {
  std::string name;             // "moons", "digits", ... (error messages name it)
  Tensor x;                     // (N, ...sample dims): (N, 2) for 2-D sets, (N, 1, H, W) for images
  std::vector<int32_t> labels;  // (N) in [0, num_classes)
  int32_t num_classes = 0;
  // The user's own data: one name per class ("setosa", ...); empty for the built-in sets.
  std::vector<std::string> class_names;

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

struct Split {
  Dataset train, test;
};

// The playground's coordinates are multiplied by this (1/6) to give our features.
constexpr double kPlaygroundScale = 1.0 / 6.0;

// Checks a data set's invariants (x has rank >= 2 and N rows, N >= 1 labels each in
// [0, num_classes), as many values as the shape says) and returns N. `who` prefixes the message.
int64_t check_dataset(const Dataset& data, const std::string& who);

// The examples at `idx` (each in [0, N)), in that order, as a new data set with the same name and
// class names.
Dataset subset(const Dataset& all, const std::vector<int64_t>& idx);

// ---- 2-D synthetic sets ----------------------------------------------------------------------

// "circle", "xor", "gauss", "spiral", "moons", "blobs".
const std::vector<std::string>& kinds_2d();

// n points of one 2-D set in generation order. x: (n, 2). noise in [0, 1], per kind:
// reference: tensorflow/playground src/dataset.ts (circle, xor, gauss, spiral); the playground's
// slider gives noise in [0, 0.5], larger values extend its formulas.
//   circle  class 0: radius U(0, 2.5), class 1: radius U(3.5, 5), angle U(0, 2 pi); the label is
//           decided by the position moved by (U(-5,5), U(-5,5)) * noise (inside radius 2.5: class
//           0), so noise flips labels near the boundary and points never move. noise 0: separable.
//   xor     x, y in U(-5, 5) pushed 0.3 away from the axes; label from the position moved by
//           (U(-5,5), U(-5,5)) * noise: class 0 when x*y >= 0, else 1. Classes are not exactly
//           balanced (each point's quadrant is random), as in the playground.
//   gauss   class 0 around (2, 2), class 1 around (-2, -2), variance 0.5 + 7 * noise per
//           coordinate (the playground's linear map of [0, 0.5] to [0.5, 4]).
//   spiral  `classes` arms; arm k, point i of m: r = 5 i / m,
//           t = 1.75 * 2 pi * i / m + 2 pi k / classes, (r sin t, r cos t) + (U(-1,1), U(-1,1)) *
//           noise. Two arms are the playground's.
//   blobs   `classes` Gaussian blobs, variance as gauss, centres on a circle at angles
//           pi/4 + 2 pi k / classes and radius max(2 sqrt 2, sqrt 2 / sin(pi / classes))
//           (neighbours at least 2 sqrt 2 apart); two blobs are exactly the gauss set's.
//   moons   reference: scikit-learn sklearn.datasets.make_moons(n, shuffle=False, noise=noise):
//           n // 2 points on the outer moon (cos t, sin t), class 0, the rest on the inner moon
//           (1 - cos t, 1 - sin t - 0.5), class 1, t = linspace(0, pi) per moon, then N(0, noise^2)
//           added to every coordinate. Not rescaled.
// Classes get n / classes points each, the first n % classes one more (moons: the inner one, as in
// scikit-learn; xor and noisy circle labels aside). circle, xor, gauss and moons need classes == 2;
// spiral and blobs take 2..8.
Dataset make_2d_set(const std::string& kind, int64_t n, double noise, int32_t classes, Rng& rng);

// A train and a test set of the same kind, drawn independently and each shuffled. Takes one 64-bit
// draw from `rng` and derives separate streams for the two sets, so the test set does not depend on
// n_train. n_train, n_test >= 1; noise in [0, 1]; classes in [2, 8] (2 for the binary kinds).
Split make_2d(const std::string& kind, int64_t n_train, int64_t n_test, double noise,
              int32_t classes, Rng& rng);

// ---- real digits -----------------------------------------------------------------------------

// Reads an NLDS buffer (format above): x is (N, 1, H, W) float32, pixel / max_value in [0, 1];
// labels as stored; num_classes from the header. Throws an Error naming `name` on a truncated,
// oversized or garbled buffer (bad magic or version, zero sizes, a label >= num_classes, a
// pixel > max_value).
Dataset parse_digits(const uint8_t* bytes, size_t n, const std::string& name = "digits");

// A fixed train/test split of `all`: n_test examples (1 <= n_test < N) go to the test set,
// stratified (each class gives n_test * n_class / N of its examples, rounded by largest remainder),
// chosen with Rng(seed); both sets come out shuffled. The calibration split the 1,797 digits as
// 1,297 / 500.
Split split_fixed(const Dataset& all, int64_t n_test, uint64_t seed);

// parse_digits followed by split_fixed, decoding each image once, straight into the split (the
// whole set is never held as floats twice: MNIST's 10,000 images are 31 MB as float32).
Split parse_digits_split(const uint8_t* bytes, size_t n, const std::string& name, int64_t n_test,
                         uint64_t seed);

// ---- the user's own data ----------------------------------------------------------------------

// The examples held out for testing when a data set of n examples comes without a test set:
// fraction * n rounded to the nearest integer (halves away from zero), at least 1 and at most
// n - 1. Throws an Error naming `name` unless n >= 2 and fraction is in (0, 1).
int64_t held_out(int64_t n, double fraction, const std::string& name);

// Checks a data set supplied by the user: check_dataset's invariants, every value of x finite,
// class_names empty or one per class. `who` prefixes the message. Returns N.
int64_t check_user_dataset(const Dataset& data, const std::string& who);

}  // namespace normlab
