// Registers the names JS sees; the conversions live in layer_handle.cpp.
#include <emscripten/bind.h>

#include "layer_handle.h"
#include "model_handle.h"
#include "preprocess_handle.h"
#include "runner_handle.h"

EMSCRIPTEN_BINDINGS(normlab) {
  using normlab::wasm::LayerHandle;
  emscripten::class_<LayerHandle>("LayerHandle")
      .constructor<>()
      .function("create", &LayerHandle::create)
      .function("options", &LayerHandle::options)
      .function("forward", &LayerHandle::forward)
      .function("backward", &LayerHandle::backward)
      .function("get", &LayerHandle::get)
      .function("set", &LayerHandle::set)
      .function("setLimits", &LayerHandle::set_limits)
      .function("setPopulationStatistics", &LayerHandle::set_population_statistics)
      .function("lastCorrection", &LayerHandle::last_correction);
  using normlab::wasm::WeightLayerHandle;
  emscripten::class_<WeightLayerHandle>("WeightLayerHandle")
      .constructor<>()
      .function("create", &WeightLayerHandle::create)
      .function("options", &WeightLayerHandle::options)
      .function("outputShape", &WeightLayerHandle::output_shape)
      .function("forward", &WeightLayerHandle::forward)
      .function("backward", &WeightLayerHandle::backward)
      .function("get", &WeightLayerHandle::get)
      .function("set", &WeightLayerHandle::set);
  using normlab::wasm::RunnerHandle;
  emscripten::class_<RunnerHandle>("RunnerHandle")
      .constructor<>()
      .function("create", &RunnerHandle::create)
      .function("createWithData", &RunnerHandle::create_with_data)
      .function("step", &RunnerHandle::step)
      .function("result", &RunnerHandle::result)
      .function("timing", &RunnerHandle::timing)
      .function("predict", &RunnerHandle::predict)
      .function("samples", &RunnerHandle::samples)
      .function("adaptBatchNorm", &RunnerHandle::adapt_batch_norm)
      .function("fold", &RunnerHandle::fold)
      .function("dataInfo", &RunnerHandle::data_info)
      .function("stepsDone", &RunnerHandle::steps_done)
      .function("done", &RunnerHandle::done);
  using normlab::wasm::PreprocessHandle;
  emscripten::class_<PreprocessHandle>("PreprocessHandle")
      .constructor<>()
      .function("fit", &PreprocessHandle::fit)
      .function("transform", &PreprocessHandle::transform)
      .function("inverse", &PreprocessHandle::inverse)
      .function("features", &PreprocessHandle::features);
  using normlab::wasm::ModelHandle;
  emscripten::class_<ModelHandle>("ModelHandle")
      .constructor<>()
      .function("create", &ModelHandle::create)
      .function("foldOf", &ModelHandle::fold_of)
      .function("fitBegin", &ModelHandle::fit_begin)
      .function("fitStep", &ModelHandle::fit_step)
      .function("fitEnd", &ModelHandle::fit_end)
      .function("evaluate", &ModelHandle::evaluate)
      .function("predict", &ModelHandle::predict)
      .function("getWeights", &ModelHandle::get_weights)
      .function("setWeights", &ModelHandle::set_weights)
      .function("stepsDone", &ModelHandle::steps_done);
  emscripten::function("memoryStats", &normlab::wasm::memory_stats);
  emscripten::function("methodsJson", &normlab::wasm::methods_json);
  emscripten::function("describeMethodsJson", &normlab::wasm::describe_methods_json);
}
