// The one source of randomness in normlab: a seeded PCG32 generator and our own distributions, so
// that a seed gives the same numbers on every platform (std:: distributions differ between standard
// libraries). Integer results are bit-identical everywhere; normal() uses log/sqrt/cos, which are
// bit-identical between runs of the same WebAssembly build and agree to float tolerance natively.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace normlab {

class Rng {
 public:
  // reference: O'Neill 2014, PCG32 (pcg32_srandom_r / pcg32_random_r).
  explicit Rng(uint64_t seed, uint64_t stream = 0x853c49e6748fea9bULL);

  uint32_t next_u32();
  // Uniform in [0, 1) with 53 random bits.
  double uniform();
  // Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal (Box-Muller; one value per call, the pair's second value is kept for the next).
  double normal();
  // Uniform integer in [0, n), unbiased (Lemire's method). n >= 1.
  uint32_t below(uint32_t n);
  // Fisher-Yates shuffle.
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(static_cast<uint32_t>(i))]);
  }
  // An independent generator derived from this one's seed and a label (for per-purpose streams:
  // initial weights, data order, noise), so adding a draw in one place does not shift the others.
  Rng fork(uint64_t label) const;

 private:
  uint64_t state_ = 0, inc_ = 0, seed_ = 0;
  bool has_spare_ = false;
  double spare_ = 0;
};

}  // namespace normlab
