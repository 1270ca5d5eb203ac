// Errors of the normlab core: every validation failure throws normlab::Error, whose message names
// the layer (or entry point) and the problem, e.g. "batchnorm: input has 10 values but shape [2,3]
// needs 6". The WebAssembly bindings turn it into a JS Error at the boundary.
#pragma once

#include <cmath>
#include <sstream>
#include <type_traits>
#include <stdexcept>
#include <string>

namespace normlab {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
// Streams one piece of a message; non-finite numbers as JS writes them (NaN, Infinity, -Infinity),
// since that is what the user of the JS API passed.
template <typename T>
void put(std::ostringstream& out, const T& part) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(part)) {
      out << "NaN";
    } else if (std::isinf(part)) {
      out << (part > 0 ? "Infinity" : "-Infinity");
    } else {
      out << part;
    }
  } else {
    out << part;
  }
}
}  // namespace detail

// Builds a message from any streamable pieces: fail("batchnorm: ", "eps must be > 0, got ", eps).
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream out;
  (detail::put(out, parts), ...);
  throw Error(out.str());
}

}  // namespace normlab
