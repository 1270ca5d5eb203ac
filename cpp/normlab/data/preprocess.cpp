#include "normlab/data/preprocess.h"

#include <cmath>

#include "normlab/core/error.h"
#include "normlab/core/options.h"
#include "normlab/core/shape.h"

namespace normlab {

Preprocessor::Preprocessor(const std::string& kind, double eps) : kind_(kind), eps_(eps) {
  if (kind != "minmax" && kind != "standardize" && kind != "pca" && kind != "zca") {
    fail("preprocess: unknown kind '", kind, "' (known: minmax, standardize, pca, zca)");
  }
  if (!(eps > 0) || !std::isfinite(eps)) fail("preprocess: eps must be a finite number > 0, got ", eps);
}

void Preprocessor::check(int64_t n, int64_t f, const char* call) const {
  if (n < 1) fail("preprocess: ", call, " needs at least 1 sample, got ", n);
  if (f != features_) fail("preprocess: ", call, " got samples of ", f, " features, fitted on ", features_);
}

void Preprocessor::fit(const float* x, int64_t n, int64_t f) {
  if (n < 2) fail("preprocess: fit needs at least 2 samples, got ", n);
  if (f < 1) fail("preprocess: fit needs at least 1 feature, got ", f);
  if (f > 4096) fail("preprocess: at most 4096 features, got ", f);
  if (n * f > kMaxElements) fail("preprocess: fit data has more than ", kMaxElements, " values");
  for (int64_t i = 0; i < n * f; ++i) {
    if (!std::isfinite(x[i])) fail("preprocess: fit data value ", i, " is not finite");
  }
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::MatrixXd X = Eigen::Map<const Matrix>(x, n, f).cast<double>();  // (n, f)
  const Eigen::VectorXd mean = X.colwise().mean();
  if (kind_ == "minmax") {
    const Eigen::VectorXd lo = X.colwise().minCoeff(), hi = X.colwise().maxCoeff();
    shift_ = lo;
    scale_ = (hi - lo).unaryExpr([](double r) { return r > 0 ? 1 / r : 0.0; });
  } else if (kind_ == "standardize") {
    const Eigen::VectorXd var = (X.rowwise() - mean.transpose()).array().square().colwise().mean();
    shift_ = mean;
    scale_ = var.unaryExpr([](double v) { return v > 0 ? 1 / std::sqrt(v) : 0.0; });
  } else {
    const Eigen::MatrixXd centered = X.rowwise() - mean.transpose();
    const Eigen::MatrixXd cov = centered.transpose() * centered / static_cast<double>(n);  // biased
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(cov);
    if (eig.info() != Eigen::Success) fail("preprocess: the eigendecomposition did not converge");
    // Decreasing eigenvalues; deterministic signs.
    Eigen::MatrixXd U = eig.eigenvectors().rowwise().reverse();
    Eigen::VectorXd L = eig.eigenvalues().reverse().cwiseMax(0.0);
    for (int64_t k = 0; k < f; ++k) {
      Eigen::Index top = 0;
      U.col(k).cwiseAbs().maxCoeff(&top);
      if (U(top, k) < 0) U.col(k) *= -1;
    }
    const Eigen::VectorXd s = (L.array() + eps_).rsqrt(), s_inv = (L.array() + eps_).sqrt();
    shift_ = mean;
    if (kind_ == "pca") {
      forward_ = s.asDiagonal() * U.transpose();
      backward_ = U * s_inv.asDiagonal();
    } else {
      forward_ = U * s.asDiagonal() * U.transpose();
      backward_ = U * s_inv.asDiagonal() * U.transpose();
    }
  }
  features_ = f;
}

void Preprocessor::transform(float* y, const float* x, int64_t n) const {
  if (!fitted()) fail("preprocess: transform before fit");
  check(n, features_, "transform");
  const int64_t f = features_;
  Eigen::VectorXd v(f);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < f; ++j) v[j] = x[i * f + j] - shift_[j];
    if (forward_.size() == 0) {
      for (int64_t j = 0; j < f; ++j) y[i * f + j] = static_cast<float>(v[j] * scale_[j]);
    } else {
      const Eigen::VectorXd out = forward_ * v;
      for (int64_t j = 0; j < f; ++j) y[i * f + j] = static_cast<float>(out[j]);
    }
  }
}

void Preprocessor::inverse(float* x, const float* y, int64_t n) const {
  if (!fitted()) fail("preprocess: inverse before fit");
  check(n, features_, "inverse");
  const int64_t f = features_;
  Eigen::VectorXd v(f);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < f; ++j) v[j] = y[i * f + j];
    if (backward_.size() == 0) {
      // A constant feature (scale 0) maps back to its constant value.
      for (int64_t j = 0; j < f; ++j) {
        x[i * f + j] = static_cast<float>(scale_[j] > 0 ? v[j] / scale_[j] + shift_[j] : shift_[j]);
      }
    } else {
      const Eigen::VectorXd out = backward_ * v + shift_;
      for (int64_t j = 0; j < f; ++j) x[i * f + j] = static_cast<float>(out[j]);
    }
  }
}

Preprocessor preprocessor_from_json(const nlohmann::json& json) {
  if (json.is_string()) return Preprocessor(json.get<std::string>());
  OptionReader r(json, "preprocess", {"kind", "eps"});
  if (!r.has("kind")) fail("preprocess: kind is required (minmax, standardize, pca, zca)");
  const nlohmann::json& k = json.at("kind");
  if (!k.is_string()) fail("preprocess: kind must be a string, got ", k.dump());
  return Preprocessor(k.get<std::string>(), r.number("eps", 1e-5));
}

}  // namespace normlab
