#include "bench_core.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "normlab/core/error.h"
#include "normlab/core/rng.h"
#include "normlab/nn/loss.h"
#include "normlab/nn/model.h"
#include "normlab/nn/optim.h"
#include "normlab/norm/registry.h"
#include "normlab/run/runner.h"

namespace normlab::bench {

namespace {

constexpr uint64_t kSeed = 1234;
constexpr double kLr = 0.01, kMomentum = 0.9;

// Fills a tensor with U(0, 1) values (pixel-like inputs).
void fill_uniform(Tensor& t, Rng& rng) {
  for (float& v : t.data) v = static_cast<float>(rng.uniform());
}

// A training step of a model on one fixed synthetic batch: forward, softmax cross-entropy,
// backward, SGD with momentum 0.9 (the same work tfjs's optimizer.minimize does in the bench).
class TrainCase : public Case {
 public:
  TrainCase(const ModelSpec& spec, const Shape& sample_shape, int64_t batch)
      : model_(build_model(spec, sample_shape, kClasses, "batchnorm", nlohmann::json::object(),
                           Rng(kSeed))) {
    Shape shape = {batch};
    shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
    Rng rng(kSeed, 7);
    x_ = Tensor(shape);
    fill_uniform(x_, rng);
    labels_.resize(static_cast<size_t>(batch));
    for (int32_t& l : labels_) l = static_cast<int32_t>(rng.below(kClasses));
    OptimizerOptions o;
    o.kind = "sgd";
    o.lr = kLr;
    o.momentum = kMomentum;
    optimizer_ = std::make_unique<Optimizer>(o, model_.parameters());
  }

  void step() override {
    const Tensor& logits = model_.forward(x_, true);
    dlogits_.resize(logits.shape);
    loss_ = softmax_cross_entropy(dlogits_.ptr(), nullptr, logits.ptr(), labels_.data(),
                                  logits.shape[0], logits.shape[1]);
    model_.backward(dlogits_);
    optimizer_->step(kLr);
  }

  double check() const override { return loss_; }

 private:
  static constexpr int32_t kClasses = 10;
  Model model_;
  std::unique_ptr<Optimizer> optimizer_;
  Tensor x_, dlogits_;
  std::vector<int32_t> labels_;
  double loss_ = 0;
};

// A normalization layer's training forward and backward on a fixed input and upstream gradient.
class NormCase : public Case {
 public:
  NormCase(const std::string& method, const nlohmann::json& options, Shape shape)
      : layer_(create_norm(method, options)), shape_(std::move(shape)) {
    Rng rng(kSeed, 9);
    const size_t n = static_cast<size_t>(numel(shape_));
    x_.resize(n);
    dy_.resize(n);
    y_.resize(n);
    dx_.resize(n);
    for (float& v : x_) v = static_cast<float>(rng.normal() * 2 + 0.5);
    for (float& v : dy_) v = static_cast<float>(rng.normal());
  }

  void step() override {
    layer_->forward(x_.data(), shape_, true, y_.data());
    layer_->backward(dy_.data(), dx_.data());
  }

  double check() const override {
    double s = 0;
    for (size_t i = 0; i < dx_.size(); i += 97) s += std::fabs(dx_[i]) + std::fabs(y_[i]);
    return s;
  }

 private:
  std::unique_ptr<NormLayer> layer_;
  Shape shape_;
  std::vector<float> x_, dy_, y_, dx_;
};

// One step of a comparison Runner with one method, plus the records the bindings hand to JS
// (take_events), i.e. what `runner.step(1)` costs through the public API minus the JS side.
class RunnerCase : public Case {
 public:
  RunnerCase(const nlohmann::json& model, const std::vector<uint8_t>& mnist)
      : runner_(run_config_from_json({{"dataset", {{"name", "mnist"}}},
                                      {"model", model},
                                      {"methods", {"bn"}},
                                      {"batchSize", 32},
                                      {"optimizer", {{"kind", "sgd"}, {"lr", kLr}, {"momentum", kMomentum}}},
                                      {"steps", 10000000},
                                      {"evalInterval", 10000000},
                                      {"seed", kSeed}}),
                mnist) {}

  void step() override {
    runner_.step(1);
    events_ = runner_.take_events().dump();
  }

  double check() const override { return static_cast<double>(events_.size()); }

 private:
  Runner runner_;
  std::string events_;
};

}  // namespace

const std::vector<std::string>& case_names() {
  static const std::vector<std::string> names = {"mlp-b32", "mlp-b4",         "cnn-b32",
                                                 "bn-fb",   "ln-fb",          "tiny-b2",
                                                 "runner-mlp-b32", "runner-cnn-b32"};
  return names;
}

std::unique_ptr<Case> make_case(const std::string& name, const std::vector<uint8_t>& mnist) {
  ModelSpec mlp;
  mlp.kind = "mlp";
  mlp.hidden = {256, 256};
  ModelSpec cnn;
  cnn.kind = "cnn";
  cnn.channels = {8, 16};
  if (name == "mlp-b32") return std::make_unique<TrainCase>(mlp, Shape{784}, 32);
  if (name == "mlp-b4") return std::make_unique<TrainCase>(mlp, Shape{784}, 4);
  if (name == "cnn-b32") return std::make_unique<TrainCase>(cnn, Shape{1, 28, 28}, 32);
  if (name == "tiny-b2") {
    ModelSpec tiny;
    tiny.hidden = {128, 128};
    return std::make_unique<TrainCase>(tiny, Shape{64}, 2);
  }
  if (name == "bn-fb") {
    return std::make_unique<NormCase>("batchnorm", nlohmann::json{{"channels", 16}},
                                      Shape{32, 16, 28, 28});
  }
  if (name == "ln-fb") {
    return std::make_unique<NormCase>("layernorm", nlohmann::json{{"normalizedShape", {16, 28, 28}}},
                                      Shape{32, 16, 28, 28});
  }
  if (name == "runner-mlp-b32") {
    return std::make_unique<RunnerCase>(nlohmann::json{{"kind", "mlp"}, {"hidden", {256, 256}}}, mnist);
  }
  if (name == "runner-cnn-b32") {
    return std::make_unique<RunnerCase>(nlohmann::json{{"kind", "cnn"}, {"channels", {8, 16}}}, mnist);
  }
  fail("bench: unknown case '", name, "'");
}

}  // namespace normlab::bench
