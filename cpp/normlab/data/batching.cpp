#include "normlab/data/batching.h"

#include <cstring>
#include <numeric>

#include "normlab/core/error.h"

namespace normlab {

BatchSampler::BatchSampler(const Dataset& data, int64_t batch_size, int32_t noniid_classes,
                           uint64_t seed)
    : rng_(seed) {
  const std::string who = noniid_classes == 0 ? "BatchSampler (iid)" : "BatchSampler (noniid)";
  n_ = check_dataset(data, who);
  if (n_ > int64_t{0xFFFFFFFF}) fail(who, ": ", data.name, ": more than 2^32 - 1 examples");
  if (batch_size < 1) fail(who, ": ", data.name, ": batch_size must be >= 1, got ", batch_size);
  if (noniid_classes < 0) {
    fail(who, ": ", data.name, ": classes per batch must be >= 1 (or 0 for i.i.d. batches), got ",
         noniid_classes);
  }
  batch_size_ = batch_size;
  k_ = noniid_classes;

  if (k_ == 0) {
    if (batch_size > n_) {
      fail(who, ": ", data.name, ": batch_size ", batch_size, " is larger than the ", n_,
           " examples");
    }
    order_.resize(static_cast<size_t>(n_));
    std::iota(order_.begin(), order_.end(), int64_t{0});
    rng_.shuffle(order_);
    return;
  }

  if (k_ > data.num_classes) {
    fail(who, ": ", data.name, ": ", k_, " classes per batch but the data set has ",
         data.num_classes);
  }
  if (batch_size % k_ != 0) {
    fail(who, ": ", data.name, ": batch_size ", batch_size, " is not divisible by the ", k_,
         " classes per batch");
  }
  const int64_t per_class = batch_size / k_;
  members_.resize(static_cast<size_t>(data.num_classes));
  for (int64_t i = 0; i < n_; ++i) {
    members_[static_cast<size_t>(data.labels[static_cast<size_t>(i)])].push_back(i);
  }
  for (int32_t c = 0; c < data.num_classes; ++c) {
    const std::vector<int64_t>& m = members_[static_cast<size_t>(c)];
    if (m.empty()) continue;
    if (static_cast<int64_t>(m.size()) < per_class) {
      fail(who, ": ", data.name, ": class ", c, " has ", m.size(), " examples, fewer than the ",
           per_class, " a batch takes from each class (batch_size ", batch_size, " / ", k_,
           " classes)");
    }
    present_.push_back(c);
  }
  if (static_cast<int64_t>(present_.size()) < k_) {
    fail(who, ": ", data.name, ": ", k_, " classes per batch but only ", present_.size(),
         " classes have examples");
  }
  cursor_.assign(members_.size(), 0);
  for (int32_t c : present_) rng_.shuffle(members_[static_cast<size_t>(c)]);
}

std::vector<int64_t> BatchSampler::next() { return k_ == 0 ? next_iid() : next_noniid(); }

std::vector<int64_t> BatchSampler::next_iid() {
  const size_t bs = static_cast<size_t>(batch_size_);
  std::vector<int64_t> batch(order_.begin() + static_cast<std::ptrdiff_t>(pos_),
                             order_.begin() + static_cast<std::ptrdiff_t>(pos_ + bs));
  pos_ += bs;
  if (pos_ + bs > order_.size()) {  // epoch done: drop the incomplete rest, shuffle for the next
    rng_.shuffle(order_);
    pos_ = 0;
    ++epoch_;
  }
  return batch;
}

std::vector<int64_t> BatchSampler::next_noniid() {
  // k distinct classes: the first k of a partial Fisher-Yates shuffle of the classes present.
  std::vector<int32_t> classes = present_;
  const size_t k = static_cast<size_t>(k_);
  for (size_t i = 0; i < k; ++i) {
    const size_t j = i + rng_.below(static_cast<uint32_t>(classes.size() - i));
    std::swap(classes[i], classes[j]);
  }
  const size_t per_class = static_cast<size_t>(batch_size_ / k_);
  std::vector<int64_t> batch;
  batch.reserve(static_cast<size_t>(batch_size_));
  for (size_t i = 0; i < k; ++i) {
    const size_t c = static_cast<size_t>(classes[i]);
    std::vector<int64_t>& m = members_[c];
    if (cursor_[c] + per_class > m.size()) {  // skip the rest of this pass, start a new one
      rng_.shuffle(m);
      cursor_[c] = 0;
    }
    batch.insert(batch.end(), m.begin() + static_cast<std::ptrdiff_t>(cursor_[c]),
                 m.begin() + static_cast<std::ptrdiff_t>(cursor_[c] + per_class));
    cursor_[c] += per_class;
  }
  return batch;
}

void gather(const Dataset& data, const std::vector<int64_t>& idx, Tensor& x,
            std::vector<int32_t>& labels) {
  if (data.x.shape.empty() || data.x.shape[0] != data.size() || data.size() < 1 ||
      data.x.numel() != numel(data.x.shape)) {
    fail("gather: ", data.name, ": x of shape ", to_string(data.x.shape), " with ", data.x.numel(),
         " values does not fit its ", data.size(), " labels");
  }
  if (idx.empty()) fail("gather: ", data.name, ": no indices given");
  const int64_t n = data.size();
  const size_t row = static_cast<size_t>(data.x.numel() / n);
  Shape shape = data.x.shape;
  shape[0] = static_cast<int64_t>(idx.size());
  x.resize(shape);
  labels.resize(idx.size());
  for (size_t j = 0; j < idx.size(); ++j) {
    const int64_t i = idx[j];
    if (i < 0 || i >= n) fail("gather: ", data.name, ": index ", i, " is not in [0, ", n, ")");
    std::memcpy(x.ptr() + j * row, data.x.ptr() + static_cast<size_t>(i) * row,
                row * sizeof(float));
    labels[j] = data.labels[static_cast<size_t>(i)];
  }
}

}  // namespace normlab
