// Four-float vectors for the training core's hand-vectorised kernels (gemm.cpp, pooling.cpp), with
// GCC/Clang vector extensions: SSE natively, SIMD128 under Emscripten with -msimd128. Internal.
#pragma once

#include <cstdint>
#include <cstring>

namespace normlab::simd {

typedef float v4 __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

inline v4 load4(const float* p) {
  v4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store4(float* p, v4 v) { std::memcpy(p, &v, sizeof v); }
inline void store4i(int32_t* p, v4i v) { std::memcpy(p, &v, sizeof v); }
inline v4 splat(float x) { return v4{x, x, x, x}; }

// mask ? a : b, lane by lane (mask lanes all ones or all zeros, as comparisons give).
inline v4 select(v4i mask, v4 a, v4 b) {
  return (v4)(((v4i)a & mask) | ((v4i)b & ~mask));
}
inline v4i select(v4i mask, v4i a, v4i b) { return (a & mask) | (b & ~mask); }

}  // namespace normlab::simd
