// The WebAssembly side of the bench: the cases of bench_core.h behind a minimal Embind class, so
// scripts/bench.mjs can time them from JS the way it times TensorFlow.js (one call per step, timed
// with performance.now around the calls).
#include <malloc.h>

#include <emscripten/bind.h>
#include <emscripten/heap.h>
#include <emscripten/val.h>

#include "bench_core.h"

namespace {

using emscripten::val;

class BenchCase {
 public:
  // data: a Uint8Array with mnist.nlds (runner cases) or undefined. Throws a JS error (a C++
  // exception) on an unknown case.
  BenchCase(const std::string& name, const val& data) {
    std::vector<uint8_t> bytes;
    if (!data.isUndefined() && !data.isNull()) {
      bytes.resize(data["length"].as<size_t>());
      val(emscripten::typed_memory_view(bytes.size(), bytes.data())).call<void>("set", data);
    }
    case_ = normlab::bench::make_case(name, bytes);
  }
  void step(int n) {
    for (int i = 0; i < n; ++i) case_->step();
  }
  double check() const { return case_->check(); }

 private:
  std::unique_ptr<normlab::bench::Case> case_;
};

val memory() {
  const struct mallinfo info = mallinfo();
  val out = val::object();
  out.set("heapBytes", static_cast<double>(emscripten_get_heap_size()));
  out.set("usedBytes", static_cast<double>(info.uordblks));
  return out;
}

val case_names() {
  val out = val::array();
  for (const std::string& n : normlab::bench::case_names()) out.call<void>("push", n);
  return out;
}

}  // namespace

EMSCRIPTEN_BINDINGS(normlab_bench) {
  emscripten::class_<BenchCase>("BenchCase")
      .constructor<std::string, val>()
      .function("step", &BenchCase::step)
      .function("check", &BenchCase::check);
  emscripten::function("memory", &memory);
  emscripten::function("caseNames", &case_names);
}
