// The one reduction every normalization layer shares: mean and biased variance over the axes that
// a method normalizes, with the input viewed as (A, B, I) row-major and one statistic per b.
//   BatchNorm, Batch Renorm:  A = N,  B = C,        I = H*W   (per channel over N and space)
//   LayerNorm:                A = 1,  B = outer,    I = prod(normalizedShape)
//   GroupNorm:                A = 1,  B = N*G,      I = (C/G)*H*W
//   InstanceNorm:             A = 1,  B = N*C,      I = H*W
// Two passes with double accumulators (mean first, then squared deviations): inputs with a large
// mean and a small spread (mean 1000, std 1) keep full float32 precision, which E[x^2]-E[x]^2 does not.
#pragma once

#include <cstdint>

namespace normlab {

// mean[b], var[b] (biased: divided by A*I) of x[a, b, i] over a and i.
void moments(double* mean, double* var,      // (B), (B)
             const float* x,                  // (A, B, I)
             int64_t A, int64_t B, int64_t I);

}  // namespace normlab
