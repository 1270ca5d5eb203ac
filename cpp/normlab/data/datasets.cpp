#include "normlab/data/datasets.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "normlab/core/error.h"

namespace normlab {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int64_t kMaxPoints2d = kMaxElements / 2;  // x is (n, 2)

std::string known_kinds() {
  std::string out;
  for (const std::string& k : kinds_2d()) out += (out.empty() ? "" : ", ") + k;
  return out;
}

// Points per class: n / classes each, the first n % classes one more.
std::vector<int64_t> class_counts(int64_t n, int32_t classes) {
  std::vector<int64_t> counts(static_cast<size_t>(classes), n / classes);
  for (int64_t c = 0; c < n % classes; ++c) ++counts[static_cast<size_t>(c)];
  return counts;
}

// Appends one point (already in our coordinates) and its label.
struct PointWriter {
  Dataset& data;
  size_t i = 0;
  void add(double x, double y, int32_t label) {
    data.x.data[2 * i] = static_cast<float>(x);
    data.x.data[2 * i + 1] = static_cast<float>(y);
    data.labels[i] = label;
    ++i;
  }
};

// Playground circle: the label comes from the position moved by the noise, the point stays put.
void gen_circle(PointWriter& out, int64_t n, double noise, Rng& rng) {
  const double radius = 5.0;
  const std::vector<int64_t> counts = class_counts(n, 2);
  for (int32_t c = 0; c < 2; ++c) {
    for (int64_t i = 0; i < counts[static_cast<size_t>(c)]; ++i) {
      const double r = c == 0 ? rng.uniform(0.0, 0.5 * radius) : rng.uniform(0.7 * radius, radius);
      const double angle = rng.uniform(0.0, 2 * kPi);
      const double x = r * std::sin(angle), y = r * std::cos(angle);
      const double nx = rng.uniform(-radius, radius) * noise;
      const double ny = rng.uniform(-radius, radius) * noise;
      const int32_t label = std::hypot(x + nx, y + ny) < 0.5 * radius ? 0 : 1;
      out.add(x * kPlaygroundScale, y * kPlaygroundScale, label);
    }
  }
}

// Playground xor: quadrants, padded 0.3 away from the axes; label from the moved position.
void gen_xor(PointWriter& out, int64_t n, double noise, Rng& rng) {
  const double padding = 0.3;
  for (int64_t i = 0; i < n; ++i) {
    double x = rng.uniform(-5.0, 5.0);
    x += x > 0 ? padding : -padding;
    double y = rng.uniform(-5.0, 5.0);
    y += y > 0 ? padding : -padding;
    const double nx = rng.uniform(-5.0, 5.0) * noise;
    const double ny = rng.uniform(-5.0, 5.0) * noise;
    const int32_t label = (x + nx) * (y + ny) >= 0 ? 0 : 1;
    out.add(x * kPlaygroundScale, y * kPlaygroundScale, label);
  }
}

// Gaussian blobs around `centres` (playground coordinates), one class each.
void gen_blobs(PointWriter& out, int64_t n, double noise, const std::vector<double>& centres,
               Rng& rng) {
  const int32_t classes = static_cast<int32_t>(centres.size() / 2);
  const double stddev = std::sqrt(0.5 + 7.0 * noise);  // variance: playground's [0,0.5] -> [0.5,4]
  const std::vector<int64_t> counts = class_counts(n, classes);
  for (int32_t c = 0; c < classes; ++c) {
    const double cx = centres[2 * static_cast<size_t>(c)],
                 cy = centres[2 * static_cast<size_t>(c) + 1];
    for (int64_t i = 0; i < counts[static_cast<size_t>(c)]; ++i) {
      const double x = cx + stddev * rng.normal();
      const double y = cy + stddev * rng.normal();
      out.add(x * kPlaygroundScale, y * kPlaygroundScale, c);
    }
  }
}

// Playground spiral with `classes` arms (2: its own, arm offsets 0 and pi).
void gen_spiral(PointWriter& out, int64_t n, double noise, int32_t classes, Rng& rng) {
  const std::vector<int64_t> counts = class_counts(n, classes);
  for (int32_t c = 0; c < classes; ++c) {
    const int64_t m = counts[static_cast<size_t>(c)];
    const double offset = 2 * kPi * c / classes;
    for (int64_t i = 0; i < m; ++i) {
      const double frac = static_cast<double>(i) / static_cast<double>(m);
      const double r = 5.0 * frac;
      const double t = 1.75 * 2 * kPi * frac + offset;
      const double x = r * std::sin(t) + rng.uniform(-1.0, 1.0) * noise;
      const double y = r * std::cos(t) + rng.uniform(-1.0, 1.0) * noise;
      out.add(x * kPlaygroundScale, y * kPlaygroundScale, c);
    }
  }
}

// t_i of numpy.linspace(0, pi, m): i * pi / (m - 1), the last exactly pi.
double linspace_pi(int64_t i, int64_t m) {
  if (m == 1) return 0.0;
  if (i == m - 1) return kPi;
  return static_cast<double>(i) * (kPi / static_cast<double>(m - 1));
}

// reference: scikit-learn sklearn/datasets/_samples_generator.py make_moons (shuffle=False): the
// noise is drawn row-major over (n, 2), as sklearn's normal(scale=noise, size=X.shape).
void gen_moons(PointWriter& out, int64_t n, double noise, Rng& rng) {
  const int64_t n_out = n / 2, n_in = n - n_out;
  for (int64_t i = 0; i < n; ++i) {
    const bool outer = i < n_out;
    const double t = outer ? linspace_pi(i, n_out) : linspace_pi(i - n_out, n_in);
    double x = outer ? std::cos(t) : 1.0 - std::cos(t);
    double y = outer ? std::sin(t) : 1.0 - std::sin(t) - 0.5;
    if (noise > 0) {
      x += noise * rng.normal();
      y += noise * rng.normal();
    }
    out.add(x, y, outer ? 0 : 1);
  }
}

void check_2d_args(const std::string& kind, int64_t n, double noise, int32_t classes,
                   const std::string& what) {
  const std::vector<std::string>& kinds = kinds_2d();
  if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) {
    fail("make_2d: unknown data set '", kind, "' (known: ", known_kinds(), ")");
  }
  if (n < 1 || n > kMaxPoints2d) {
    fail(kind, ": ", what, " must be in [1, ", kMaxPoints2d, "], got ", n);
  }
  if (!(noise >= 0 && noise <= 1)) fail(kind, ": noise must be in [0, 1], got ", noise);
  if (classes < 2 || classes > 8) fail(kind, ": classes must be in [2, 8], got ", classes);
  if (kind != "spiral" && kind != "blobs" && classes != 2) {
    fail(kind, ": a two-class data set, classes must be 2, got ", classes,
         " (spiral and blobs take 2..8)");
  }
}

Dataset make_2d_set_checked(const std::string& kind, int64_t n, double noise, int32_t classes,
                            Rng& rng) {
  Dataset data;
  data.name = kind;
  data.num_classes = classes;
  data.x = Tensor(Shape{n, 2});
  data.labels.assign(static_cast<size_t>(n), 0);
  PointWriter out{data};
  if (kind == "circle") {
    gen_circle(out, n, noise, rng);
  } else if (kind == "xor") {
    gen_xor(out, n, noise, rng);
  } else if (kind == "gauss") {
    gen_blobs(out, n, noise, {2.0, 2.0, -2.0, -2.0}, rng);
  } else if (kind == "spiral") {
    gen_spiral(out, n, noise, classes, rng);
  } else if (kind == "moons") {
    gen_moons(out, n, noise, rng);
  } else {  // blobs
    const double radius = std::max(2 * std::sqrt(2.0), std::sqrt(2.0) / std::sin(kPi / classes));
    std::vector<double> centres;
    for (int32_t c = 0; c < classes; ++c) {
      const double angle = kPi / 4 + 2 * kPi * c / classes;
      centres.push_back(radius * std::cos(angle));
      centres.push_back(radius * std::sin(angle));
    }
    gen_blobs(out, n, noise, centres, rng);
  }
  return data;
}

// A shuffled copy: the order of a random permutation drawn from rng.
Dataset shuffled(const Dataset& data, Rng& rng) {
  std::vector<int64_t> order(static_cast<size_t>(data.size()));
  std::iota(order.begin(), order.end(), int64_t{0});
  rng.shuffle(order);
  return subset(data, order);
}

uint32_t read_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

}  // namespace

int64_t check_dataset(const Dataset& data, const std::string& who) {
  const std::string& name = data.name.empty() ? std::string("data set") : data.name;
  if (data.x.shape.size() < 2) {
    fail(who, ": ", name, ": x must have shape (N, ...sample dims), got ", to_string(data.x.shape));
  }
  const int64_t n = data.size();
  if (n < 1) fail(who, ": ", name, ": has no examples");
  if (data.x.shape[0] != n) {
    fail(who, ": ", name, ": x has ", data.x.shape[0], " rows but there are ", n, " labels");
  }
  for (int64_t d : data.x.shape) {
    if (d < 1) fail(who, ": ", name, ": x has a non-positive dim in ", to_string(data.x.shape));
  }
  if (numel(data.x.shape) != data.x.numel()) {
    fail(who, ": ", name, ": x has ", data.x.numel(), " values but shape ", to_string(data.x.shape),
         " needs ", numel(data.x.shape));
  }
  if (data.num_classes < 1) {
    fail(who, ": ", name, ": num_classes must be >= 1, got ", data.num_classes);
  }
  for (size_t i = 0; i < data.labels.size(); ++i) {
    if (data.labels[i] < 0 || data.labels[i] >= data.num_classes) {
      fail(who, ": ", name, ": label ", i, " is ", data.labels[i], ", not in [0, ",
           data.num_classes, ")");
    }
  }
  return n;
}

Dataset subset(const Dataset& all, const std::vector<int64_t>& idx) {
  const int64_t n = check_dataset(all, "subset");
  if (idx.empty()) fail("subset: ", all.name, ": no indices given");
  const size_t row = static_cast<size_t>(all.x.numel() / n);
  Dataset out;
  out.name = all.name;
  out.num_classes = all.num_classes;
  out.class_names = all.class_names;
  Shape shape = all.x.shape;
  shape[0] = static_cast<int64_t>(idx.size());
  out.x = Tensor(shape);
  out.labels.resize(idx.size());
  for (size_t j = 0; j < idx.size(); ++j) {
    const int64_t i = idx[j];
    if (i < 0 || i >= n) fail("subset: ", all.name, ": index ", i, " is not in [0, ", n, ")");
    std::memcpy(out.x.ptr() + j * row, all.x.ptr() + static_cast<size_t>(i) * row,
                row * sizeof(float));
    out.labels[j] = all.labels[static_cast<size_t>(i)];
  }
  return out;
}

const std::vector<std::string>& kinds_2d() {
  static const std::vector<std::string> kinds = {"circle", "xor",   "gauss",
                                                 "spiral", "moons", "blobs"};
  return kinds;
}

Dataset make_2d_set(const std::string& kind, int64_t n, double noise, int32_t classes, Rng& rng) {
  check_2d_args(kind, n, noise, classes, "n");
  return make_2d_set_checked(kind, n, noise, classes, rng);
}

Split make_2d(const std::string& kind, int64_t n_train, int64_t n_test, double noise,
              int32_t classes, Rng& rng) {
  check_2d_args(kind, n_train, noise, classes, "n_train");
  check_2d_args(kind, n_test, noise, classes, "n_test");
  const uint64_t base = (static_cast<uint64_t>(rng.next_u32()) << 32) | rng.next_u32();
  const Rng root(base);
  Rng train_rng = root.fork(1), test_rng = root.fork(2);
  Split split;
  split.train = shuffled(make_2d_set_checked(kind, n_train, noise, classes, train_rng), train_rng);
  split.test = shuffled(make_2d_set_checked(kind, n_test, noise, classes, test_rng), test_rng);
  return split;
}

namespace {

// A validated NLDS buffer: its header fields, and where its labels and pixels start.
struct NldsView {
  uint32_t count, height, width, num_classes, max_value;
  const uint8_t* labels;
  const uint8_t* pixels;
};

NldsView read_nlds(const uint8_t* bytes, size_t n, const std::string& name) {
  constexpr size_t kHeader = 28;
  if (bytes == nullptr && n > 0) fail(name, ": no buffer (null pointer with ", n, " bytes)");
  if (n < kHeader) {
    fail(name, ": truncated: ", n, " bytes, shorter than the ", kHeader, "-byte NLDS header");
  }
  if (std::memcmp(bytes, "NLDS", 4) != 0) {
    fail(name, ": not an NLDS file (the first 4 bytes are not \"NLDS\")");
  }
  const uint32_t version = read_u32(bytes + 4);
  if (version != 1) fail(name, ": NLDS version ", version, " is not supported (only 1)");
  const uint32_t count = read_u32(bytes + 8), height = read_u32(bytes + 12),
                 width = read_u32(bytes + 16);
  const uint32_t num_classes = read_u32(bytes + 20), max_value = read_u32(bytes + 24);
  if (count == 0 || height == 0 || width == 0) {
    fail(name, ": header says ", count, " images of ", height, "x", width, "; each must be >= 1");
  }
  if (num_classes < 1 || num_classes > 256) {
    fail(name, ": header's num_classes must be in [1, 256] (uint8 labels), got ", num_classes);
  }
  if (max_value < 1 || max_value > 255) {
    fail(name, ": header's max_value must be in [1, 255] (uint8 pixels), got ", max_value);
  }
  // In uint64: each factor is < 2^32, and each product is checked against kMaxElements.
  const uint64_t pixels_per_image = static_cast<uint64_t>(height) * width;
  if (pixels_per_image > static_cast<uint64_t>(kMaxElements) ||
      pixels_per_image * count > static_cast<uint64_t>(kMaxElements)) {
    fail(name, ": header says ", count, " images of ", height, "x", width, ", more than ",
         kMaxElements, " pixels");
  }
  const uint64_t pixels = pixels_per_image * count;
  const uint64_t expected = kHeader + static_cast<uint64_t>(count) + pixels;
  if (n < expected) {
    fail(name, ": truncated: header says ", count, " images of ", height, "x", width, " (",
         expected, " bytes) but the buffer has ", n);
  }
  if (n > expected) {
    fail(name, ": ", n - expected, " bytes after the ", expected, " that the header's ", count,
         " images of ", height, "x", width, " take");
  }

  const uint8_t* labels = bytes + kHeader;
  for (uint32_t i = 0; i < count; ++i) {
    if (labels[i] >= num_classes) {
      fail(name, ": label of image ", i, " is ", static_cast<int>(labels[i]),
           ", not below num_classes ", num_classes);
    }
  }
  const uint8_t* px = labels + count;
  for (size_t i = 0; i < static_cast<size_t>(pixels); ++i) {  // pixels <= kMaxElements
    if (px[i] > max_value) {
      fail(name, ": pixel ", i % pixels_per_image, " of image ", i / pixels_per_image, " is ",
           static_cast<int>(px[i]), ", above max_value ", max_value);
    }
  }
  return NldsView{count, height, width, num_classes, max_value, labels, px};
}

// The images `rows` of a validated buffer (in that order), pixels scaled to [0, 1].
Dataset decode_rows(const NldsView& f, const std::string& name, const std::vector<int64_t>& rows) {
  Dataset data;
  data.name = name;
  data.num_classes = static_cast<int32_t>(f.num_classes);
  const size_t per = static_cast<size_t>(f.height) * f.width;
  data.x = Tensor(Shape{static_cast<int64_t>(rows.size()), 1, f.height, f.width});
  data.labels.resize(rows.size());
  const float scale = 1.0f / static_cast<float>(f.max_value);
  for (size_t j = 0; j < rows.size(); ++j) {
    const size_t r = static_cast<size_t>(rows[j]);
    data.labels[j] = f.labels[r];
    const uint8_t* src = f.pixels + r * per;
    float* dst = data.x.ptr() + j * per;
    for (size_t i = 0; i < per; ++i) dst[i] = static_cast<float>(src[i]) * scale;
  }
  return data;
}

// Train and test indices of a fixed, seeded split stratified by class (largest remainder).
std::pair<std::vector<int64_t>, std::vector<int64_t>> split_indices(const std::vector<int32_t>& labels,
                                                                    int32_t num_classes, int64_t n_test,
                                                                    uint64_t seed, const std::string& name);

}  // namespace

Dataset parse_digits(const uint8_t* bytes, size_t n, const std::string& name) {
  const NldsView f = read_nlds(bytes, n, name);
  std::vector<int64_t> all(f.count);
  std::iota(all.begin(), all.end(), int64_t{0});
  return decode_rows(f, name, all);
}

Split parse_digits_split(const uint8_t* bytes, size_t n, const std::string& name, int64_t n_test,
                         uint64_t seed) {
  const NldsView f = read_nlds(bytes, n, name);
  const std::vector<int32_t> labels(f.labels, f.labels + f.count);
  const auto [train, test] = split_indices(labels, static_cast<int32_t>(f.num_classes), n_test, seed, name);
  return Split{decode_rows(f, name, train), decode_rows(f, name, test)};
}

namespace {

std::pair<std::vector<int64_t>, std::vector<int64_t>> split_indices(const std::vector<int32_t>& labels,
                                                                    int32_t num_classes, int64_t n_test,
                                                                    uint64_t seed, const std::string& name) {
  const int64_t n = static_cast<int64_t>(labels.size());
  if (n < 2) fail("split_fixed: ", name, ": needs at least 2 examples, has ", n);
  if (n_test < 1 || n_test >= n) {
    fail(name, ": the test split must hold 1 to ", n - 1, " of the ", n, " examples, got ", n_test);
  }
  // Examples of each class, and each class's share of the test set by largest remainder.
  const size_t classes = static_cast<size_t>(num_classes);
  std::vector<std::vector<int64_t>> members(classes);
  for (int64_t i = 0; i < n; ++i) {
    members[static_cast<size_t>(labels[static_cast<size_t>(i)])].push_back(i);
  }
  std::vector<int64_t> quota(classes);
  std::vector<int64_t> remainder(classes);  // of n_test * n_c / n, in units of 1/n
  int64_t assigned = 0;
  for (size_t c = 0; c < classes; ++c) {
    const int64_t scaled = n_test * static_cast<int64_t>(members[c].size());  // <= 2^62
    quota[c] = scaled / n;
    remainder[c] = scaled % n;
    assigned += quota[c];
  }
  std::vector<size_t> by_remainder(classes);
  std::iota(by_remainder.begin(), by_remainder.end(), size_t{0});
  std::stable_sort(by_remainder.begin(), by_remainder.end(),
                   [&](size_t a, size_t b) { return remainder[a] > remainder[b]; });
  for (size_t j = 0; assigned < n_test; ++j, ++assigned) ++quota[by_remainder[j]];

  Rng rng(seed);
  std::vector<int64_t> train, test;
  for (size_t c = 0; c < classes; ++c) {
    rng.shuffle(members[c]);
    const size_t q = static_cast<size_t>(quota[c]);
    test.insert(test.end(), members[c].begin(),
                members[c].begin() + static_cast<std::ptrdiff_t>(q));
    train.insert(train.end(), members[c].begin() + static_cast<std::ptrdiff_t>(q),
                 members[c].end());
  }
  rng.shuffle(train);
  rng.shuffle(test);
  return {std::move(train), std::move(test)};
}

}  // namespace

Split split_fixed(const Dataset& all, int64_t n_test, uint64_t seed) {
  check_dataset(all, "split_fixed");
  const auto [train, test] = split_indices(all.labels, all.num_classes, n_test, seed, all.name);
  return Split{subset(all, train), subset(all, test)};
}

int64_t held_out(int64_t n, double fraction, const std::string& name) {
  if (n < 2) fail(name, ": needs at least 2 examples to hold some out for testing, has ", n);
  if (!(fraction > 0 && fraction < 1)) {
    fail(name, ": the test fraction must be in (0, 1), got ", fraction);
  }
  const int64_t k = std::llround(fraction * static_cast<double>(n));
  return std::clamp<int64_t>(k, 1, n - 1);
}

int64_t check_user_dataset(const Dataset& data, const std::string& who) {
  const int64_t n = check_dataset(data, who);
  const std::string& name = data.name.empty() ? std::string("data set") : data.name;
  const int64_t per = data.x.numel() / n;
  for (size_t i = 0; i < data.x.data.size(); ++i) {
    if (!std::isfinite(data.x.data[i])) {
      fail(who, ": ", name, ": value ", i % static_cast<size_t>(per), " of example ",
           i / static_cast<size_t>(per), " is ", data.x.data[i], "; every value must be a finite number");
    }
  }
  if (!data.class_names.empty() && static_cast<int64_t>(data.class_names.size()) != data.num_classes) {
    fail(who, ": ", name, ": ", data.class_names.size(), " class names for ", data.num_classes, " classes");
  }
  return n;
}

}  // namespace normlab
