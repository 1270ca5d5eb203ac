// The stateful layer contract shared by every normalization method: parameters with their
// gradients, running state, the cache of the last training forward, and input validation.
// The maths lives in each method's stateless kernels; a layer only owns buffers and calls them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "normlab/core/param.h"
#include "normlab/core/shape.h"

namespace normlab {

// The per-channel map of an inference forward, y = (x - centre) * scale + shift, in double.
struct InferenceAffine {
  std::vector<double> centre, scale, shift;
};

// Per-channel corrections a layer applied to its batch statistics in the last training forward
// (Batch Renorm's r and d, each n values), with the limits that clipped them.
struct BatchCorrections {
  const float* r = nullptr;
  const float* d = nullptr;
  size_t n = 0;
  double r_max = 1, d_max = 0;
};

class NormLayer {
 public:
  virtual ~NormLayer() = default;
  NormLayer(const NormLayer&) = delete;
  NormLayer& operator=(const NormLayer&) = delete;

  // The method name of the layer API: "batchnorm", "layernorm", ...
  const std::string& method() const { return method_; }

  // y = layer(x). x has numel(shape) values; y receives as many and may alias x. Training mode
  // uses batch statistics, updates running state and keeps what backward needs; inference mode
  // uses running state where the method has it. Throws Error on a shape the layer cannot take.
  void forward(const float* x, const Shape& shape, bool training, float* y);

  // dx = dL/dx for the last training forward, given dy = dL/dy (as many values as that input);
  // dx may alias dy. Also overwrites every parameter's grad. Throws Error without such a forward.
  void backward(const float* dy, float* dx);

  // Throws Error unless the layer can take inputs of this shape, whatever the batch size (the
  // batch-size check, more than one value per channel for batch statistics, is forward's).
  void check_input_shape(const Shape& shape) const { check_shape(shape); }

  // AdaBN (Li et al. 2016, arXiv 1603.04779): replaces the running (population) statistics with
  // those of `x`, all the inputs this layer receives on a target domain at once. Returns false,
  // changing nothing, for methods that keep no population statistics (they need no adaptation).
  virtual bool set_population_statistics(const float* /*x*/, const Shape& /*shape*/) { return false; }

  // Folding (fold.h): the inference forward as a per-channel affine map. False, with `why` set and
  // `map` left empty, when inference depends on the sample or the batch (the default).
  virtual bool inference_affine(InferenceAffine& map, std::string& why) const;

  // Training schedules (the runner's renormSchedule): layers whose corrections of the batch
  // statistics are relaxed over training (Batch Renorm: rMax from 1, dMax from 0) move `progress`
  // in [0, 1] of the way to the limits they were made with. The default has none to relax.
  virtual void relax_corrections(double /*progress*/) {}
  // The corrections of the last training forward; false (and `out` untouched) for layers that
  // make none or before their first training forward.
  virtual bool last_corrections(BatchCorrections& /*out*/) const { return false; }

  // Shape of the last training forward's input (empty if none); backward's dy has its size.
  const Shape& cached_shape() const { return cached_shape_; }

  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }
  const std::vector<StateBuffer>& state() const { return state_; }

  // Replace a parameter's or state buffer's values; throws Error on an unknown name, a wrong
  // length, or a value out of the buffer's domain (NaN, a negative variance, ...).
  void set_param(const std::string& name, const float* values, size_t n);
  void set_state(const std::string& name, const float* values, size_t n);

 protected:
  explicit NormLayer(std::string method) : method_(std::move(method)) {}

  // Throws Error unless the layer can take this shape (rank, channels, trailing dims).
  virtual void check_shape(const Shape& shape) const = 0;
  // Whether a forward in this mode normalizes with the batch's own per-channel statistics (then
  // the input needs more than one value per channel, as PyTorch requires).
  virtual bool uses_batch_statistics(bool /*training*/) const { return false; }
  // Kernels: x and y have numel(shape) values; training forward may read the cache x_ (== x).
  virtual void forward_train(const float* x, const Shape& shape, float* y) = 0;
  virtual void forward_infer(const float* x, const Shape& shape, float* y) = 0;
  virtual void backward_impl(const float* dy, const Shape& shape, float* dx) = 0;
  // Throws Error unless the values are acceptable for that state buffer (after the length check).
  virtual void check_state_values(const std::string& name, const float* values, size_t n) const;
  // Called when a training forward's cache is dropped or replaced.
  virtual void on_cache_reset() {}

  // For inference_affine: the map of y = (x - centre) / deviation * gamma + beta, with the gamma
  // and beta of add_affine (the identity without affine).
  void affine_from(std::vector<double> centre, const std::vector<double>& deviation,
                   InferenceAffine& map) const;
  // A state buffer's values in double.
  std::vector<double> state_values(const std::string& name) const;

  Param& param(const std::string& name);
  StateBuffer& state_buffer(const std::string& name);
  void add_param(const std::string& name, size_t n, float fill);
  void add_state(const std::string& name, size_t n, float fill);

  // The affine map of the normalized values, y = gamma * xhat + beta, with n entries each. With
  // `affine` it adds the parameters gamma (ones) and beta (zeros) -- call it first, so that they
  // are params 0 and 1 -- otherwise it keeps an identity gamma and beta and scratch buffers for
  // their gradients (which kernels write and nobody reads). Without `with_beta` there is no beta
  // (gamma only: RMSNorm's scale).
  void add_affine(size_t n, bool affine, bool with_beta = true);
  // The gamma and beta of add_affine and where their gradients go (beta's only with beta).
  const float* gamma() const { return affine_ ? params_[0].value.data() : gamma1_.data(); }
  const float* beta() const { return affine_ ? params_[1].value.data() : beta0_.data(); }
  float* dgamma() { return affine_ ? params_[0].grad.data() : dgamma_.data(); }
  float* dbeta() { return affine_ ? params_[1].grad.data() : dbeta_.data(); }

  std::vector<float> x_;  // (numel(cached_shape_)) input of the last training forward
  std::vector<Param> params_;
  std::vector<StateBuffer> state_;

 private:
  std::string method_;
  Shape cached_shape_;
  bool affine_ = false;                // gamma and beta are params 0 and 1 (add_affine)
  std::vector<float> gamma1_, beta0_;  // the identity affine otherwise
  std::vector<float> dgamma_, dbeta_;  // scratch for their gradients otherwise
};

// Shared checks of the layers' options (with the messages the API reports): channels >= 1, eps
// finite and > 0, momentum in [0, 1].
void check_channel_count(const std::string& who, int64_t channels);
void check_eps(const std::string& who, double eps);
void check_momentum(const std::string& who, double momentum);

// Shared shape check for layers with a channel axis: rank >= min_rank and shape[1] == channels.
void check_channels(const std::string& who, const Shape& shape, int64_t channels, size_t min_rank);

// For layers normalizing over the trailing normalizedShape dims of each sample (LayerNorm,
// RMSNorm): the number of values in normalized_shape, which must be a non-empty list of positive
// dims; and the check that an input shape ends with it.
int64_t normalized_size(const std::string& who, const std::vector<int64_t>& normalized_shape);
void check_trailing_dims(const std::string& who, const Shape& shape,
                         const std::vector<int64_t>& normalized_shape);

// Product of the dims after the channel axis (1 for [N,C]).
int64_t spatial_size(const Shape& shape);

}  // namespace normlab
