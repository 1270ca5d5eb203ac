// Losses of the training core, as free functions returning the batch loss and writing its gradient.
#pragma once

#include <cstdint>

namespace normlab {

// Mean softmax cross-entropy over the batch, PyTorch F.cross_entropy(logits, labels) (reduction
// 'mean', no weights, no label smoothing):
//   lse[n]  = m[n] + log sum_k exp(logits[n,k] - m[n]),  m[n] = max_k logits[n,k]  (in double)
//   loss    = (1/N) sum_n (lse[n] - logits[n, labels[n]])
//   p[n,k]  = exp(logits[n,k] - lse[n])
//   dlogits = (p - onehot(labels)) / N
// dlogits and probs may be null (not wanted). Throws Error, before writing anything, if N or K < 1
// or a label is outside [0, K).
// reference: torch.nn.functional.cross_entropy; Goodfellow et al., Deep Learning, 6.2.2.3.
double softmax_cross_entropy(float* dlogits, float* probs_or_null,  // (N,K), (N,K) or null
                             const float* logits, const int32_t* labels,  // (N,K), (N)
                             int64_t N, int64_t K);

// Class probabilities, row by row: p[n,k] = exp(z[n,k] - max_k z[n,k]) / sum_k (...), the
// exponentials in float and their sum in double (what every prediction of normlab reports).
// reference: torch.softmax(logits, dim=1).
void softmax(float* probs,          // (N,K)
             const float* logits,   // (N,K)
             int64_t N, int64_t K);

// Mean squared error over all n elements, PyTorch F.mse_loss (reduction 'mean'):
//   loss = (1/n) sum_i (pred[i] - target[i])^2  (in double),  dpred = 2 (pred - target) / n.
// dpred may be null. Throws Error if n < 1.
// reference: torch.nn.functional.mse_loss.
double mse(float* dpred,                               // (n) or null
           const float* pred, const float* target,     // (n), (n)
           int64_t n);

// How many rows have argmax_k logits[n,k] == labels[n] (first maximum wins on ties, like
// torch.argmax). Throws Error if N or K < 1 or a label is outside [0, K).
int64_t count_correct(const float* logits, const int32_t* labels,  // (N,K), (N)
                      int64_t N, int64_t K);

}  // namespace normlab
