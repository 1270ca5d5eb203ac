// How a Linear or Conv2d layer uses its weight: plainly (y = W x + b), through Weight Normalization
// (W = g * V/||V|| per output unit), or as Cosine Normalization (y = cos(w, x), optionally with
// both vectors centred first: a Pearson correlation). The per-row kernels both layers share live
// here; the layers apply them to their weight rows (one per output unit) and, for cosine, to their
// input vectors (a Linear's input rows, a Conv2d's im2col columns).
#pragma once

#include <cstdint>
#include <string>

namespace normlab {

enum class WeightMode { plain, weight_norm, cosine, centered_cosine };

// "plain", "weightnorm", "cosine", "centered_cosine".
const char* weight_mode_name(WeightMode mode);
// The inverse of weight_mode_name; throws Error naming `who`, the field and the allowed values.
WeightMode weight_mode_from_name(const std::string& name, const std::string& who);

inline bool is_cosine(WeightMode mode) {
  return mode == WeightMode::cosine || mode == WeightMode::centered_cosine;
}

// The lower clamp of both norms of cosine normalization (torch.nn.functional.cosine_similarity's
// default eps).
constexpr float kCosineEps = 1e-8f;

// ---- Weight Normalization ---------------------------------------------------------------------

// ||v||_2 of n floats, summed in double and rounded to float (the norm weight_norm_forward divides
// by; a layer initialises g with it so that g/||v|| is exactly 1 at first).
float l2_norm(const float* v, int64_t n);

// w[o, :] = v[o, :] * (g[o] / ||v[o, :]||) for each of O rows of F values; norms[o] = ||v[o, :]||.
// No eps: a zero row gives non-finite weights, as in PyTorch.
// reference: Salimans & Kingma 2016, "Weight Normalization" (arXiv 1602.07868), eq. 2;
// torch.nn.utils.weight_norm(module, dim=0) (torch._weight_norm: v * (g / norm_except_dim(v))).
void weight_norm_forward(float* w, float* norms,          // (O,F), (O)
                         const float* g, const float* v,  // (O), (O,F)
                         int64_t O, int64_t F);

// With w = g v/||v|| per row and dw = dL/dw (the paper's eq. 3):
//   dg = (dw . v) / ||v||
//   dv = (g / ||v||) (dw - dg v / ||v||)
// dg and dv are overwritten.
void weight_norm_backward(float* dg, float* dv,                   // (O), (O,F)
                          const float* dw,                        // (O,F)
                          const float* g, const float* v,         // (O), (O,F)
                          const float* norms,                     // (O) from the forward
                          int64_t O, int64_t F);

// ---- Cosine Normalization ---------------------------------------------------------------------

// R vectors of F values, element i of vector r at x[r*rs + i*es] (rows: rs = F, es = 1; columns of
// an (F, R) matrix: rs = 1, es = R). For each vector, with m = mean(x_r) when centred, else 0:
//   b_r = max(||x_r - m||, kCosineEps),  z_r = (x_r - m) / b_r
// z is laid out like x and may alias it. The cosine of two vectors is then z_r . z'_s, exactly
// torch.nn.functional.cosine_similarity's sum((x1 / max(||x1||, eps)) * (x2 / max(||x2||, eps))).
// reference: Luo et al. 2017, "Cosine Normalization" (arXiv 1702.05870), eq. 3 (cosine) and the
// centred variant (Pearson correlation), section 3; torch 1.13 aten cosine_similarity.
void cosine_normalize(float* z, float* b,        // like x, (R)
                      const float* x,            // R vectors of F
                      int64_t R, int64_t F, int64_t rs, int64_t es, bool centered);

// The gradient through cosine_normalize given dz = dL/dz. With z = (x - m)/b, b = max(||x - m||, eps):
//   d(x - m) = (dz - (dz . z) z) / b
//   dx       = d(x - m) - mean(d(x - m))    (centred; the mean's own gradient)
// This is PyTorch 1.13's autograd result also when the norm was clamped: aten clamps the computed
// norm in place under no_grad, so the norm's backward still runs, with the clamped value, and the
// projection term uses z = (x - m)/eps (zero for a zero vector, where dx = dz/eps).
// dx is laid out like x and may alias dz.
void cosine_normalize_backward(float* dx,                         // like x
                               const float* dz, const float* z,   // like x, like x
                               const float* b,                    // (R)
                               int64_t R, int64_t F, int64_t rs, int64_t es, bool centered);

}  // namespace normlab
