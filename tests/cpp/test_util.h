// Shared helpers of the native test suite: fixture loading (nlohmann/json), a llm.c / ggml style
// closeness checker that reports the largest error and where it is, a deterministic RNG, and
// small wrappers that build layers from JSON and read their parameters and state.
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "normlab/core/error.h"
#include "normlab/core/shape.h"
#include "normlab/norm/batchrenorm.h"
#include "normlab/norm/norm_layer.h"
#include "normlab/norm/registry.h"
#include "normlab/run/runner.h"

#ifndef NORMLAB_FIXTURES_DIR
#error "NORMLAB_FIXTURES_DIR must be defined (tests/cpp/CMakeLists.txt passes it)"
#endif

namespace normlab_test {

using json = nlohmann::json;
using normlab::NormLayer;
using normlab::Shape;

// ---- fixtures -------------------------------------------------------------------------------

inline std::string fixture_path(const std::string& file) {
  return std::string(NORMLAB_FIXTURES_DIR) + "/" + file;
}

// Parses tests/fixtures/<file>. Throws std::runtime_error naming the file if it is missing or
// not valid JSON (callers that run at static-initialisation time catch it).
inline json load_fixture(const std::string& file) {
  const std::string path = fixture_path(file);
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open fixture file " + path);
  try {
    return json::parse(in);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot parse fixture file " + path + ": " + e.what());
  }
}

inline std::vector<float> floats(const json& j) {
  std::vector<float> v;
  v.reserve(j.size());
  for (const json& e : j) v.push_back(e.get<float>());
  return v;
}

inline std::vector<double> doubles(const json& j) {
  std::vector<double> v;
  v.reserve(j.size());
  for (const json& e : j) v.push_back(e.get<double>());
  return v;
}

inline Shape shape_of(const json& j) {
  Shape s;
  for (const json& e : j) s.push_back(e.get<int64_t>());
  return s;
}

// gtest parameter names may only hold [A-Za-z0-9_]: "nchw_eps1e-3_momentum0.3" -> "nchw_eps1e_3_momentum0_3".
inline std::string sanitize_name(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

// "2x3x5" for the shape [2, 3, 5] (in test names).
inline std::string shape_tag(const Shape& s) {
  std::string t;
  for (size_t i = 0; i < s.size(); ++i) t += (i ? "x" : "") + std::to_string(s[i]);
  return t;
}

// Names each instance of a parameterized suite after its param's `name`, sanitized:
//   INSTANTIATE_TEST_SUITE_P(Sweep, Suite, ::testing::ValuesIn(configs()), ParamName());
struct ParamName {
  template <typename P>
  std::string operator()(const ::testing::TestParamInfo<P>& info) const {
    return sanitize_name(info.param.name);
  }
};

// ---- closeness checker ------------------------------------------------------------------------

// Checks |got[i] - want[i]| <= atol + rtol*|want[i]| for every i (and equal lengths, and no NaN
// in got unless want has NaN there). On failure the message names the label, the worst element
// (largest excess over its tolerance), its index, both values, the max abs diff over the whole
// tensor and how many elements are out of tolerance. On success it still carries the max diff.
template <typename G, typename W>
::testing::AssertionResult check_close(const std::string& label, const std::vector<G>& got,
                                       const std::vector<W>& want, double atol, double rtol) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << label << ": got " << got.size() << " values, want "
                                         << want.size();
  }
  double max_diff = 0, worst_excess = -1;
  size_t max_i = 0, worst_i = 0, bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    if (std::isnan(w) && std::isnan(g)) continue;
    const double diff = std::isnan(g) || std::isnan(w) ? INFINITY : std::fabs(g - w);
    const double tol = atol + rtol * std::fabs(w);
    if (diff > max_diff) {
      max_diff = diff;
      max_i = i;
    }
    if (!(diff <= tol)) {
      ++bad;
      if (diff - tol > worst_excess) {
        worst_excess = diff - tol;
        worst_i = i;
      }
    }
  }
  std::ostringstream msg;
  msg << std::setprecision(9) << label << ": max |diff| = " << max_diff << " at [" << max_i << "]";
  if (!got.empty()) msg << " (got " << got[max_i] << ", want " << want[max_i] << ")";
  msg << ", tol = " << atol << " + " << rtol << "*|want|";
  if (bad == 0) return ::testing::AssertionSuccess() << msg.str();
  msg << "; " << bad << " of " << got.size() << " out of tolerance, worst at [" << worst_i
      << "]: got " << got[worst_i] << ", want " << want[worst_i];
  return ::testing::AssertionFailure() << msg.str();
}

// NORMLAB_TEST_VERBOSE=1 prints every comparison's max diff, passing or not (to see the margins).
inline bool verbose() {
  static const bool v = std::getenv("NORMLAB_TEST_VERBOSE") != nullptr;
  return v;
}

#define EXPECT_CLOSE(label, got, want, atol, rtol)                                           \
  do {                                                                                       \
    const ::testing::AssertionResult nl_r_ =                                                 \
        ::normlab_test::check_close((label), (got), (want), (atol), (rtol));                 \
    if (::normlab_test::verbose()) std::printf("  [close] %s\n", nl_r_.message());           \
    EXPECT_TRUE(nl_r_);                                                                      \
  } while (0)

// The same check as a function (the failure then points at the caller's SCOPED_TRACE, not a line).
template <typename G, typename W>
void expect_close(const std::string& label, const std::vector<G>& got, const std::vector<W>& want,
                  double atol, double rtol) {
  EXPECT_CLOSE(label, got, want, atol, rtol);
}

// Bit-for-bit equality (for in-place versus out-of-place runs of the same computation).
inline ::testing::AssertionResult check_identical(const std::string& label,
                                                  const std::vector<float>& got,
                                                  const std::vector<float>& want) {
  return check_close(label, got, want, 0.0, 0.0);
}

// Max |a - b| over two equal-length vectors (+inf if the lengths differ).
template <typename A, typename B>
double max_abs_diff(const std::vector<A>& a, const std::vector<B>& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  }
  return m;
}

// ---- expected errors ------------------------------------------------------------------------

// Runs stmt, which must throw normlab::Error; returns its message ("" and a test failure otherwise).
template <typename F>
std::string error_message(F&& stmt) {
  try {
    stmt();
  } catch (const normlab::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected normlab::Error, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected normlab::Error, nothing was thrown";
  return "";
}

// EXPECT_NORMLAB_ERROR(layer->forward(...), HasSubstr("..."))
#define EXPECT_NORMLAB_ERROR(stmt, matcher) \
  EXPECT_THAT(::normlab_test::error_message([&] { stmt; }), (matcher)) << "statement: " #stmt

// ---- deterministic RNG ------------------------------------------------------------------------

// splitmix64 (Steele, Lea & Flood 2014) for uniform bits, Box-Muller for normals: the same stream
// on every platform and standard library, unlike std:: distributions.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next_u64() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in (0, 1): 53 random bits, never exactly 0.
  double uniform() { return (static_cast<double>(next_u64() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = uniform(), u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1)), t = 6.283185307179586476925 * u2;
    spare_ = r * std::sin(t);
    has_spare_ = true;
    return r * std::cos(t);
  }
  std::vector<float> normals(size_t n, double mean = 0, double stddev = 1) {
    std::vector<float> v(n);
    for (float& e : v) e = static_cast<float>(mean + stddev * normal());
    return v;
  }

 private:
  uint64_t state_;
  double spare_ = 0;
  bool has_spare_ = false;
};

// ---- layers -----------------------------------------------------------------------------------

inline std::unique_ptr<NormLayer> make_layer(const std::string& method, const json& options) {
  return normlab::create_norm(method, options);
}

inline normlab::BatchRenorm& as_brn(NormLayer& layer) {
  auto* brn = dynamic_cast<normlab::BatchRenorm*>(&layer);
  if (brn == nullptr) throw std::runtime_error(layer.method() + " is not a BatchRenorm layer");
  return *brn;
}

inline const normlab::Param* find_param(const NormLayer& layer, const std::string& name) {
  for (const normlab::Param& p : layer.params()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

inline std::vector<float> param_value(const NormLayer& layer, const std::string& name) {
  const normlab::Param* p = find_param(layer, name);
  if (p == nullptr) throw std::runtime_error(layer.method() + ": no param " + name);
  return p->value;
}

inline std::vector<float> param_grad(const NormLayer& layer, const std::string& name) {
  const normlab::Param* p = find_param(layer, name);
  if (p == nullptr) throw std::runtime_error(layer.method() + ": no param " + name);
  return p->grad;
}

inline const normlab::StateBuffer* find_state(const NormLayer& layer, const std::string& name) {
  for (const normlab::StateBuffer& s : layer.state()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

inline std::vector<float> state_value(const NormLayer& layer, const std::string& name) {
  const normlab::StateBuffer* s = find_state(layer, name);
  if (s == nullptr) throw std::runtime_error(layer.method() + ": no state " + name);
  return s->value;
}

inline void set_param(NormLayer& layer, const std::string& name, const std::vector<float>& v) {
  layer.set_param(name, v.data(), v.size());
}

inline void set_state(NormLayer& layer, const std::string& name, const std::vector<float>& v) {
  layer.set_state(name, v.data(), v.size());
}

// Sets every entry of a JSON object {name: [values...] or number} as params or state.
inline void set_params_from_json(NormLayer& layer, const json& params) {
  for (const auto& item : params.items()) set_param(layer, item.key(), floats(item.value()));
}

inline void set_state_from_json(NormLayer& layer, const json& state) {
  for (const auto& item : state.items()) {
    const json& v = item.value();
    set_state(layer, item.key(), v.is_array() ? floats(v) : std::vector<float>{v.get<float>()});
  }
}

// One training or inference forward into a fresh output vector.
inline std::vector<float> forward(NormLayer& layer, const std::vector<float>& x, const Shape& shape,
                                  bool training) {
  if (static_cast<int64_t>(x.size()) != normlab::numel(shape)) {
    throw std::runtime_error("test bug: x has the wrong size for shape " + normlab::to_string(shape));
  }
  std::vector<float> y(x.size());
  layer.forward(x.data(), shape, training, y.data());
  return y;
}

inline std::vector<float> backward(NormLayer& layer, const std::vector<float>& dy) {
  std::vector<float> dx(dy.size());
  layer.backward(dy.data(), dx.data());
  return dx;
}

inline int64_t numel(const Shape& s) { return normlab::numel(s); }

// The names of a layer's parameters, in order.
inline std::vector<std::string> param_names(const NormLayer& layer) {
  std::vector<std::string> out;
  for (const normlab::Param& p : layer.params()) out.push_back(p.name);
  return out;
}

// rows x len normals of the given scale, each row shifted to mean 0.
inline std::vector<float> zero_mean_rows(Rng& rng, int64_t rows, int64_t len, double scale) {
  std::vector<float> x = rng.normals(static_cast<size_t>(rows * len), 0.0, scale);
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0;
    for (int64_t i = 0; i < len; ++i) m += x[r * len + i];
    m /= static_cast<double>(len);
    for (int64_t i = 0; i < len; ++i) x[r * len + i] = static_cast<float>(x[r * len + i] - m);
  }
  return x;
}

// An input of shape [N, C, ...] with per-channel offsets and scales; values continuous, so no ties.
inline std::vector<float> channel_input(const Shape& s, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(numel(s));
  const int64_t C = s[1], S = normlab::spatial_size(s);
  for (size_t e = 0; e < x.size(); ++e) {
    const int64_t c = (static_cast<int64_t>(e) / S) % C;
    x[e] = static_cast<float>(0.7 * c - 0.5 + (0.6 + 0.5 * c) * rng.normal());
  }
  return x;
}

// ---- finite-difference gradient checks ---------------------------------------------------------

// The finite-difference side of the gradient checks (gradcheck_test.cpp). Loss L = sum_i w_i * y_i
// of one training forward of `layer` at x, accumulated in double from the float32 outputs. For a
// scalar v (an element of x or of a param) with step h:
//   g(h) = (L(v+h) - L(v-h)) / ((v+h) - (v-h))     (denominator: the float32 steps actually taken)
//   fd   = (4 g(h) - g(2h)) / 3                     (Richardson: truncation error O(h^4))
// x and w are held by reference: x is moved in place (and restored) by dx(), and the caller's
// later changes to either are seen.
class FiniteDifference {
 public:
  FiniteDifference(NormLayer& layer, const Shape& shape, std::vector<float>& x,
                   const std::vector<float>& w, double h)
      : layer_(layer), shape_(shape), x_(x), w_(w), h_(h) {}

  // L at the current x.
  double loss() {
    const std::vector<float> y = forward(layer_, x_, shape_, /*training=*/true);
    double L = 0;
    for (size_t i = 0; i < y.size(); ++i) L += static_cast<double>(w_[i]) * y[i];
    return L;
  }

  // Richardson-extrapolated central difference of L along one scalar, which `set` writes (and
  // which is set back to base afterwards).
  template <typename Set>
  double along(float base, Set&& set) {
    auto g = [&](double h) {
      const float vp = static_cast<float>(base + h), vm = static_cast<float>(base - h);
      set(vp);
      const double lp = loss();
      set(vm);
      const double lm = loss();
      set(base);
      return (lp - lm) / (static_cast<double>(vp) - static_cast<double>(vm));
    };
    const double g1 = g(h_), g2 = g(2 * h_);
    return (4 * g1 - g2) / 3;
  }

  // dL/dx, element by element.
  std::vector<double> dx() {
    std::vector<double> out(x_.size());
    for (size_t i = 0; i < x_.size(); ++i) {
      const float base = x_[i];
      out[i] = along(base, [&](float v) { x_[i] = v; });
    }
    return out;
  }

  // dL/d(param `name`), element by element (the param is set back to its value afterwards).
  std::vector<double> dparam(const std::string& name) {
    std::vector<float> p = param_value(layer_, name);
    std::vector<double> out(p.size());
    for (size_t i = 0; i < p.size(); ++i) {
      const float base = p[i];
      out[i] = along(base, [&](float v) {
        p[i] = v;
        set_param(layer_, name, p);
      });
    }
    return out;
  }

 private:
  NormLayer& layer_;
  const Shape& shape_;
  std::vector<float>& x_;
  const std::vector<float>& w_;
  double h_;
};

// ---- run configurations -----------------------------------------------------------------------

// What one entry of RunConfig::methods should hold; an empty field is not checked.
struct WantMethod {
  std::string method, id, label;
};

// Parses config with run_config_from_json and checks its methods, entry by entry.
inline void expect_run_methods(const json& config, const std::vector<WantMethod>& want) {
  const normlab::RunConfig c = normlab::run_config_from_json(config);
  ASSERT_EQ(c.methods.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE("methods[" + std::to_string(i) + "]");
    if (!want[i].method.empty()) {
      EXPECT_EQ(c.methods[i].method, want[i].method);
    }
    if (!want[i].id.empty()) {
      EXPECT_EQ(c.methods[i].id, want[i].id);
    }
    if (!want[i].label.empty()) {
      EXPECT_EQ(c.methods[i].label, want[i].label);
    }
  }
}

}  // namespace normlab_test
