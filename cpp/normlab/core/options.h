// Reads a layer's options from a JSON object, with the checks every entry point needs: unknown keys
// are rejected with the list of known ones, and each value must have the right type. Non-finite
// numbers, which JSON cannot carry, arrive as the strings "NaN", "Infinity" and "-Infinity" (the JS
// wrapper writes them so) and are read back as those doubles, so range checks can name them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace normlab {

class OptionReader {
 public:
  // Throws Error unless `options` is an object (or null: no options) whose keys are all in `known`.
  OptionReader(const nlohmann::json& options, std::string who, std::vector<std::string> known);

  bool has(const std::string& key) const;
  // A number (or a non-finite marker string); `fallback` when absent or null... except for
  // number_or_null, where null is a value of its own (PyTorch's momentum=None).
  double number(const std::string& key, double fallback) const;
  std::optional<double> number_or_null(const std::string& key, std::optional<double> fallback) const;
  // A required integer (any finite number that is whole, checked for range by the caller's domain).
  int64_t integer(const std::string& key) const;
  bool boolean(const std::string& key, bool fallback) const;
  // A string; nullopt when absent or null (the caller checks it against its known values).
  std::optional<std::string> text(const std::string& key) const;
  // A required non-empty list of positive integers.
  std::vector<int64_t> dims(const std::string& key) const;

 private:
  const nlohmann::json* find(const std::string& key) const;
  double to_number(const std::string& key, const nlohmann::json& v) const;

  const nlohmann::json& options_;
  std::string who_;
};

}  // namespace normlab
