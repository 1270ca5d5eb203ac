// The comparison runner as a native program: `run_native CONFIG.json [DATA.nlds]` prints the
// result JSON (the same as the WebAssembly build's runner.result()). Used to check that the native
// and WebAssembly builds agree within float tolerance (tests/js/native.test.ts), and handy for
// profiling the training core natively.
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

#include <nlohmann/json.hpp>

#include "normlab/core/error.h"
#include "normlab/run/runner.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::cerr << "usage: run_native CONFIG.json [DATA.nlds]\n";
    return 2;
  }
  try {
    std::ifstream config_file(argv[1]);
    if (!config_file) normlab::fail("cannot read ", argv[1]);
    const nlohmann::json config = nlohmann::json::parse(config_file);
    std::vector<uint8_t> data;
    if (argc == 3) {
      std::ifstream data_file(argv[2], std::ios::binary);
      if (!data_file) normlab::fail("cannot read ", argv[2]);
      data.assign(std::istreambuf_iterator<char>(data_file), std::istreambuf_iterator<char>());
    }
    normlab::Runner runner(normlab::run_config_from_json(config), data);
    while (!runner.done()) runner.step(1000);
    std::cout << runner.result().dump() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "run_native: " << e.what() << "\n";
    return 2;
  }
}
