// Data normalization (seed 004 §2): statistics fitted on training data and applied unchanged to
// other data, with inverse transforms. Each sample is a feature vector (an image's pixels flattened).
//   minmax:      y = (x - min) / (max - min)                     per feature (range 0: y = 0)
//   standardize: y = (x - mean) / std                            per feature (std 0: y = 0)
//   pca:         y = (L + eps)^(-1/2) U^T (x - mean)             C = U L U^T, the covariance
//   zca:         y = U (L + eps)^(-1/2) U^T (x - mean)           (whitening that stays closest to x)
// PCA's components are ordered by decreasing variance, each eigenvector's sign fixed so that its
// largest-magnitude entry is positive (an eigen-solver may return either sign).
// reference: Kessy, Lewin & Strimmer 2018, "Optimal whitening and decorrelation" (PCA and ZCA).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Dense>
#include <nlohmann/json.hpp>

namespace normlab {

class Preprocessor {
 public:
  // kind: "minmax" | "standardize" | "pca" | "zca"; eps > 0 is added to the eigenvalues.
  Preprocessor(const std::string& kind, double eps = 1e-5);
  // Fits on n samples of f features (row-major). Throws Error on bad sizes or non-finite values.
  void fit(const float* x, int64_t n, int64_t f);
  // y = transform(x) for n samples of the fitted feature count; y may alias x.
  void transform(float* y, const float* x, int64_t n) const;
  // x = inverse(y); x may alias y.
  void inverse(float* x, const float* y, int64_t n) const;
  bool fitted() const { return features_ > 0; }
  int64_t features() const { return features_; }
  const std::string& kind() const { return kind_; }
  double eps() const { return eps_; }

 private:
  void check(int64_t n, int64_t f, const char* call) const;

  std::string kind_;
  double eps_;
  int64_t features_ = 0;
  Eigen::VectorXd shift_, scale_;  // minmax, standardize: y = (x - shift) * scale
  Eigen::MatrixXd forward_, backward_;  // pca, zca: y = forward (x - shift), x = backward y + shift
};

// Reads {"kind", "eps"}; validates.
Preprocessor preprocessor_from_json(const nlohmann::json& json);

}  // namespace normlab
