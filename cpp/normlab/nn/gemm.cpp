#include "normlab/nn/gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "normlab/core/simd.h"

namespace normlab {

namespace {

using simd::load4;
using simd::splat;
using simd::store4;
using simd::v4;

// Transposes the 4x4 block whose rows are r0..r3 in place (rows become columns).
inline void transpose4(v4& r0, v4& r1, v4& r2, v4& r3) {
  const v4 t0 = __builtin_shufflevector(r0, r1, 0, 4, 1, 5);
  const v4 t1 = __builtin_shufflevector(r0, r1, 2, 6, 3, 7);
  const v4 t2 = __builtin_shufflevector(r2, r3, 0, 4, 1, 5);
  const v4 t3 = __builtin_shufflevector(r2, r3, 2, 6, 3, 7);
  r0 = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
  r1 = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
  r2 = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
  r3 = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
}

// Writes src rows (each contiguous over k, row r at src + r*ld) k-major into out: out[k*W + r] =
// src[r*ld + k] for r < rows, 0 for rows <= r < W; W = 4 or 8, kc values of k.
template <int W>
void pack_rows_k_major(float* out, const float* src, int64_t ld, int64_t rows, int64_t kc) {
  int64_t k = 0;
  if (rows == W) {
    for (; k + 4 <= kc; k += 4) {
      for (int h = 0; h < W; h += 4) {
        v4 r0 = load4(src + (h + 0) * ld + k), r1 = load4(src + (h + 1) * ld + k);
        v4 r2 = load4(src + (h + 2) * ld + k), r3 = load4(src + (h + 3) * ld + k);
        transpose4(r0, r1, r2, r3);
        store4(out + (k + 0) * W + h, r0);
        store4(out + (k + 1) * W + h, r1);
        store4(out + (k + 2) * W + h, r2);
        store4(out + (k + 3) * W + h, r3);
      }
    }
  }
  for (; k < kc; ++k) {
    int64_t r = 0;
    for (; r < rows; ++r) out[k * W + r] = src[r * ld + k];
    for (; r < W; ++r) out[k * W + r] = 0.0f;
  }
}

constexpr int64_t MR = 4;    // rows of a micro-tile
constexpr int64_t NR = 8;    // columns of a micro-tile (two vectors)
constexpr int64_t KC = kGemmDepthBlock;  // depth of a packed block (A panel 4 KiB, B panel 8 KiB: L1)
constexpr int64_t MC = 128;  // rows of a packed A block (128 KiB: L2)
constexpr int64_t NC = 512;  // columns of a packed B block (512 KiB: L2)

// Packed panels, reused between calls (grown, never shrunk: no allocation per step).
std::vector<float>& a_buffer() {
  static std::vector<float> buf;
  return buf;
}
std::vector<float>& b_buffer() {
  static std::vector<float> buf;
  return buf;
}

// Packs op(A)[i0:i0+mc, p0:p0+kc] as ceil(mc/MR) panels of kc x MR (k-major), rows past mc zero.
void pack_a(float* out, Trans ta, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
            int64_t kc) {
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int64_t m = std::min(MR, mc - ir);
    if (ta == Trans::T) {
      // op(A)[i,k] = A[k*lda + i]: MR contiguous values per k.
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = A + (p0 + k) * lda + i0 + ir;
        float* dst = out + k * MR;
        int64_t r = 0;
        for (; r < m; ++r) dst[r] = src[r];
        for (; r < MR; ++r) dst[r] = 0.0f;
      }
    } else {
      // op(A)[i,k] = A[i*lda + k]: MR rows read side by side, transposed 4x4 at a time.
      pack_rows_k_major<MR>(out, A + (i0 + ir) * lda + p0, lda, m, kc);
    }
    out += kc * MR;
  }
}

// Packs op(B)[p0:p0+kc, j0:j0+nc] as ceil(nc/NR) panels of kc x NR (k-major), columns past nc zero.
void pack_b(float* out, Trans tb, const float* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
            int64_t nc) {
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const int64_t n = std::min(NR, nc - jr);
    if (tb == Trans::N) {
      // op(B)[k,j] = B[k*ldb + j]: NR contiguous values per k.
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = B + (p0 + k) * ldb + j0 + jr;
        float* dst = out + k * NR;
        if (n == NR) {
          store4(dst, load4(src));
          store4(dst + 4, load4(src + 4));
        } else {
          int64_t c = 0;
          for (; c < n; ++c) dst[c] = src[c];
          for (; c < NR; ++c) dst[c] = 0.0f;
        }
      }
    } else {
      // op(B)[k,j] = B[j*ldb + k]: NR rows of B read side by side, transposed 4x4 at a time.
      pack_rows_k_major<NR>(out, B + (j0 + jr) * ldb + p0, ldb, n, kc);
    }
    out += kc * NR;
  }
}

// The MR x NR micro-kernel: C tile (+)= Ap (kc x MR panel) * Bp (kc x NR panel).
inline void micro_kernel(int64_t kc, const float* Ap, const float* Bp, float* C, int64_t ldc,
                         bool accumulate) {
  v4 c00 = splat(0), c01 = splat(0), c10 = splat(0), c11 = splat(0);
  v4 c20 = splat(0), c21 = splat(0), c30 = splat(0), c31 = splat(0);
  for (int64_t k = 0; k < kc; ++k) {
    const v4 b0 = load4(Bp), b1 = load4(Bp + 4);
    const v4 a0 = splat(Ap[0]), a1 = splat(Ap[1]), a2 = splat(Ap[2]), a3 = splat(Ap[3]);
    c00 += a0 * b0;
    c01 += a0 * b1;
    c10 += a1 * b0;
    c11 += a1 * b1;
    c20 += a2 * b0;
    c21 += a2 * b1;
    c30 += a3 * b0;
    c31 += a3 * b1;
    Ap += MR;
    Bp += NR;
  }
  if (accumulate) {
    c00 += load4(C);
    c01 += load4(C + 4);
    c10 += load4(C + ldc);
    c11 += load4(C + ldc + 4);
    c20 += load4(C + 2 * ldc);
    c21 += load4(C + 2 * ldc + 4);
    c30 += load4(C + 3 * ldc);
    c31 += load4(C + 3 * ldc + 4);
  }
  store4(C, c00);
  store4(C + 4, c01);
  store4(C + ldc, c10);
  store4(C + ldc + 4, c11);
  store4(C + 2 * ldc, c20);
  store4(C + 2 * ldc + 4, c21);
  store4(C + 3 * ldc, c30);
  store4(C + 3 * ldc + 4, c31);
}

}  // namespace

void gemm(bool accumulate, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const float* A,
          int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc) {
  if (K == 0) {
    if (!accumulate) {
      for (int64_t i = 0; i < M; ++i) std::memset(C + i * ldc, 0, static_cast<size_t>(N) * sizeof(float));
    }
    return;
  }
  std::vector<float>& abuf = a_buffer();
  std::vector<float>& bbuf = b_buffer();
  const int64_t kc_max = std::min(K, KC);
  const int64_t a_need = ((std::min(M, MC) + MR - 1) / MR) * MR * kc_max;
  const int64_t b_need = ((std::min(N, NC) + NR - 1) / NR) * NR * kc_max;
  if (static_cast<int64_t>(abuf.size()) < a_need) abuf.resize(static_cast<size_t>(a_need));
  if (static_cast<int64_t>(bbuf.size()) < b_need) bbuf.resize(static_cast<size_t>(b_need));
  float edge[MR * NR];  // a partial tile's result, before it is added to C

  for (int64_t j0 = 0; j0 < N; j0 += NC) {
    const int64_t nc = std::min(NC, N - j0);
    for (int64_t p0 = 0; p0 < K; p0 += KC) {
      const int64_t kc = std::min(KC, K - p0);
      const bool acc = accumulate || p0 > 0;
      pack_b(bbuf.data(), tb, B, ldb, p0, kc, j0, nc);
      for (int64_t i0 = 0; i0 < M; i0 += MC) {
        const int64_t mc = std::min(MC, M - i0);
        pack_a(abuf.data(), ta, A, lda, i0, mc, p0, kc);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t n = std::min(NR, nc - jr);
          const float* Bp = bbuf.data() + (jr / NR) * kc * NR;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t m = std::min(MR, mc - ir);
            const float* Ap = abuf.data() + (ir / MR) * kc * MR;
            float* Ct = C + (i0 + ir) * ldc + j0 + jr;
            if (m == MR && n == NR) {
              micro_kernel(kc, Ap, Bp, Ct, ldc, acc);
            } else {
              micro_kernel(kc, Ap, Bp, edge, NR, false);
              for (int64_t r = 0; r < m; ++r) {
                for (int64_t c = 0; c < n; ++c) {
                  Ct[r * ldc + c] = acc ? Ct[r * ldc + c] + edge[r * NR + c] : edge[r * NR + c];
                }
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace normlab
