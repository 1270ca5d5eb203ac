#include "normlab/nn/conv2d.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "normlab/core/error.h"
#include "normlab/core/simd.h"
#include "normlab/nn/gemm.h"
#include "normlab/nn/linear.h"

namespace normlab {

namespace {

// dst[i] = src[i] for i < n; the pointers do not overlap (lets short rows vectorise without
// runtime overlap checks).
inline void copy_row(float* __restrict dst, const float* __restrict src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

// dst[i] += src[i] for i < n; the pointers do not overlap.
inline void add_row(float* __restrict dst, const float* __restrict src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

// dst[f] += src[f] for f in [f0, f1) whose column f % W lies in [lo, hi), += +0 for the others
// (W >= 4). The pointers do not overlap.
inline void add_row_masked(float* __restrict dst, const float* __restrict src, int64_t f0, int64_t f1,
                           int64_t W, int64_t lo, int64_t hi) {
  using namespace simd;
  const v4i lane = {0, 1, 2, 3};
  const int32_t w = static_cast<int32_t>(W), l = static_cast<int32_t>(lo), h = static_cast<int32_t>(hi);
  int64_t f = f0;
  int32_t col = static_cast<int32_t>(f0 % W);  // the column of f
  for (; f + 4 <= f1; f += 4) {
    v4i cols = lane + col;
    cols = select(cols >= w, cols - w, cols);
    const v4i keep = (cols >= l) & (cols < h);
    store4(dst + f, load4(dst + f) + select(keep, load4(src + f), splat(0)));
    col += 4;
    if (col >= w) col -= w;
  }
  for (; f < f1; ++f) {
    if (col >= l && col < h) dst[f] += src[f];
    if (++col == w) col = 0;
  }
}

// The output columns ow whose input column iw = ow*stride - padding + kj lies in [0, W):
// [lo, hi) (empty when lo >= hi).
inline void valid_columns(int64_t W, int64_t kj, int64_t stride, int64_t padding, int64_t Wo,
                          int64_t& lo, int64_t& hi) {
  const int64_t first = padding - kj;  // ow*stride >= first
  lo = first <= 0 ? 0 : (first + stride - 1) / stride;
  const int64_t last = W - 1 + padding - kj;  // ow*stride <= last
  hi = last < 0 ? 0 : std::min(Wo, last / stride + 1);
  if (lo > hi) lo = hi;
}

}  // namespace

void im2col(float* col, const float* x, int64_t C, int64_t H, int64_t W, int64_t K, int64_t stride,
            int64_t padding, int64_t Ho, int64_t Wo) {
  const int64_t L = Ho * Wo;
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = x + c * H * W;
    for (int64_t ki = 0; ki < K; ++ki) {
      for (int64_t kj = 0; kj < K; ++kj) {
        float* row = col + ((c * K + ki) * K + kj) * L;
        int64_t lo, hi;
        valid_columns(W, kj, stride, padding, Wo, lo, hi);
        if (stride == 1 && Ho == H && Wo == W) {
          // A "same" convolution: this row of col is the input plane shifted by dr rows and dc
          // columns. One contiguous copy over the valid rows, then zeros where a column wrapped
          // around a row's edge, and zero rows outside the input.
          const int64_t dr = ki - padding, dc = kj - padding, off = dr * W + dc;
          const int64_t oh_lo = std::max<int64_t>(0, -dr), oh_hi = std::max(oh_lo, std::min(Ho, H - dr));
          for (int64_t f = 0; f < oh_lo * W; ++f) row[f] = 0.0f;
          for (int64_t f = oh_hi * W; f < L; ++f) row[f] = 0.0f;
          const int64_t f0 = std::max(oh_lo * W, -off), f1 = std::min(oh_hi * W, H * W - off);
          if (f1 > f0) copy_row(row + f0, xc + (f0 + off), f1 - f0);
          for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
            float* out = row + oh * Wo;
            for (int64_t ow = 0; ow < lo; ++ow) out[ow] = 0.0f;
            for (int64_t ow = hi; ow < Wo; ++ow) out[ow] = 0.0f;
          }
          continue;
        }
        for (int64_t oh = 0; oh < Ho; ++oh) {
          const int64_t ih = oh * stride - padding + ki;
          float* out = row + oh * Wo;
          if (ih < 0 || ih >= H) {
            for (int64_t ow = 0; ow < Wo; ++ow) out[ow] = 0.0f;
            continue;
          }
          // Zeros left and right of the input, the input's row in between (no per-element test;
          // plain loops, as rows are short and a memcpy call per row costs more than the copy).
          const float* xr = xc + ih * W;
          const int64_t shift = kj - padding;  // iw = ow*stride + shift, >= 0 for ow >= lo
          for (int64_t ow = 0; ow < lo; ++ow) out[ow] = 0.0f;
          if (stride == 1) {
            if (hi > lo) copy_row(out + lo, xr + (lo + shift), hi - lo);
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) out[ow] = xr[ow * stride + shift];
          }
          for (int64_t ow = hi; ow < Wo; ++ow) out[ow] = 0.0f;
        }
      }
    }
  }
}

void col2im(float* dx, const float* dcol, int64_t C, int64_t H, int64_t W, int64_t K,
            int64_t stride, int64_t padding, int64_t Ho, int64_t Wo) {
  const int64_t L = Ho * Wo;
  for (int64_t c = 0; c < C; ++c) {
    float* dxc = dx + c * H * W;
    for (int64_t ki = 0; ki < K; ++ki) {
      for (int64_t kj = 0; kj < K; ++kj) {
        const float* row = dcol + ((c * K + ki) * K + kj) * L;
        int64_t lo, hi;
        valid_columns(W, kj, stride, padding, Wo, lo, hi);
        if (stride == 1 && Ho == H && Wo == W && W >= 4) {
          // A "same" convolution: this row of dcol is the dx plane shifted by dr rows and dc
          // columns, added in one contiguous pass over the valid rows, with the columns that
          // wrapped around a row's edge masked to +0 (adding +0 leaves dx as it is: dx starts at
          // +0, and a sum that starts at +0 is never -0).
          const int64_t dr = ki - padding, dc = kj - padding, off = dr * W + dc;
          const int64_t oh_lo = std::max<int64_t>(0, -dr), oh_hi = std::max(oh_lo, std::min(Ho, H - dr));
          const int64_t f0 = std::max(oh_lo * W, -off), f1 = std::min(oh_hi * W, H * W - off);
          if (f1 > f0) add_row_masked(dxc + off, row, f0, f1, W, lo, hi);
          continue;
        }
        for (int64_t oh = 0; oh < Ho; ++oh) {
          const int64_t ih = oh * stride - padding + ki;
          if (ih < 0 || ih >= H) continue;
          const float* in = row + oh * Wo;
          float* dxr = dxc + ih * W;
          const int64_t shift = kj - padding;  // iw = ow*stride + shift, >= 0 for ow >= lo
          if (stride == 1) {
            if (hi > lo) add_row(dxr + (lo + shift), in + lo, hi - lo);
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dxr[ow * stride + shift] += in[ow];
          }
        }
      }
    }
  }
}

namespace {

// y[o, l] += bias[o] for one sample's (O, L) output.
void add_channel_bias(float* y, const float* bias, int64_t O, int64_t L) {
  for (int64_t o = 0; o < O; ++o) {
    const float b = bias[o];
    float* row = y + o * L;
    for (int64_t l = 0; l < L; ++l) row[l] += b;
  }
}

// dbias[o] += sum_l dy[o, l] for one sample's (O, L) output gradient.
void add_bias_grad(float* dbias, const float* dyn, int64_t O, int64_t L) {
  for (int64_t o = 0; o < O; ++o) {
    const float* row = dyn + o * L;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;  // four partial sums: vectorisable
    int64_t l = 0;
    for (; l + 4 <= L; l += 4) {
      s0 += row[l];
      s1 += row[l + 1];
      s2 += row[l + 2];
      s3 += row[l + 3];
    }
    for (; l < L; ++l) s0 += row[l];
    dbias[o] += (s0 + s1) + (s2 + s3);
  }
}

}  // namespace

// ---- the direct path: stride-1 convolutions without columns ---------------------------------
//
// With stride 1, row k = (c, ki, kj) of a sample's column matrix is its input plane c, zero-padded
// by `padding` and shifted by (ki, kj): col[k, oh*Wo + ow] = xp[c, oh + ki, ow + kj], xp the
// padded sample (Hp = H + 2*padding rows of Wp = W + 2*padding). The forward and the weight
// gradient read those shifted rows straight from one padded copy of the sample instead of
// unfolding it K*K times (im2col) and packing the columns for the GEMM. Both kernels are the
// GEMM's micro-kernel (4 rows x 8 columns, as 4-float vectors) run over those rows in its exact
// order of operations: each output is summed in ascending order from zero, the padding's zeros
// included, in blocks of kGemmDepthBlock terms added one after another into the output; so the
// results are bit for bit those of im2col + gemm. (dx stays the GEMM and col2im: a direct dx must
// round each tap's sum over the output channels on its own, and measured no faster.)

namespace {

using simd::load4;
using simd::splat;
using simd::store4;
using simd::v4;

constexpr int64_t KB = kGemmDepthBlock;

// The direct path's scratch (a padded sample, packed weights and gradients, offset tables),
// reused between calls (grown, never shrunk). Not thread-safe, as gemm.cpp's panels.
struct DirectScratch {
  std::vector<float> xp, wp, dyt, ct;
  std::vector<int64_t> koff, pos;
};
DirectScratch& direct_scratch() {
  static DirectScratch s;
  return s;
}

template <typename T>
T* grown(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

// Stride 1, except the 1x1 / padding 0 case (whose columns are the sample itself).
bool direct_path(int64_t K, int64_t stride, int64_t padding) {
  return stride == 1 && !(K == 1 && padding == 0);
}

// xp (C, Hp, Wp) = x (C, H, W) with P zeros around each plane, then 8 zeros (for the tiles that
// read past the last row's end).
void pad_sample(float* xp, const float* x, int64_t C, int64_t H, int64_t W, int64_t P) {
  const int64_t Hp = H + 2 * P, Wp = W + 2 * P;
  std::memset(xp, 0, static_cast<size_t>(C * Hp * Wp + 8) * sizeof(float));
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t i = 0; i < H; ++i) copy_row(xp + (c * Hp + i + P) * Wp + P, x + (c * H + i) * W, W);
  }
}

// koff[k] for k = (c*K + ki)*K + kj: where row k's shifted plane starts in the padded sample.
void row_offsets(int64_t* koff, int64_t C, int64_t K, int64_t Hp, int64_t Wp) {
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t ki = 0; ki < K; ++ki) {
      for (int64_t kj = 0; kj < K; ++kj) koff[(c * K + ki) * K + kj] = c * Hp * Wp + ki * Wp + kj;
    }
  }
}

// A tile of 4 rows x 4*NV columns of sums, t[r][v] holding columns 4v..4v+3 of row r, into C (row
// stride ldc): its first m rows and n columns; C = t, or C = t + C (the GEMM's order) when
// accumulating.
template <int NV>
inline void emit_tile(float* C, int64_t ldc, int64_t m, int64_t n, bool accumulate, const v4 (&t)[4][NV]) {
  if (n == 4 * NV) {
    for (int64_t r = 0; r < m; ++r) {
      float* row = C + r * ldc;
      for (int v = 0; v < NV; ++v) store4(row + 4 * v, accumulate ? t[r][v] + load4(row + 4 * v) : t[r][v]);
    }
    return;
  }
  float buf[4 * NV];
  for (int64_t r = 0; r < m; ++r) {
    for (int v = 0; v < NV; ++v) store4(buf + 4 * v, t[r][v]);
    float* row = C + r * ldc;
    for (int64_t j = 0; j < n; ++j) row[j] = accumulate ? buf[j] + row[j] : buf[j];
  }
}

// One block of a forward tile: t[r][v] = sum over k in [k0, k1) of a[k][r] * b[koff[k] + 4v ..],
// from zero. a: 4 weights per k (a panel of the packed weight), b: the tile's first input.
template <int NV>
inline void forward_block(v4 (&t)[4][NV], const float* a, const float* b, const int64_t* koff,
                          int64_t k0, int64_t k1) {
  v4 t00 = splat(0), t01 = splat(0), t10 = splat(0), t11 = splat(0);
  v4 t20 = splat(0), t21 = splat(0), t30 = splat(0), t31 = splat(0);
  for (int64_t k = k0; k < k1; ++k) {
    const float* bk = b + koff[k];
    const v4 b0 = load4(bk), b1 = NV == 2 ? load4(bk + 4) : splat(0);
    const float* ak = a + k * 4;
    const v4 a0 = splat(ak[0]), a1 = splat(ak[1]), a2 = splat(ak[2]), a3 = splat(ak[3]);
    t00 += a0 * b0;
    t10 += a1 * b0;
    t20 += a2 * b0;
    t30 += a3 * b0;
    if (NV == 2) {
      t01 += a0 * b1;
      t11 += a1 * b1;
      t21 += a2 * b1;
      t31 += a3 * b1;
    }
  }
  t[0][0] = t00;
  t[1][0] = t10;
  t[2][0] = t20;
  t[3][0] = t30;
  if constexpr (NV == 2) {
    t[0][1] = t01;
    t[1][1] = t11;
    t[2][1] = t21;
    t[3][1] = t31;
  }
}

// One sample's output y (O, Ho*Wo) = Wm col, col's rows read from the padded sample xp (row k's
// plane at koff[k]). wp: the weight as ceil(O/4) panels of F x 4 (k-major, zero rows past O).
// Tiles of 4 output channels x 8 outputs of a row (x 4 for a row's last 1-4); lanes past the row's
// end read the padding and are not stored.
void direct_forward_sample(float* y, const float* xp, const float* wp, const int64_t* koff,
                           int64_t F, int64_t O, int64_t Ho, int64_t Wo, int64_t Wp) {
  const int64_t L = Ho * Wo;
  for (int64_t o0 = 0; o0 < O; o0 += 4) {
    const int64_t m = std::min<int64_t>(4, O - o0);
    const float* panel = wp + (o0 / 4) * F * 4;
    for (int64_t oh = 0; oh < Ho; ++oh) {
      for (int64_t ow0 = 0; ow0 < Wo; ow0 += 8) {
        const int64_t n = std::min<int64_t>(8, Wo - ow0);
        const float* b = xp + oh * Wp + ow0;
        float* yt = y + o0 * L + oh * Wo + ow0;
        for (int64_t p0 = 0; p0 < F; p0 += KB) {
          const int64_t p1 = std::min(F, p0 + KB);
          if (n > 4) {
            v4 t[4][2];
            forward_block(t, panel, b, koff, p0, p1);
            emit_tile(yt, L, m, n, p0 > 0, t);
          } else {
            v4 t[4][1];
            forward_block(t, panel, b, koff, p0, p1);
            emit_tile(yt, L, m, n, p0 > 0, t);
          }
        }
      }
    }
  }
}

// One sample's part of ct (F, O) = dWm^T: ct (+)= col dY^T, col's rows read from the padded sample
// xp (row f at koff[f], output l at pos[l]); dyt: dY as ceil(O/8) panels of L x 8 (l-major, zero
// columns past O). `first`: the first sample, whose first block sets ct.
void direct_dweight_sample(float* ct, const float* xp, const float* dyt, const int64_t* koff,
                           const int64_t* pos, int64_t F, int64_t O, int64_t L, bool first) {
  for (int64_t f0 = 0; f0 < F; f0 += 4) {
    const int64_t m = std::min<int64_t>(4, F - f0);
    int64_t off[4];
    for (int64_t r = 0; r < 4; ++r) off[r] = koff[f0 + std::min(r, m - 1)];  // rows past F: not stored
    for (int64_t o0 = 0; o0 < O; o0 += 8) {
      const float* panel = dyt + (o0 / 8) * L * 8;
      for (int64_t p0 = 0; p0 < L; p0 += KB) {
        const int64_t p1 = std::min(L, p0 + KB);
        v4 t[4][2];
        for (int r = 0; r < 4; ++r) t[r][0] = t[r][1] = splat(0);
        for (int64_t l = p0; l < p1; ++l) {
          const v4 b0 = load4(panel + l * 8), b1 = load4(panel + l * 8 + 4);
          const float* x = xp + pos[l];
          for (int r = 0; r < 4; ++r) {
            const v4 ar = splat(x[off[r]]);
            t[r][0] += ar * b0;
            t[r][1] += ar * b1;
          }
        }
        emit_tile(ct + f0 * O + o0, O, m, std::min<int64_t>(8, O - o0), !(first && p0 == 0), t);
      }
    }
  }
}

// conv2d_forward on the direct path.
void direct_forward(float* y, const float* x, const float* weight, const float* bias, int64_t N,
                    int64_t C, int64_t H, int64_t W, int64_t O, int64_t K, int64_t P) {
  const int64_t Hp = H + 2 * P, Wp = W + 2 * P, Ho = Hp - K + 1, Wo = Wp - K + 1;
  const int64_t L = Ho * Wo, F = C * K * K;
  DirectScratch& s = direct_scratch();
  float* xp = grown(s.xp, C * Hp * Wp + 8);
  float* wp = grown(s.wp, (O + 3) / 4 * 4 * F);
  int64_t* koff = grown(s.koff, F);
  for (int64_t o0 = 0; o0 < O; o0 += 4) {  // wp[o0/4][k][r] = weight[o0 + r, k], zero past O
    float* panel = wp + (o0 / 4) * F * 4;
    for (int64_t k = 0; k < F; ++k) {
      for (int64_t r = 0; r < 4; ++r) panel[k * 4 + r] = o0 + r < O ? weight[(o0 + r) * F + k] : 0.0f;
    }
  }
  row_offsets(koff, C, K, Hp, Wp);
  for (int64_t n = 0; n < N; ++n) {
    pad_sample(xp, x + n * C * H * W, C, H, W, P);
    float* yn = y + n * O * L;
    direct_forward_sample(yn, xp, wp, koff, F, O, Ho, Wo, Wp);
    if (bias != nullptr) add_channel_bias(yn, bias, O, L);
  }
}

// conv2d_backward's dweight and dbias on the direct path.
void direct_dweight(float* dweight, float* dbias, const float* dy, const float* x, int64_t N,
                    int64_t C, int64_t H, int64_t W, int64_t O, int64_t K, int64_t P) {
  const int64_t Hp = H + 2 * P, Wp = W + 2 * P, Ho = Hp - K + 1, Wo = Wp - K + 1;
  const int64_t L = Ho * Wo, F = C * K * K;
  DirectScratch& s = direct_scratch();
  float* xp = grown(s.xp, C * Hp * Wp + 8);
  float* dyt = grown(s.dyt, (O + 7) / 8 * 8 * L);
  float* ct = grown(s.ct, F * O);
  int64_t* koff = grown(s.koff, F);
  int64_t* pos = grown(s.pos, L);
  row_offsets(koff, C, K, Hp, Wp);
  for (int64_t oh = 0; oh < Ho; ++oh) {
    for (int64_t ow = 0; ow < Wo; ++ow) pos[oh * Wo + ow] = oh * Wp + ow;
  }
  if (dbias != nullptr) std::memset(dbias, 0, static_cast<size_t>(O) * sizeof(float));
  for (int64_t n = 0; n < N; ++n) {
    const float* dyn = dy + n * O * L;
    pad_sample(xp, x + n * C * H * W, C, H, W, P);
    for (int64_t o0 = 0; o0 < O; o0 += 8) {  // dyt[o0/8][l][j] = dy[o0 + j, l], zero past O
      float* panel = dyt + (o0 / 8) * L * 8;
      for (int64_t l = 0; l < L; ++l) {
        for (int64_t j = 0; j < 8; ++j) panel[l * 8 + j] = o0 + j < O ? dyn[(o0 + j) * L + l] : 0.0f;
      }
    }
    direct_dweight_sample(ct, xp, dyt, koff, pos, F, O, L, n == 0);
    if (dbias != nullptr) add_bias_grad(dbias, dyn, O, L);
  }
  for (int64_t o = 0; o < O; ++o) {
    for (int64_t f = 0; f < F; ++f) dweight[o * F + f] = ct[f * O + o];
  }
}

}  // namespace

void conv2d_forward(float* y, float* col, const float* x, const float* weight, const float* bias,
                    int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t K,
                    int64_t stride, int64_t padding) {
  if (direct_path(K, stride, padding)) return direct_forward(y, x, weight, bias, N, C, H, W, O, K, padding);
  const int64_t Ho = conv_out_size(H, K, stride, padding), Wo = conv_out_size(W, K, stride, padding);
  const int64_t L = Ho * Wo, CKK = C * K * K;
  const bool pointwise = K == 1 && stride == 1 && padding == 0;
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x + n * C * H * W;
    if (!pointwise) im2col(col, xn, C, H, W, K, stride, padding, Ho, Wo);
    float* yn = y + n * O * L;
    gemm(false, Trans::N, Trans::N, O, L, CKK, weight, CKK, pointwise ? xn : col, L, yn, L);  // Wm Col
    if (bias != nullptr) add_channel_bias(yn, bias, O, L);
  }
}

namespace {

// One sample's dx (C,H,W) = col2im(Wm^T dY), through dcol (CKK, L); straight into dx for 1x1.
void conv2d_dx_sample(float* dxn, float* dcol, const float* dyn, const float* weight, int64_t C,
                      int64_t H, int64_t W, int64_t O, int64_t K, int64_t stride, int64_t padding,
                      int64_t Ho, int64_t Wo) {
  const int64_t L = Ho * Wo, CKK = C * K * K;
  if (K == 1 && stride == 1 && padding == 0) {
    gemm(false, Trans::T, Trans::N, CKK, L, O, weight, CKK, dyn, L, dxn, L);  // Wm^T dY
    return;
  }
  gemm(false, Trans::T, Trans::N, CKK, L, O, weight, CKK, dyn, L, dcol, L);
  std::memset(dxn, 0, static_cast<size_t>(C * H * W) * sizeof(float));
  col2im(dxn, dcol, C, H, W, K, stride, padding, Ho, Wo);
}

}  // namespace

void conv2d_backward(float* dx, float* dweight, float* dbias, float* col, float* dcol,
                     const float* dy, const float* x, const float* weight, int64_t N, int64_t C,
                     int64_t H, int64_t W, int64_t O, int64_t K, int64_t stride, int64_t padding) {
  const int64_t Ho = conv_out_size(H, K, stride, padding), Wo = conv_out_size(W, K, stride, padding);
  const int64_t L = Ho * Wo, CKK = C * K * K;
  const bool direct = direct_path(K, stride, padding);
  const bool pointwise = K == 1 && stride == 1 && padding == 0;
  if (direct) direct_dweight(dweight, dbias, dy, x, N, C, H, W, O, K, padding);
  if (dbias != nullptr && !direct) std::memset(dbias, 0, static_cast<size_t>(O) * sizeof(float));
  for (int64_t n = 0; n < N; ++n) {
    const float* dyn = dy + n * O * L;
    if (!direct) {
      const float* xn = x + n * C * H * W;
      if (!pointwise) im2col(col, xn, C, H, W, K, stride, padding, Ho, Wo);
      const float* coln = pointwise ? xn : col;
      gemm(n > 0, Trans::N, Trans::T, O, CKK, L, dyn, L, coln, L, dweight, CKK);  // dWm += dY Col^T
      if (dbias != nullptr) add_bias_grad(dbias, dyn, O, L);
    }
    if (dx != nullptr) conv2d_dx_sample(dx + n * C * H * W, dcol, dyn, weight, C, H, W, O, K, stride, padding, Ho, Wo);
  }
}

void cosine_conv2d_forward(float* y, float* col, float* colnorm, const float* x, const float* u,
                           const float* bias, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                           int64_t K, int64_t stride, int64_t padding, bool centered) {
  const int64_t Ho = conv_out_size(H, K, stride, padding), Wo = conv_out_size(W, K, stride, padding);
  const int64_t L = Ho * Wo, CKK = C * K * K;
  const bool direct = K == 1 && stride == 1 && padding == 0;
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x + n * C * H * W;
    if (!direct) im2col(col, xn, C, H, W, K, stride, padding, Ho, Wo);
    cosine_normalize(col, colnorm, direct ? xn : col, L, CKK, 1, L, centered);  // columns
    float* yn = y + n * O * L;
    gemm(false, Trans::N, Trans::N, O, L, CKK, u, CKK, col, L, yn, L);  // U Z
    if (bias != nullptr) add_channel_bias(yn, bias, O, L);
  }
}

void cosine_conv2d_backward(float* dx, float* dweight, float* dbias, float* col, float* dcol,
                            float* colnorm, const float* dy, const float* x, const float* u,
                            const float* unorm, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t O, int64_t K, int64_t stride, int64_t padding, bool centered) {
  const int64_t Ho = conv_out_size(H, K, stride, padding), Wo = conv_out_size(W, K, stride, padding);
  const int64_t L = Ho * Wo, CKK = C * K * K;
  const bool direct = K == 1 && stride == 1 && padding == 0;
  if (dbias != nullptr) std::memset(dbias, 0, static_cast<size_t>(O) * sizeof(float));
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x + n * C * H * W;
    const float* dyn = dy + n * O * L;
    if (!direct) im2col(col, xn, C, H, W, K, stride, padding, Ho, Wo);
    cosine_normalize(col, colnorm, direct ? xn : col, L, CKK, 1, L, centered);
    gemm(n > 0, Trans::N, Trans::T, O, CKK, L, dyn, L, col, L, dweight, CKK);  // dU += dY Z^T
    if (dbias != nullptr) {
      for (int64_t o = 0; o < O; ++o) {
        const float* row = dyn + o * L;
        double s = 0;
        for (int64_t l = 0; l < L; ++l) s += row[l];
        dbias[o] += static_cast<float>(s);
      }
    }
    if (dx == nullptr) continue;
    gemm(false, Trans::T, Trans::N, CKK, L, O, u, CKK, dyn, L, dcol, L);  // dZ = U^T dY
    cosine_normalize_backward(dcol, dcol, col, colnorm, L, CKK, 1, L, centered);
    float* dxn = dx + n * C * H * W;
    if (direct) {
      std::memcpy(dxn, dcol, static_cast<size_t>(CKK * L) * sizeof(float));
    } else {
      std::memset(dxn, 0, static_cast<size_t>(C * H * W) * sizeof(float));
      col2im(dxn, dcol, C, H, W, K, stride, padding, Ho, Wo);
    }
  }
  cosine_normalize_backward(dweight, dweight, u, unorm, O, CKK, CKK, 1, centered);
}

namespace {

void check_conv_sizes(int64_t in_ch, int64_t out_ch, int64_t kernel, int64_t stride,
                      int64_t padding) {
  if (in_ch < 1) fail("conv2d: in_channels must be a positive integer, got ", in_ch);
  if (out_ch < 1) fail("conv2d: out_channels must be a positive integer, got ", out_ch);
  if (kernel < 1) fail("conv2d: kernel must be a positive integer, got ", kernel);
  if (stride < 1) fail("conv2d: stride must be a positive integer, got ", stride);
  if (padding < 0) fail("conv2d: padding must be >= 0, got ", padding);
  // Bound each factor first so that the products below cannot overflow.
  if (kernel > kMaxElements || in_ch > kMaxElements || out_ch > kMaxElements ||
      padding > kMaxElements || stride > kMaxElements ||
      static_cast<double>(out_ch) * static_cast<double>(in_ch) * static_cast<double>(kernel) *
              static_cast<double>(kernel) > static_cast<double>(kMaxElements)) {
    fail("conv2d: weight of ", out_ch, "x", in_ch, "x", kernel, "x", kernel, " has more than ",
         kMaxElements, " elements");
  }
}

}  // namespace

Conv2d::Conv2d(int64_t in_ch, int64_t out_ch, int64_t kernel, int64_t stride, int64_t padding,
               Rng& rng, bool bias, WeightMode mode)
    : in_(in_ch), out_(out_ch), k_(kernel), stride_(stride), pad_(padding), has_bias_(bias),
      mode_(mode) {
  check_conv_sizes(in_ch, out_ch, kernel, stride, padding);
  const int64_t fan_in = in_ch * kernel * kernel;
  const size_t n = static_cast<size_t>(out_ch * fan_in);
  weight_ = Param{"weight", std::vector<float>(n), std::vector<float>(n, 0.0f), true};
  init_uniform_fan_in(weight_.value.data(), out_ch * fan_in, fan_in, rng);
  if (bias) {
    const size_t m = static_cast<size_t>(out_ch);
    bias_ = Param{"bias", std::vector<float>(m), std::vector<float>(m, 0.0f), false};
    init_uniform_fan_in(bias_.value.data(), out_ch, fan_in, rng);
  }
  if (mode == WeightMode::weight_norm) {
    weight_.name = "weight_v";
    const size_t m = static_cast<size_t>(out_ch);
    g_ = Param{"weight_g", std::vector<float>(m), std::vector<float>(m, 0.0f), false};
    for (int64_t o = 0; o < out_ch; ++o) {
      g_.value[static_cast<size_t>(o)] = l2_norm(weight_.value.data() + o * fan_in, fan_in);
    }
  }
}

std::string Conv2d::kind() const {
  return mode_ == WeightMode::plain ? "conv2d" : std::string("conv2d_") + weight_mode_name(mode_);
}

std::vector<float> Conv2d::effective_weight() const {
  if (mode_ == WeightMode::plain) return weight_.value;
  const int64_t F = in_ * k_ * k_;
  std::vector<float> w(weight_.value.size()), norms(static_cast<size_t>(out_));
  if (mode_ == WeightMode::weight_norm) {
    weight_norm_forward(w.data(), norms.data(), g_.value.data(), weight_.value.data(), out_, F);
  } else {
    cosine_normalize(w.data(), norms.data(), weight_.value.data(), out_, F, F, 1,
                     mode_ == WeightMode::centered_cosine);
  }
  return w;
}

Conv2d::Conv2d(int64_t in_ch, int64_t out_ch, int64_t kernel, int64_t stride, int64_t padding,
               std::vector<float> weight, std::vector<float> bias)
    : in_(in_ch), out_(out_ch), k_(kernel), stride_(stride), pad_(padding),
      has_bias_(!bias.empty()) {
  check_conv_sizes(in_ch, out_ch, kernel, stride, padding);
  const int64_t n = out_ch * in_ch * kernel * kernel;
  if (weight.size() != static_cast<size_t>(n)) {
    fail("conv2d: weight of ", out_ch, "x", in_ch, "x", kernel, "x", kernel, " needs ", n,
         " values, got ", weight.size());
  }
  if (has_bias_ && bias.size() != static_cast<size_t>(out_ch)) {
    fail("conv2d: bias needs ", out_ch, " values (or none), got ", bias.size());
  }
  const size_t m = bias.size();
  weight_ = Param{"weight", std::move(weight), std::vector<float>(static_cast<size_t>(n), 0.0f), true};
  if (has_bias_) bias_ = Param{"bias", std::move(bias), std::vector<float>(m, 0.0f), false};
}

Shape Conv2d::output_shape(const Shape& input) const {
  if (input.size() != 4) {
    fail("conv2d: input shape ", to_string(input), " must have 4 dims [N,C,H,W]");
  }
  if (input[1] != in_) {
    fail("conv2d: input shape ", to_string(input), " has ", input[1],
         " channels (dim 1), layer takes ", in_);
  }
  for (int64_t d : input) {
    if (d < 1) fail("conv2d: input shape ", to_string(input), " has an empty dim");
  }
  const int64_t H = input[2], W = input[3];
  if (H + 2 * pad_ < k_ || W + 2 * pad_ < k_) {
    fail("conv2d: kernel ", k_, " is larger than the padded input ", H + 2 * pad_, "x",
         W + 2 * pad_, " (input shape ", to_string(input), ", padding ", pad_, ")");
  }
  const Shape out = {input[0], out_, conv_out_size(H, k_, stride_, pad_),
                     conv_out_size(W, k_, stride_, pad_)};
  // The output and the column scratch (C*K*K x Ho*Wo) must both stay within kMaxElements.
  const double plane = static_cast<double>(out[2]) * static_cast<double>(out[3]);
  const double cols = static_cast<double>(in_ * k_ * k_) * plane;
  const double outs = static_cast<double>(out[0]) * static_cast<double>(out[1]) * plane;
  if (cols > static_cast<double>(kMaxElements) || outs > static_cast<double>(kMaxElements)) {
    fail("conv2d: input shape ", to_string(input), " needs more than ", kMaxElements,
         " elements for its output or its columns");
  }
  return out;
}

void Conv2d::forward(const Tensor& x, Tensor& y, bool training) {
  y.resize(output_shape(x.shape));
  if (training) x_ = x;
  const int64_t F = in_ * k_ * k_, L = y.shape[2] * y.shape[3];
  if (!pointwise() || is_cosine(mode_)) col_.resize(static_cast<size_t>(F * L));
  const float* bias = has_bias_ ? bias_.value.data() : nullptr;
  const float* weight = weight_.value.data();
  if (mode_ != WeightMode::plain) {
    w_.resize(weight_.value.size());
    wnorm_.resize(static_cast<size_t>(out_));
    if (mode_ == WeightMode::weight_norm) {
      weight_norm_forward(w_.data(), wnorm_.data(), g_.value.data(), weight, out_, F);
    } else {
      cosine_normalize(w_.data(), wnorm_.data(), weight, out_, F, F, 1,
                       mode_ == WeightMode::centered_cosine);
    }
    weight = w_.data();
  }
  if (is_cosine(mode_)) {
    colnorm_.resize(static_cast<size_t>(L));
    cosine_conv2d_forward(y.ptr(), col_.data(), colnorm_.data(), x.ptr(), weight, bias, x.shape[0],
                          in_, x.shape[2], x.shape[3], out_, k_, stride_, pad_,
                          mode_ == WeightMode::centered_cosine);
    return;
  }
  conv2d_forward(y.ptr(), col_.data(), x.ptr(), weight, bias, x.shape[0], in_, x.shape[2],
                 x.shape[3], out_, k_, stride_, pad_);
}

void Conv2d::backward(const Tensor& dy, Tensor& dx) {
  if (x_.shape.empty()) fail("conv2d: backward needs a training-mode forward first");
  const Shape out = output_shape(x_.shape);
  if (dy.shape != out) {
    fail("conv2d: dy shape ", to_string(dy.shape), " does not match the output shape ",
         to_string(out), " of the last training forward");
  }
  dx.resize(x_.shape);
  const int64_t F = in_ * k_ * k_, L = out[2] * out[3];
  if (!pointwise() || is_cosine(mode_)) {
    col_.resize(static_cast<size_t>(F * L));
    dcol_.resize(static_cast<size_t>(F * L));
  }
  float* dbias = has_bias_ ? bias_.grad.data() : nullptr;
  if (mode_ == WeightMode::plain) {
    conv2d_backward(dx.ptr(), weight_.grad.data(), dbias, col_.data(), dcol_.data(), dy.ptr(),
                    x_.ptr(), weight_.value.data(), x_.shape[0], in_, x_.shape[2], x_.shape[3],
                    out_, k_, stride_, pad_);
    return;
  }
  // The effective (or normalized) weight is recomputed from the current parameters.
  w_.resize(weight_.value.size());
  wnorm_.resize(static_cast<size_t>(out_));
  if (mode_ == WeightMode::weight_norm) {
    weight_norm_forward(w_.data(), wnorm_.data(), g_.value.data(), weight_.value.data(), out_, F);
    dw_.resize(weight_.value.size());
    conv2d_backward(dx.ptr(), dw_.data(), dbias, col_.data(), dcol_.data(), dy.ptr(), x_.ptr(),
                    w_.data(), x_.shape[0], in_, x_.shape[2], x_.shape[3], out_, k_, stride_, pad_);
    weight_norm_backward(g_.grad.data(), weight_.grad.data(), dw_.data(), g_.value.data(),
                         weight_.value.data(), wnorm_.data(), out_, F);
    return;
  }
  const bool centered = mode_ == WeightMode::centered_cosine;
  cosine_normalize(w_.data(), wnorm_.data(), weight_.value.data(), out_, F, F, 1, centered);
  colnorm_.resize(static_cast<size_t>(L));
  cosine_conv2d_backward(dx.ptr(), weight_.grad.data(), dbias, col_.data(), dcol_.data(),
                         colnorm_.data(), dy.ptr(), x_.ptr(), w_.data(), wnorm_.data(), x_.shape[0],
                         in_, x_.shape[2], x_.shape[3], out_, k_, stride_, pad_, centered);
}

std::vector<Param*> Conv2d::parameters() {
  std::vector<Param*> out;
  if (mode_ == WeightMode::weight_norm) out.push_back(&g_);
  out.push_back(&weight_);
  if (has_bias_) out.push_back(&bias_);
  return out;
}

}  // namespace normlab
