// The cases of `npm run bench` that run our own code, shared by the native bench executable
// (bench_native.cpp) and the WebAssembly bench module (bench_wasm.cpp), so both builds time exactly
// the same work. A case is built once (model, optimizer, synthetic data) and then stepped; the
// caller does the timing (see bench_native.cpp and scripts/bench.mjs).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace normlab::bench {

class Case {
 public:
  virtual ~Case() = default;
  // One timed unit: a training step (forward, softmax cross-entropy, backward, SGD momentum
  // update), a normalization layer's training forward + backward, or one runner step.
  virtual void step() = 0;
  // Something computed from the last step (the loss, or a checksum of dx), so the work cannot be
  // optimised away and native and WebAssembly results can be compared.
  virtual double check() const = 0;
};

// The case names, in the order the bench prints them:
//   mlp-b32, mlp-b4  MLP 784-256-BN-ReLU-256-BN-ReLU-10 training step, batch 32 / 4
//   cnn-b32          conv3x3(8,pad1)-BN-ReLU-maxpool2-conv3x3(16,pad1)-BN-ReLU-maxpool2-dense10,
//                    28x28x1, batch 32
//   bn-fb, ln-fb     BatchNorm / LayerNorm (over C,H,W) training forward + backward on [32,16,28,28]
//   tiny-b2          MLP 64-128-BN-ReLU-128-BN-ReLU-10, batch 2 (the smallest runner model)
//   runner-mlp-b32, runner-cnn-b32  one step of a comparison Runner (mlp-b32 / cnn-b32 models, one
//                    method: batchnorm) on MNIST, including the runner's per-step bookkeeping
const std::vector<std::string>& case_names();

// Builds a case. `mnist`: the bytes of mnist.nlds (only the runner cases need them).
// Throws normlab::Error on an unknown name.
std::unique_ptr<Case> make_case(const std::string& name, const std::vector<uint8_t>& mnist);

}  // namespace normlab::bench
