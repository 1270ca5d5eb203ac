// The one matrix product of the training core (Linear and Conv2d forward and backward), written for
// the small, odd shapes a browser-sized model has: C (M,N) = op(A) (M,K) * op(B) (K,N), or C += that,
// all row-major float32. Eigen 3.4 has no WebAssembly SIMD path, so its GEMM runs scalar there; this
// one is a packed, register-blocked kernel (4x8 tiles of 4-float vectors, GCC/Clang vector
// extensions) that compiles to SSE natively and to SIMD128 under Emscripten (-msimd128), with the
// same order of operations in both. Sums over K run in float in a fixed order (deterministic).
// reference: Goto & van de Geijn 2008, "Anatomy of High-Performance Matrix Multiplication"
// (packing A and B into panels, a register-blocked micro-kernel); BLIS's loop structure.
#pragma once

#include <cstdint>

namespace normlab {

enum class Trans { N, T };

// The depth of a packed block: a sum over K runs in blocks of this many terms, each summed from
// zero in ascending order and then added into C, block after block. Kernels that must give the
// GEMM's results bit for bit (conv2d.cpp's direct path) sum in the same blocks.
constexpr int64_t kGemmDepthBlock = 256;

// op(A)[i,k] = A[i*lda + k] (Trans::N, A stored (M,K)) or A[k*lda + i] (Trans::T, A stored (K,M));
// op(B)[k,j] = B[k*ldb + j] (Trans::N, B stored (K,N)) or B[j*ldb + k] (Trans::T, B stored (N,K)).
// C[i*ldc + j] = sum_k op(A)[i,k] * op(B)[k,j]  (+ C[i*ldc + j] when accumulate).
// M, N >= 1 and K >= 0 (K = 0 writes zeros, or leaves C when accumulating). C must not overlap A
// or B. Not thread-safe (packing buffers are shared; the core is single-threaded).
void gemm(bool accumulate, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K,  //
          const float* A, int64_t lda,                                           // op(A): (M,K)
          const float* B, int64_t ldb,                                           // op(B): (K,N)
          float* C, int64_t ldc);                                                // (M,N)

}  // namespace normlab
