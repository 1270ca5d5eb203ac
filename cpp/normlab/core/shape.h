// Tensor shapes: dims of an NCHW-style tensor ([N,C], [N,C,L], [N,C,H,W], ...), row-major.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace normlab {

using Shape = std::vector<int64_t>;

// Largest number of elements one tensor may have (2^31 - 1: a float32 tensor of that size is
// already 8 GiB, beyond any WebAssembly heap; the bound keeps all index arithmetic in range).
constexpr int64_t kMaxElements = (int64_t{1} << 31) - 1;

// Product of the dims. Caller must have validated the shape.
int64_t numel(const Shape& shape);

// "[2,3,5,7]"
std::string to_string(const Shape& shape);

// Validates dims given as doubles (as they arrive from JS or JSON): each a positive integer, at
// least min_rank of them, product at most kMaxElements. `who` prefixes the error message.
Shape shape_from_doubles(const std::vector<double>& dims, const std::string& who, size_t min_rank);

}  // namespace normlab
