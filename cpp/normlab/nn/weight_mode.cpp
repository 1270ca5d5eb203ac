#include "normlab/nn/weight_mode.h"

#include <algorithm>
#include <cmath>

#include "normlab/core/error.h"

namespace normlab {

const char* weight_mode_name(WeightMode mode) {
  switch (mode) {
    case WeightMode::plain: return "plain";
    case WeightMode::weight_norm: return "weightnorm";
    case WeightMode::cosine: return "cosine";
    case WeightMode::centered_cosine: return "centered_cosine";
  }
  return "plain";
}

WeightMode weight_mode_from_name(const std::string& name, const std::string& who) {
  for (WeightMode m : {WeightMode::plain, WeightMode::weight_norm, WeightMode::cosine,
                       WeightMode::centered_cosine}) {
    if (name == weight_mode_name(m)) return m;
  }
  fail(who, ": weight mode must be one of plain, weightnorm, cosine, centered_cosine, got '", name,
       "'");
}

float l2_norm(const float* v, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(v[i]) * v[i];
  return static_cast<float>(std::sqrt(s));
}

void weight_norm_forward(float* w, float* norms, const float* g, const float* v, int64_t O,
                         int64_t F) {
  for (int64_t o = 0; o < O; ++o) {
    const float* vo = v + o * F;
    float* wo = w + o * F;
    norms[o] = l2_norm(vo, F);
    const float scale = g[o] / norms[o];
    for (int64_t i = 0; i < F; ++i) wo[i] = vo[i] * scale;
  }
}

void weight_norm_backward(float* dg, float* dv, const float* dw, const float* g, const float* v,
                          const float* norms, int64_t O, int64_t F) {
  for (int64_t o = 0; o < O; ++o) {
    const float* vo = v + o * F;
    const float* dwo = dw + o * F;
    float* dvo = dv + o * F;
    double dot = 0;
    for (int64_t i = 0; i < F; ++i) dot += static_cast<double>(dwo[i]) * vo[i];
    const double n = norms[o];
    const double dgo = dot / n;
    dg[o] = static_cast<float>(dgo);
    const float scale = static_cast<float>(g[o] / n), proj = static_cast<float>(dgo / n);
    for (int64_t i = 0; i < F; ++i) dvo[i] = scale * (dwo[i] - proj * vo[i]);
  }
}

void cosine_normalize(float* z, float* b, const float* x, int64_t R, int64_t F, int64_t rs,
                      int64_t es, bool centered) {
  for (int64_t r = 0; r < R; ++r) {
    const float* xr = x + r * rs;
    float* zr = z + r * rs;
    float m = 0;
    if (centered) {
      double s = 0;
      for (int64_t i = 0; i < F; ++i) s += xr[i * es];
      m = static_cast<float>(s / static_cast<double>(F));
    }
    double ss = 0;
    for (int64_t i = 0; i < F; ++i) {
      const float d = xr[i * es] - m;
      ss += static_cast<double>(d) * d;
    }
    const float br = std::max(static_cast<float>(std::sqrt(ss)), kCosineEps);
    b[r] = br;
    for (int64_t i = 0; i < F; ++i) zr[i * es] = (xr[i * es] - m) / br;
  }
}

void cosine_normalize_backward(float* dx, const float* dz, const float* z, const float* b,
                               int64_t R, int64_t F, int64_t rs, int64_t es, bool centered) {
  for (int64_t r = 0; r < R; ++r) {
    const float* dzr = dz + r * rs;
    const float* zr = z + r * rs;
    float* dxr = dx + r * rs;
    double dot = 0;
    for (int64_t i = 0; i < F; ++i) dot += static_cast<double>(dzr[i * es]) * zr[i * es];
    const float p = static_cast<float>(dot), inv = 1.0f / b[r];
    double s = 0;
    for (int64_t i = 0; i < F; ++i) {
      const float d = (dzr[i * es] - p * zr[i * es]) * inv;
      dxr[i * es] = d;
      s += d;
    }
    if (!centered) continue;
    const float m = static_cast<float>(s / static_cast<double>(F));
    for (int64_t i = 0; i < F; ++i) dxr[i * es] -= m;
  }
}

}  // namespace normlab
