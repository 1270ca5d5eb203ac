// libFuzzer target: the layer API's option and shape validation and its forward/backward. The input
// is: one byte choosing the method, a NUL-terminated JSON options string, one byte of flags, one
// byte of rank, then rank bytes of dims (0..15), then values. Only normlab::Error may come out.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "normlab/core/error.h"
#include "normlab/core/tensor.h"
#include "normlab/nn/module.h"
#include "normlab/nn/weight_layer.h"
#include "normlab/norm/registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  // Every method of the layer API: normalization layers and the weight layers (weightnorm,
  // cosinenorm: Linear or Conv2d with a weight mode).
  static const std::vector<std::string> methods = normlab::layer_methods();
  const std::string method = methods[data[0] % methods.size()];
  const uint8_t* end = static_cast<const uint8_t*>(std::memchr(data + 1, 0, size - 1));
  if (end == nullptr) return 0;
  const nlohmann::json options = nlohmann::json::parse(data + 1, end, nullptr, false);
  if (options.is_discarded()) return 0;
  size_t pos = static_cast<size_t>(end - data) + 1;
  if (pos + 2 > size) return 0;
  const uint8_t flags = data[pos++];
  const size_t rank = data[pos++] % 6;
  if (pos + rank > size) return 0;
  normlab::Shape shape;
  for (size_t i = 0; i < rank; ++i) shape.push_back(static_cast<int64_t>(data[pos++] % 16));
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (n > 4096) return 0;
  // Values from the rest of the input (cycled), as bytes scaled to [-8, 8).
  std::vector<float> x(static_cast<size_t>(std::max<int64_t>(n, 1)));
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = pos < size ? (static_cast<float>(data[pos + i % (size - pos)]) - 128) / 16 : 0.0f;
  }
  try {
    if (normlab::is_weight_method(method)) {
      auto layer = normlab::create_weight_layer(method, options);
      (void)normlab::weight_layer_options(*layer, 0).dump();
      normlab::Tensor in(shape), out, dx;
      std::copy(x.begin(), x.begin() + in.numel(), in.ptr());
      const normlab::Shape out_shape = layer->output_shape(shape);
      int64_t m = 1;
      for (int64_t d : out_shape) m *= d;
      if (m > (1 << 20)) return 0;
      const bool training = flags & 1;
      layer->forward(in, out, training);
      if (training) layer->backward(out, dx);
      layer->forward(in, out, false);
      return 0;
    }
    auto layer = normlab::create_norm(method, options);
    (void)normlab::layer_options(*layer).dump();
    const bool training = flags & 1;
    std::vector<float> y(x.size());
    layer->forward(x.data(), shape, training, y.data());
    if (training) {
      layer->backward(y.data(), y.data());
      for (const auto& p : layer->params()) (void)p.grad.size();
    }
    if (flags & 2) {
      // Parameters and state of the lengths the input suggests (often wrong: must be rejected).
      for (auto& p : layer->params()) {
        const size_t len = (flags & 4) ? p.value.size() : x.size();
        std::vector<float> v(len, 0.5f);
        layer->set_param(p.name, v.data(), v.size());
      }
      for (const auto& s : std::vector<normlab::StateBuffer>(layer->state())) {
        std::vector<float> v((flags & 8) ? s.value.size() : 1, (flags & 16) ? -1.0f : 1.0f);
        layer->set_state(s.name, v.data(), v.size());
      }
    }
    layer->forward(x.data(), shape, false, y.data());
  } catch (const normlab::Error&) {
  }
  return 0;
}
