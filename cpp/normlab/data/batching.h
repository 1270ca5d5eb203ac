// Mini-batch order for training: i.i.d. batches (a fresh Fisher-Yates shuffle each epoch) or
// non-i.i.d. batches drawn from a few classes each.
// reference: Ioffe 2017, Batch Renormalization, "Non-i.i.d. minibatches": a batch of 32 takes 16
// labels at random and 2 examples of each.
// Deterministic given the seed; all randomness from our Rng.
#pragma once

#include <cstdint>
#include <vector>

#include "normlab/core/rng.h"
#include "normlab/core/tensor.h"
#include "normlab/data/datasets.h"

namespace normlab {

class BatchSampler {
 public:
  // Over `data`'s N examples (only its labels are kept; the sampler does not hold x).
  // noniid_classes == 0: i.i.d. batches. Each epoch is a new random order of the N examples, cut
  //   into N / batch_size batches of exactly batch_size; the N % batch_size left at the end of an
  //   epoch are dropped (different ones each epoch), so a batch is never smaller.
  //   1 <= batch_size <= N.
  // noniid_classes == k >= 1: every batch has batch_size / k examples from each of k distinct
  //   classes chosen uniformly at random for that batch. Per class, a shuffled list of its examples
  //   is consumed batch_size / k at a time; when fewer remain they are skipped and the list is
  //   reshuffled (so a batch never repeats an example and every pass over a class uses all but at
  //   most batch_size / k - 1 of its examples). batch_size must be divisible by k, and
  //   k <= num_classes; classes without examples are never chosen, a class with fewer than
  //   batch_size / k examples is an error, and at least k classes must have examples.
  BatchSampler(const Dataset& data, int64_t batch_size, int32_t noniid_classes, uint64_t seed);

  // Example indices of the next batch (batch_size of them, each in [0, N)).
  std::vector<int64_t> next();

  int64_t batch_size() const { return batch_size_; }
  int32_t noniid_classes() const { return k_; }
  // i.i.d.: completed epochs (after batches_per_epoch() batches it is 1); non-i.i.d.: 0.
  int64_t epoch() const { return epoch_; }
  // N / batch_size: the batches of one i.i.d. epoch (nominal for non-i.i.d. sampling).
  int64_t batches_per_epoch() const { return n_ / batch_size_; }

 private:
  std::vector<int64_t> next_iid();
  std::vector<int64_t> next_noniid();

  int64_t n_ = 0;
  int64_t batch_size_ = 0;
  int32_t k_ = 0;  // 0: i.i.d.
  Rng rng_;
  int64_t epoch_ = 0;
  // i.i.d.: the current epoch's order and the next position in it.
  std::vector<int64_t> order_;
  size_t pos_ = 0;
  // non-i.i.d.: per class its examples (shuffled) and the next position; the classes that have any.
  std::vector<std::vector<int64_t>> members_;
  std::vector<size_t> cursor_;
  std::vector<int32_t> present_;
};

// Copies the examples at idx into x (reshaped to (idx.size(), ...sample dims), reusing its
// allocation) and their labels. Each index must be in [0, N); idx must not be empty.
void gather(const Dataset& data, const std::vector<int64_t>& idx, Tensor& x,
            std::vector<int32_t>& labels);

}  // namespace normlab
