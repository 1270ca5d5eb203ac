#include "normlab/core/shape.h"

#include <cmath>
#include <sstream>

#include "normlab/core/error.h"

namespace normlab {

int64_t numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string to_string(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? "," : "") << shape[i];
  out << ']';
  return out.str();
}

Shape shape_from_doubles(const std::vector<double>& dims, const std::string& who, size_t min_rank) {
  if (dims.size() < min_rank) {
    fail(who, ": shape must have at least ", min_rank, " dims, got ", dims.size());
  }
  Shape shape;
  shape.reserve(dims.size());
  double product = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    const double d = dims[i];
    if (!std::isfinite(d) || d < 1 || d != std::floor(d)) {
      fail(who, ": shape dim ", i, " must be a positive integer, got ", d);
    }
    product *= d;
    if (product > static_cast<double>(kMaxElements)) {
      fail(who, ": shape has more than ", kMaxElements, " elements");
    }
    shape.push_back(static_cast<int64_t>(d));
  }
  return shape;
}

}  // namespace normlab
