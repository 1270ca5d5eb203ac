// normlab's native bench: `normlab_bench [--mnist mnist.nlds] [--cases a,b,...] [--samples N]`
// times the cases of bench_core.h (our training core built natively, Release) and prints one JSON
// object: {"build": "native", "cases": {name: {"ms": median ms per step, "min": ..., "samples",
// "stepsPerSample", "check"}}}. scripts/bench.mjs (npm run bench) builds and runs it, and compares
// it with the same cases in WebAssembly and with TensorFlow.js.
//
// Timing (the same procedure as scripts/bench.mjs): warm up for at least 200 ms (and 3 steps), pick
// k steps per sample so that a sample takes at least 10 ms, take N samples (default 15) of k steps
// each, and report the median and the fastest sample divided by k.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_core.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

nlohmann::json measure(normlab::bench::Case& c, int samples) {
  const auto w0 = Clock::now();
  int warm = 0;
  for (; warm < 3 || ms_since(w0) < 200; ++warm) c.step();
  const double per_step = ms_since(w0) / warm;
  const int k = std::max(1, static_cast<int>(10.0 / per_step + 0.999));
  std::vector<double> t;
  for (int s = 0; s < samples; ++s) {
    const auto t0 = Clock::now();
    for (int i = 0; i < k; ++i) c.step();
    t.push_back(ms_since(t0) / k);
  }
  std::sort(t.begin(), t.end());
  const double median = t.size() % 2 ? t[t.size() / 2] : (t[t.size() / 2 - 1] + t[t.size() / 2]) / 2;
  return {{"ms", median}, {"min", t.front()}, {"samples", samples}, {"stepsPerSample", k},
          {"check", c.check()}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string mnist_path;
  std::vector<std::string> cases = normlab::bench::case_names();
  int samples = 15;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--mnist" && i + 1 < argc) {
      mnist_path = argv[++i];
    } else if (arg == "--samples" && i + 1 < argc) {
      samples = std::max(1, std::stoi(argv[++i]));
    } else if (arg == "--cases" && i + 1 < argc) {
      cases.clear();
      std::stringstream list(argv[++i]);
      for (std::string name; std::getline(list, name, ',');) cases.push_back(name);
    } else {
      std::cerr << "usage: normlab_bench [--mnist mnist.nlds] [--cases a,b,...] [--samples N]\n";
      return 2;
    }
  }
  try {
    std::vector<uint8_t> mnist;
    if (!mnist_path.empty()) {
      std::ifstream file(mnist_path, std::ios::binary);
      if (!file) throw std::runtime_error("cannot read " + mnist_path);
      mnist.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
    }
    nlohmann::json out = {{"build", "native"}, {"cases", nlohmann::json::object()}};
    for (const std::string& name : cases) {
      if (name.rfind("runner-", 0) == 0 && mnist.empty()) continue;  // needs --mnist
      auto c = normlab::bench::make_case(name, mnist);
      out["cases"][name] = measure(*c, samples);
    }
    std::cout << out.dump() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "normlab_bench: " << e.what() << "\n";
    return 2;
  }
}
