#include "normlab/norm/norm_layer.h"

#include <cmath>
#include <cstring>

#include "normlab/core/error.h"

namespace normlab {

bool NormLayer::inference_affine(InferenceAffine& map, std::string& why) const {
  map = {};
  why = "inference depends on the sample";
  return false;
}

void NormLayer::affine_from(std::vector<double> centre, const std::vector<double>& deviation,
                            InferenceAffine& map) const {
  const size_t C = centre.size();
  const float* g = gamma();
  const float* b = beta();
  map.scale.resize(C);
  map.shift.resize(C);
  for (size_t c = 0; c < C; ++c) {
    map.scale[c] = double{g[c]} / deviation[c];
    map.shift[c] = b[c];
  }
  map.centre = std::move(centre);
}

std::vector<double> NormLayer::state_values(const std::string& name) const {
  for (const StateBuffer& s : state_) {
    if (s.name == name) return std::vector<double>(s.value.begin(), s.value.end());
  }
  fail(method_, ": no state buffer '", name, "'");
}

void NormLayer::forward(const float* x, const Shape& shape, bool training, float* y) {
  // Dims must be positive and the tensor within bounds before any layer reads them (the JS
  // boundary checks this too; the C++ API must not write NaN statistics for empty tensors).
  if (shape.empty()) fail(method_, ": input shape [] has no dims");
  double product = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 1) fail(method_, ": input: shape dim ", i, " must be a positive integer, got ", shape[i]);
    product *= static_cast<double>(shape[i]);
  }
  if (product > static_cast<double>(kMaxElements)) {
    fail(method_, ": input: shape has more than ", kMaxElements, " elements");
  }
  check_shape(shape);
  if (uses_batch_statistics(training) && shape[0] * spatial_size(shape) == 1) {
    // PyTorch: "Expected more than 1 value per channel when training".
    fail(method_, ": expected more than 1 value per channel when using batch statistics, got input "
         "shape ", to_string(shape));
  }
  const int64_t n = numel(shape);
  if (!training) {
    forward_infer(x, shape, y);
    return;
  }
  // Drop the previous cache first: a failed allocation must not leave a stale one behind.
  cached_shape_.clear();
  on_cache_reset();
  x_.resize(static_cast<size_t>(n));
  if (x_.data() != x) std::memcpy(x_.data(), x, static_cast<size_t>(n) * sizeof(float));
  forward_train(x_.data(), shape, y);
  cached_shape_ = shape;
}

void NormLayer::backward(const float* dy, float* dx) {
  if (cached_shape_.empty()) {
    fail(method_, ": backward needs a training-mode forward first");
  }
  backward_impl(dy, cached_shape_, dx);
}

Param& NormLayer::param(const std::string& name) {
  for (Param& p : params_) {
    if (p.name == name) return p;
  }
  std::string known;
  for (const Param& p : params_) known += (known.empty() ? "" : ", ") + p.name;
  fail(method_, ": no parameter '", name, "' (", known.empty() ? "it has none" : "known: " + known,
       ")");
}

StateBuffer& NormLayer::state_buffer(const std::string& name) {
  for (StateBuffer& s : state_) {
    if (s.name == name) return s;
  }
  std::string known;
  for (const StateBuffer& s : state_) known += (known.empty() ? "" : ", ") + s.name;
  fail(method_, ": no state '", name, "' (", known.empty() ? "it has none" : "known: " + known,
       ")");
}

void NormLayer::set_param(const std::string& name, const float* values, size_t n) {
  Param& p = param(name);
  if (n != p.value.size()) {
    fail(method_, ": ", name, " needs ", p.value.size(), " values, got ", n);
  }
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(values[i])) fail(method_, ": ", name, "[", i, "] is not finite");
  }
  std::memcpy(p.value.data(), values, n * sizeof(float));
}

void NormLayer::set_state(const std::string& name, const float* values, size_t n) {
  StateBuffer& s = state_buffer(name);
  if (n != s.value.size()) {
    fail(method_, ": ", name, " needs ", s.value.size(), " values, got ", n);
  }
  check_state_values(name, values, n);
  std::memcpy(s.value.data(), values, n * sizeof(float));
}

void NormLayer::check_state_values(const std::string& name, const float* values, size_t n) const {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(values[i])) fail(method_, ": ", name, "[", i, "] is not finite");
  }
}

void NormLayer::add_param(const std::string& name, size_t n, float fill) {
  params_.push_back(Param{name, std::vector<float>(n, fill), std::vector<float>(n, 0.0f)});
}

void NormLayer::add_state(const std::string& name, size_t n, float fill) {
  state_.push_back(StateBuffer{name, std::vector<float>(n, fill)});
}

void NormLayer::add_affine(size_t n, bool affine, bool with_beta) {
  affine_ = affine;
  if (affine) {
    add_param("gamma", n, 1.0f);
    if (with_beta) add_param("beta", n, 0.0f);
  } else {
    gamma1_.assign(n, 1.0f);
    dgamma_.resize(n);
    if (with_beta) {
      beta0_.assign(n, 0.0f);
      dbeta_.resize(n);
    }
  }
}

void check_channel_count(const std::string& who, int64_t channels) {
  if (channels < 1) fail(who, ": channels must be a positive integer, got ", channels);
}

void check_eps(const std::string& who, double eps) {
  if (!(eps > 0) || !std::isfinite(eps)) fail(who, ": eps must be a finite number > 0, got ", eps);
}

void check_momentum(const std::string& who, double momentum) {
  if (!(momentum >= 0 && momentum <= 1)) fail(who, ": momentum must be in [0, 1], got ", momentum);
}

void check_channels(const std::string& who, const Shape& shape, int64_t channels, size_t min_rank) {
  if (shape.size() < min_rank) {
    fail(who, ": input shape ", to_string(shape), " must have at least ", min_rank,
         " dims ", min_rank == 2 ? "[N,C,...]" : "[N,C,L,...]");
  }
  if (shape[1] != channels) {
    fail(who, ": input shape ", to_string(shape), " has ", shape[1], " channels (dim 1), layer has ",
         channels);
  }
}

int64_t normalized_size(const std::string& who, const std::vector<int64_t>& normalized_shape) {
  if (normalized_shape.empty()) fail(who, ": normalizedShape must not be empty");
  std::vector<double> dims(normalized_shape.begin(), normalized_shape.end());
  return numel(shape_from_doubles(dims, who + ": normalizedShape", 1));
}

void check_trailing_dims(const std::string& who, const Shape& shape,
                         const std::vector<int64_t>& normalized_shape) {
  const std::vector<int64_t>& ns = normalized_shape;
  bool ok = shape.size() >= ns.size();
  for (size_t i = 0; ok && i < ns.size(); ++i) ok = shape[shape.size() - ns.size() + i] == ns[i];
  if (!ok) {
    fail(who, ": input shape ", to_string(shape), " does not end with normalizedShape ",
         to_string(ns));
  }
}

int64_t spatial_size(const Shape& shape) {
  int64_t s = 1;
  for (size_t i = 2; i < shape.size(); ++i) s *= shape[i];
  return s;
}

}  // namespace normlab
