#include "normlab/nn/model_spec.h"

#include <cctype>
#include <cmath>

#include "normlab/core/error.h"
#include "normlab/core/options.h"

namespace normlab {

bool LayerSpec::operator==(const LayerSpec& o) const {
  return type == o.type && units == o.units && channels == o.channels && kernel == o.kernel &&
         stride == o.stride && padding == o.padding && size == o.size && layers == o.layers;
}

namespace {

constexpr const char* kCompactKnown =
    "linear:N, conv:C[:K[:S[:P]]], norm, relu, tanh, pool:K, gap, flatten, res[...]";
constexpr const char* kJsonKnown = "linear, conv2d, norm, relu, tanh, maxpool, gap, flatten, residual";

// The bounds of one layer's numbers (the residual's are its layers'). `who` names the layer.
void check_layer(const LayerSpec& l, const std::string& who) {
  auto in_range = [&](const char* what, int64_t v, int64_t lo, int64_t hi, const char* why = "") {
    if (v < lo || v > hi) fail(who, ": ", what, " must be in [", lo, ", ", hi, "]", why, ", got ", v);
  };
  switch (l.type) {
    case LayerType::linear:
      in_range("units", l.units, 1, kMaxUnits);
      break;
    case LayerType::conv2d:
      in_range("channels", l.channels, 1, kMaxChannels);
      in_range("kernel size", l.kernel, 1, kMaxKernel);
      in_range("stride", l.stride, 1, kMaxKernel);
      in_range("padding", l.padding, 0, l.kernel - 1, " (below the kernel size)");
      break;
    case LayerType::maxpool:
      in_range("size", l.size, 1, kMaxPool);
      break;
    default:
      break;
  }
}

size_t count_layers(const std::vector<LayerSpec>& layers) {
  size_t n = 0;
  for (const LayerSpec& l : layers) n += 1 + count_layers(l.layers);
  return n;
}

void check_count(const std::vector<LayerSpec>& layers, const std::string& who) {
  const size_t n = count_layers(layers);
  if (n > kMaxLayers) {
    fail(who, ": at most ", kMaxLayers, " layers in all (those inside residual blocks included), got ", n);
  }
}

// ---- the compact form -------------------------------------------------------------------------

class CompactParser {
 public:
  CompactParser(const std::string& text, const std::string& who) : s_(text), who_(who) {}

  std::vector<LayerSpec> parse() {
    skip_spaces();
    if (at_end()) {
      fail(who_, ": the description is empty; expected layers like \"conv:16,norm,relu,pool:2\" (",
           kCompactKnown, ")");
    }
    std::vector<LayerSpec> layers = items(0, std::string::npos);
    check_count(layers, who_);
    return layers;
  }

 private:
  bool at_end() const { return pos_ >= s_.size(); }
  void skip_spaces() {
    while (!at_end() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  // Character positions in messages count from 1.
  size_t at(size_t pos) const { return pos + 1; }
  // What stands at pos_, for "got ...": the run of characters up to the next separator, or the
  // separator itself, or "the end of the text".
  std::string got() const {
    if (at_end()) return "the end of the text";
    size_t end = pos_;
    while (end < s_.size() && std::string(",:[] \t\r\n").find(s_[end]) == std::string::npos) ++end;
    return "'" + s_.substr(pos_, std::max<size_t>(end - pos_, 1)) + "'";
  }

  // Items up to the end of the text (open == npos) or up to the ']' that closes the 'res[' at
  // `open` (left for the caller).
  std::vector<LayerSpec> items(int depth, size_t open) {
    std::vector<LayerSpec> out;
    for (;;) {
      skip_spaces();
      const size_t start = pos_;
      out.push_back(item(depth));
      const size_t end = pos_;
      skip_spaces();
      if (at_end()) {
        if (open != std::string::npos) {
          fail(who_, ": 'res[' at character ", at(open), " is not closed: expected ']' by the end of the text");
        }
        return out;
      }
      const char c = s_[pos_];
      if (c == ',') {
        const size_t comma = pos_++;
        skip_spaces();
        if (at_end() || s_[pos_] == ']') {
          fail(who_, ": expected a layer after the ',' at character ", at(comma), ", got ", got());
        }
        continue;
      }
      if (c == ']') {
        if (open == std::string::npos) fail(who_, ": ']' at character ", at(pos_), " closes no 'res['");
        return out;
      }
      if (c == '[') {
        fail(who_, ": '", s_.substr(start, end - start), "' at character ", at(start),
             " is followed by '[': only res takes layers in brackets, res[...]");
      }
      fail(who_, ": expected ',' ", open == std::string::npos ? "or the end" : "or ']'", " at character ",
           at(pos_), ", got ", got());
    }
  }

  // One number after a ':' (pos_ is just past it).
  int64_t number(const std::string& name, size_t start, const char* what) {
    const size_t first = pos_;
    int64_t v = 0;
    while (!at_end() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
      v = std::min<int64_t>(v * 10 + (s_[pos_] - '0'), 1000000000);  // beyond every bound
      ++pos_;
    }
    if (pos_ == first) {
      fail(who_, ": expected a whole number (", what, " of the '", name, "' at character ", at(start),
           ") at character ", at(pos_), ", got ", got());
    }
    return v;
  }

  LayerSpec item(int depth) {
    const size_t start = pos_;
    while (!at_end() && std::isalpha(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    const std::string name = s_.substr(start, pos_ - start);
    if (name.empty()) fail(who_, ": expected a layer at character ", at(pos_), ", got ", got());
    LayerSpec l;
    // The numbers each name takes, what they are; the first is required.
    std::vector<const char*> args;
    if (name == "linear") {
      l.type = LayerType::linear;
      args = {"the width"};
    } else if (name == "conv") {
      l.type = LayerType::conv2d;
      args = {"the channels", "the kernel size", "the stride", "the padding"};
    } else if (name == "pool") {
      l.type = LayerType::maxpool;
      args = {"the window"};
    } else if (name == "norm") {
      l.type = LayerType::norm;
    } else if (name == "relu") {
      l.type = LayerType::relu;
    } else if (name == "tanh") {
      l.type = LayerType::tanh;
    } else if (name == "gap") {
      l.type = LayerType::gap;
    } else if (name == "flatten") {
      l.type = LayerType::flatten;
    } else if (name == "res") {
      l.type = LayerType::residual;
    } else {
      fail(who_, ": unknown layer '", name, "' at character ", at(start), "; expected one of ", kCompactKnown);
    }
    if (!at_end() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
      fail(who_, ": expected ':' between '", name, "' and its number at character ", at(pos_), ", got ", got());
    }
    std::vector<int64_t> numbers;
    while (!at_end() && s_[pos_] == ':') {
      if (numbers.size() == args.size()) {
        if (args.empty()) {
          fail(who_, ": '", name, "' at character ", at(start), " takes no number, got ':' at character ", at(pos_));
        }
        const std::string takes =
            name == "conv" ? "at most 4 numbers (conv:C[:K[:S[:P]]])" : "one number (" + name + ":N)";
        fail(who_, ": '", name, "' at character ", at(start), " takes ", takes, ", got another ':' at character ",
             at(pos_));
      }
      ++pos_;
      numbers.push_back(number(name, start, args[numbers.size()]));
    }
    if (numbers.empty() && !args.empty()) {
      const char* form = name == "linear" ? "linear:N (e.g. linear:64)"
                         : name == "conv" ? "conv:C[:K[:S[:P]]] (e.g. conv:16)"
                                          : "pool:K (e.g. pool:2)";
      fail(who_, ": '", name, "' at character ", at(start), " needs ", args[0], ": ", form);
    }
    if (l.type == LayerType::linear) l.units = numbers[0];
    if (l.type == LayerType::maxpool) l.size = numbers[0];
    if (l.type == LayerType::conv2d) {
      l.channels = numbers[0];
      if (numbers.size() > 1) l.kernel = numbers[1];
      if (numbers.size() > 2) l.stride = numbers[2];
      l.padding = numbers.size() > 3 ? numbers[3] : l.kernel / 2;
    }
    if (l.type == LayerType::residual) {
      skip_spaces();
      if (at_end() || s_[pos_] != '[') {
        fail(who_, ": 'res' at character ", at(start), " needs its layers in brackets: res[...], got ", got());
      }
      if (depth + 1 > kMaxNesting) {
        fail(who_, ": residual blocks nest at most ", kMaxNesting, " deep; the 'res[' at character ",
             at(start), " is block ", depth + 1, " deep");
      }
      ++pos_;
      skip_spaces();
      if (!at_end() && s_[pos_] == ']') {
        fail(who_, ": 'res[]' at character ", at(start), " is empty: a residual block needs at least one layer");
      }
      l.layers = items(depth + 1, start);
      ++pos_;  // the ']'
      return l;
    }
    check_layer(l, who_ + ": '" + s_.substr(start, pos_ - start) + "' at character " + std::to_string(at(start)));
    return l;
  }

  const std::string& s_;
  const std::string who_;
  size_t pos_ = 0;
};

// ---- the JSON form ----------------------------------------------------------------------------

const char* json_name(LayerType t) {
  switch (t) {
    case LayerType::linear: return "linear";
    case LayerType::conv2d: return "conv2d";
    case LayerType::norm: return "norm";
    case LayerType::relu: return "relu";
    case LayerType::tanh: return "tanh";
    case LayerType::maxpool: return "maxpool";
    case LayerType::gap: return "gap";
    case LayerType::flatten: return "flatten";
    case LayerType::residual: return "residual";
  }
  return "";
}

std::vector<LayerSpec> from_json(const nlohmann::json& json, const std::string& who, int depth) {
  if (!json.is_array() || json.empty()) {
    fail(who, " must be a non-empty array of layers ({type: 'conv2d', channels: 16}, {type: 'norm'}, ...) ",
         "or a compact string like \"conv:16,norm,relu\", got ", json.dump());
  }
  std::vector<LayerSpec> out;
  for (size_t i = 0; i < json.size(); ++i) {
    const nlohmann::json& e = json[i];
    const std::string at = who + "[" + std::to_string(i) + "]";
    if (!e.is_object()) fail(at, " must be a layer object {type, ...}, got ", e.dump());
    if (!e.contains("type") || !e.at("type").is_string()) {
      fail(at, ": type is required, a string (one of ", kJsonKnown, "), got ",
           e.contains("type") ? e.at("type").dump() : std::string("none"));
    }
    const std::string type = e.at("type").get<std::string>();
    LayerSpec l;
    std::vector<std::string> keys = {"type"};
    if (type == "linear") {
      l.type = LayerType::linear;
      keys.push_back("units");
    } else if (type == "conv2d") {
      l.type = LayerType::conv2d;
      keys.insert(keys.end(), {"channels", "kernelSize", "stride", "padding"});
    } else if (type == "maxpool") {
      l.type = LayerType::maxpool;
      keys.push_back("size");
    } else if (type == "residual") {
      l.type = LayerType::residual;
      keys.push_back("layers");
    } else if (type == "norm") {
      l.type = LayerType::norm;
    } else if (type == "relu") {
      l.type = LayerType::relu;
    } else if (type == "tanh") {
      l.type = LayerType::tanh;
    } else if (type == "gap") {
      l.type = LayerType::gap;
    } else if (type == "flatten") {
      l.type = LayerType::flatten;
    } else {
      fail(at, ": unknown type '", type, "' (known: ", kJsonKnown, ")");
    }
    const std::string named = at + " (" + type + ")";
    OptionReader r(e, named, keys);
    auto given = [&](const char* key) { return r.has(key) && !e.at(key).is_null(); };
    if (l.type == LayerType::linear) l.units = r.integer("units");
    if (l.type == LayerType::maxpool) l.size = r.integer("size");
    if (l.type == LayerType::conv2d) {
      l.channels = r.integer("channels");
      if (given("kernelSize")) l.kernel = r.integer("kernelSize");
      if (given("stride")) l.stride = r.integer("stride");
      l.padding = given("padding") ? r.integer("padding") : l.kernel / 2;
    }
    if (l.type == LayerType::residual) {
      if (!given("layers")) fail(named, ": layers is required (the layers of f in y = x + f(x))");
      if (depth + 1 > kMaxNesting) {
        fail(named, ": residual blocks nest at most ", kMaxNesting, " deep; this one is block ", depth + 1, " deep");
      }
      l.layers = from_json(e.at("layers"), at + ".layers", depth + 1);
    }
    check_layer(l, named);
    out.push_back(std::move(l));
  }
  return out;
}

// Either form; `who` names the field in messages ("layers", "model: layers").
std::vector<LayerSpec> layers_from_json_as(const nlohmann::json& json, const std::string& who) {
  if (json.is_string()) return CompactParser(json.get_ref<const std::string&>(), who).parse();
  std::vector<LayerSpec> layers = from_json(json, who, 0);
  check_count(layers, who);
  return layers;
}

}  // namespace

std::vector<LayerSpec> parse_layers(const std::string& text) { return CompactParser(text, "layers").parse(); }

std::vector<LayerSpec> layers_from_json(const nlohmann::json& json) { return layers_from_json_as(json, "layers"); }

nlohmann::json layers_to_json(const std::vector<LayerSpec>& layers) {
  nlohmann::json out = nlohmann::json::array();
  for (const LayerSpec& l : layers) {
    nlohmann::json e = {{"type", json_name(l.type)}};
    if (l.type == LayerType::linear) e["units"] = l.units;
    if (l.type == LayerType::maxpool) e["size"] = l.size;
    if (l.type == LayerType::conv2d) {
      e["channels"] = l.channels;
      e["kernelSize"] = l.kernel;
      e["stride"] = l.stride;
      e["padding"] = l.padding;
    }
    if (l.type == LayerType::residual) e["layers"] = layers_to_json(l.layers);
    out.push_back(std::move(e));
  }
  return out;
}

std::string layer_to_compact(const LayerSpec& l) {
  switch (l.type) {
    case LayerType::linear: return "linear:" + std::to_string(l.units);
    case LayerType::maxpool: return "pool:" + std::to_string(l.size);
    case LayerType::norm: return "norm";
    case LayerType::relu: return "relu";
    case LayerType::tanh: return "tanh";
    case LayerType::gap: return "gap";
    case LayerType::flatten: return "flatten";
    case LayerType::residual: return "res[" + layers_to_compact(l.layers) + "]";
    case LayerType::conv2d: {
      // Numbers after the channels as far as the last one that differs from its default.
      const bool p = l.padding != l.kernel / 2, s = p || l.stride != 1, k = s || l.kernel != 3;
      std::string out = "conv:" + std::to_string(l.channels);
      if (k) out += ":" + std::to_string(l.kernel);
      if (s) out += ":" + std::to_string(l.stride);
      if (p) out += ":" + std::to_string(l.padding);
      return out;
    }
  }
  return "";
}

std::string layers_to_compact(const std::vector<LayerSpec>& layers) {
  std::string out;
  for (const LayerSpec& l : layers) out += (out.empty() ? "" : ",") + layer_to_compact(l);
  return out;
}

std::vector<LayerSpec> model_body(const ModelSpec& spec) {
  if (spec.kind == "layers") return spec.layers;
  LayerSpec act;
  act.type = spec.activation == "tanh" ? LayerType::tanh : LayerType::relu;
  LayerSpec norm;
  norm.type = LayerType::norm;
  std::vector<LayerSpec> body;
  if (spec.kind == "cnn") {
    for (int64_t c : spec.channels) {
      LayerSpec conv;
      conv.type = LayerType::conv2d;
      conv.channels = c;  // 3x3, stride 1, padding 1: the defaults
      LayerSpec pool;
      pool.type = LayerType::maxpool;
      pool.size = 2;
      body.insert(body.end(), {conv, norm, act, pool});
    }
  } else {
    for (int64_t width : spec.hidden) {
      LayerSpec linear;
      linear.type = LayerType::linear;
      linear.units = width;
      body.insert(body.end(), {linear, norm, act});
    }
  }
  return body;
}

ModelSpec model_spec_from_json(const nlohmann::json& json) {
  OptionReader r(json, "model", {"kind", "hidden", "channels", "activation", "layers"});
  ModelSpec s;
  auto text = [&](const char* key, std::string fallback) {
    if (!r.has(key)) return fallback;
    const nlohmann::json& v = json.at(key);
    if (!v.is_string()) fail("model: ", key, " must be a string, got ", v.dump());
    return v.get<std::string>();
  };
  s.kind = text("kind", r.has("layers") ? "layers" : s.kind);
  if (r.has("layers")) {
    if (s.kind != "layers") {
      fail("model: give either kind '", s.kind, "' or layers, not both (layers describes the whole body)");
    }
    for (const char* key : {"hidden", "channels", "activation"}) {
      if (r.has(key)) {
        fail("model: ", key, " belongs to the named models (mlp, cnn); with layers, every width, channel ",
             "count and activation is a layer of its own");
      }
    }
    s.layers = layers_from_json_as(json.at("layers"), "model: layers");
    return s;
  }
  if (s.kind == "layers") fail("model: kind 'layers' needs layers, e.g. \"conv:16,norm,relu,pool:2\"");
  s.activation = text("activation", s.activation);
  if (s.kind != "mlp" && s.kind != "cnn") {
    fail("model: unknown kind '", s.kind, "' (known: mlp, cnn; or describe the layers with layers)");
  }
  if (s.activation != "relu" && s.activation != "tanh") {
    fail("model: unknown activation '", s.activation, "' (known: relu, tanh)");
  }
  // Widths one by one (read as a shape, [4096, 4096, 4096] would count as too many elements).
  auto widths = [&](const char* key) {
    const nlohmann::json& v = json.at(key);
    if (!v.is_array() || v.empty()) {
      fail("model: ", key, " must be a non-empty array of positive integers, got ", v.dump());
    }
    std::vector<int64_t> out;
    for (size_t i = 0; i < v.size(); ++i) {
      const double d = v[i].is_number() ? v[i].get<double>() : 0;
      if (!v[i].is_number() || !(d >= 1) || d != std::floor(d) || d > 1e9) {
        fail("model: ", key, "[", i, "] must be a positive integer, got ", v[i].dump());
      }
      out.push_back(static_cast<int64_t>(d));
    }
    return out;
  };
  if (r.has("hidden")) s.hidden = widths("hidden");
  if (r.has("channels")) s.channels = widths("channels");
  for (int64_t w : s.hidden) {
    if (w > kMaxUnits) fail("model: hidden widths must be at most ", kMaxUnits, ", got ", w);
  }
  for (int64_t c : s.channels) {
    if (c > kMaxChannels) fail("model: channel counts must be at most ", kMaxChannels, ", got ", c);
  }
  if (s.hidden.size() > 8) fail("model: at most 8 hidden layers, got ", s.hidden.size());
  if (s.channels.size() > 4) fail("model: at most 4 conv blocks, got ", s.channels.size());
  return s;
}

nlohmann::json model_spec_to_json(const ModelSpec& spec) {
  if (spec.kind == "layers") return {{"kind", "layers"}, {"layers", layers_to_json(spec.layers)}};
  return {{"kind", spec.kind}, {"hidden", spec.hidden}, {"channels", spec.channels},
          {"activation", spec.activation}};
}

}  // namespace normlab
