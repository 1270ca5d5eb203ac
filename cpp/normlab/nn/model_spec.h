// A model description: the body of a model as a list of layers, where `norm` marks each slot the
// compared normalization method fills. Given as JSON objects or in a compact text form (the one
// parser for the CLI, the package and the playground); the named models mlp and cnn are
// descriptions too. build_model (model.h) adds the flatten where a Linear needs one and the final
// Linear to the number of classes.
//
// Compact form: items separated by commas, spaces allowed around them:
//   linear:N                 Linear to N units                          (1 <= N <= 4096)
//   conv:C[:K[:S[:P]]]       Conv2d to C channels, kernel K (3), stride S (1), padding P (K/2)
//   norm                     the compared method's slot (nothing for none and the weight methods)
//   relu, tanh               activations
//   pool:K                   MaxPool2d with window and stride K
//   gap                      global average pool, [N,C,H,W] -> [N,C]
//   flatten                  [N,...] -> [N,F]
//   res[ITEMS]               residual block y = x + f(x), f the items (nested blocks allowed)
// e.g. "conv:16,norm,relu,pool:2,res[conv:16,norm,relu,conv:16,norm],relu,gap".
//
// JSON form: an array of objects (or the compact string itself):
//   {type: 'linear', units}   {type: 'conv2d', channels, kernelSize?, stride?, padding?}
//   {type: 'norm'} {type: 'relu'} {type: 'tanh'} {type: 'maxpool', size} {type: 'gap'}
//   {type: 'flatten'} {type: 'residual', layers: [...]}
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace normlab {

enum class LayerType { linear, conv2d, norm, relu, tanh, maxpool, gap, flatten, residual };

struct LayerSpec {
  LayerType type = LayerType::relu;
  int64_t units = 0;                                          // linear: output features
  int64_t channels = 0, kernel = 3, stride = 1, padding = 1;  // conv2d
  int64_t size = 2;                                           // maxpool: window and stride
  std::vector<LayerSpec> layers;                              // residual: f of y = x + f(x)

  bool operator==(const LayerSpec& o) const;
  bool operator!=(const LayerSpec& o) const { return !(*this == o); }
};

// Bounds of a description (the named models have their own, below).
constexpr int64_t kMaxUnits = 4096;       // a linear's width
constexpr int64_t kMaxChannels = 256;     // a conv's channels
constexpr int64_t kMaxKernel = 15;        // a conv's kernel size and stride
constexpr int64_t kMaxPool = 16;          // a pool's window
constexpr size_t kMaxLayers = 64;         // layers in all, those inside residual blocks included
constexpr int kMaxNesting = 4;            // residual blocks inside residual blocks

// The compact form; throws Error naming the character position and the token, and what was
// expected there, or the bound a number breaks.
std::vector<LayerSpec> parse_layers(const std::string& text);
// A JSON array of layer objects, or a compact string; throws Error naming the entry
// ("layers[2].layers[0]") and the field.
std::vector<LayerSpec> layers_from_json(const nlohmann::json& json);
// The JSON form with every field given (defaults filled in).
nlohmann::json layers_to_json(const std::vector<LayerSpec>& layers);
// The compact form, trailing default numbers of a conv left out ("conv:16", "conv:16:5:2").
std::string layers_to_compact(const std::vector<LayerSpec>& layers);
std::string layer_to_compact(const LayerSpec& layer);

struct ModelSpec {
  // "mlp" | "cnn": the named descriptions (hidden / channels / activation below);
  // "layers": the described body in `layers`.
  std::string kind = "mlp";
  std::vector<int64_t> hidden = {128, 128};  // mlp: widths of the hidden layers
  std::vector<int64_t> channels = {8, 16};   // cnn: channels of the conv blocks
  std::string activation = "relu";           // mlp, cnn: "relu" | "tanh"
  std::vector<LayerSpec> layers;             // kind "layers"
};

// The body a model spec describes. The named models are
//   mlp: [linear:h, norm, act] per hidden width h
//   cnn: [conv:c (3x3, stride 1, padding 1), norm, act, pool:2] per channel count c
// (build_model makes from them the modules the earlier fixed builders made, in the same order).
std::vector<LayerSpec> model_body(const ModelSpec& spec);

// Reads {"kind", "hidden", "channels", "activation"} (the named models, at most 8 hidden layers
// of at most 4096 units, at most 4 conv blocks of at most 256 channels) or {"layers"} (with
// "kind": "layers" or no kind); validates.
ModelSpec model_spec_from_json(const nlohmann::json& json);
// {"kind", "hidden", "channels", "activation"} for the named models; {"kind": "layers", "layers":
// the JSON form} for a described one. model_spec_from_json reads it back.
nlohmann::json model_spec_to_json(const ModelSpec& spec);

}  // namespace normlab
