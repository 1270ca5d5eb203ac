#include "normlab/core/options.h"

#include <cmath>
#include <limits>

#include "normlab/core/error.h"
#include "normlab/core/shape.h"

namespace normlab {

namespace {
const nlohmann::json kEmpty = nlohmann::json::object();
}

OptionReader::OptionReader(const nlohmann::json& options, std::string who,
                           std::vector<std::string> known)
    : options_(options.is_null() ? kEmpty : options), who_(std::move(who)) {
  if (!options_.is_object()) fail(who_, ": options must be an object");
  for (const auto& item : options_.items()) {
    bool ok = false;
    for (const std::string& k : known) ok = ok || k == item.key();
    if (!ok) {
      std::string list;
      for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
      fail(who_, ": unknown option '", item.key(), "' (known: ", list, ")");
    }
  }
}

const nlohmann::json* OptionReader::find(const std::string& key) const {
  auto it = options_.find(key);
  return it == options_.end() ? nullptr : &*it;
}

bool OptionReader::has(const std::string& key) const { return find(key) != nullptr; }

double OptionReader::to_number(const std::string& key, const nlohmann::json& v) const {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (s == "Infinity") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
  }
  fail(who_, ": option ", key, " must be a number, got ", v.dump());
}

double OptionReader::number(const std::string& key, double fallback) const {
  const nlohmann::json* v = find(key);
  return v == nullptr || v->is_null() ? fallback : to_number(key, *v);
}

std::optional<double> OptionReader::number_or_null(const std::string& key,
                                                   std::optional<double> fallback) const {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return fallback;
  if (v->is_null()) return std::nullopt;
  return to_number(key, *v);
}

int64_t OptionReader::integer(const std::string& key) const {
  const nlohmann::json* v = find(key);
  if (v == nullptr || v->is_null()) fail(who_, ": option ", key, " is required");
  const double d = to_number(key, *v);
  if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > static_cast<double>(kMaxElements)) {
    fail(who_, ": option ", key, " must be an integer, got ", v->dump());
  }
  return static_cast<int64_t>(d);
}

bool OptionReader::boolean(const std::string& key, bool fallback) const {
  const nlohmann::json* v = find(key);
  if (v == nullptr || v->is_null()) return fallback;
  if (!v->is_boolean()) fail(who_, ": option ", key, " must be true or false, got ", v->dump());
  return v->get<bool>();
}

std::optional<std::string> OptionReader::text(const std::string& key) const {
  const nlohmann::json* v = find(key);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (!v->is_string()) fail(who_, ": option ", key, " must be a string, got ", v->dump());
  return v->get<std::string>();
}

std::vector<int64_t> OptionReader::dims(const std::string& key) const {
  const nlohmann::json* v = find(key);
  if (v == nullptr || v->is_null()) fail(who_, ": option ", key, " is required");
  if (!v->is_array() || v->empty()) {
    fail(who_, ": option ", key, " must be a non-empty array of positive integers, got ", v->dump());
  }
  std::vector<double> raw;
  for (const auto& d : *v) raw.push_back(to_number(key, d));
  return shape_from_doubles(raw, who_ + ": option " + key, 1);
}

}  // namespace normlab
