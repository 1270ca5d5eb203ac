// The runner's configuration: method names and aliases, default labels and ids, and the run
// config's JSON parsed and validated (run_config_from_json) and written back (run_config_to_json).
#include "normlab/run/config.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "normlab/core/error.h"
#include "normlab/core/options.h"
#include "normlab/data/datasets.h"
#include "normlab/data/preprocess.h"
#include "normlab/norm/registry.h"

namespace normlab {

namespace {

const std::string& text(const nlohmann::json& json, const char* who, const char* key) {
  const nlohmann::json& v = json.at(key);
  if (!v.is_string()) fail(who, ": ", key, " must be a string, got ", v.dump());
  return v.get_ref<const std::string&>();
}

std::string default_label(const std::string& method, const nlohmann::json& options) {
  return method_info(method).label_for(options);
}

MethodSpec method_spec_from_json(const nlohmann::json& json, size_t index) {
  MethodSpec m;
  if (json.is_string()) {
    m.method = canonical_method(json.get<std::string>());
  } else if (json.is_object()) {
    OptionReader r(json, "methods[" + std::to_string(index) + "]", {"method", "options", "label", "id"});
    if (!r.has("method")) fail("methods[", index, "]: method is required");
    m.method = canonical_method(text(json, "methods[]", "method"));
    if (r.has("options")) m.options = json.at("options");
    if (r.has("label")) m.label = text(json, "methods[]", "label");
    if (r.has("id")) m.id = text(json, "methods[]", "id");
  } else {
    fail("methods[", index, "] must be a method name or {method, options, label}, got ", json.dump());
  }
  if (m.options.is_null()) m.options = nlohmann::json::object();
  if (!m.options.is_object()) fail("methods[", index, "]: options must be an object");
  if (m.label.empty()) m.label = default_label(m.method, m.options);
  return m;
}

// ---- dataset ----
// A built-in set ({name, noise, trainSize, testSize, classes}) or, with a `source`, the user's own
// data ({name, source, testFraction}; its examples come with the Runner's other constructor).
DatasetSpec dataset_spec_from_json(const nlohmann::json& d) {
  DatasetSpec s;
  if (!(d.is_object() && d.contains("source"))) {
    OptionReader dr(d, "dataset", {"name", "noise", "trainSize", "testSize", "classes"});
    if (dr.has("name")) s.name = text(d, "dataset", "name");
    // Every built-in set by name: the generated 2-D sets and the two image sets.
    std::vector<std::string> known = kinds_2d();
    known.insert(known.end(), {"digits", "mnist"});
    if (std::find(known.begin(), known.end(), s.name) == known.end()) {
      std::string list;
      for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
      fail("dataset: unknown data set '", s.name, "' (known: ", list, ")");
    }
    s.noise = dr.number("noise", s.noise);
    if (dr.has("trainSize")) s.train_size = dr.integer("trainSize");
    if (dr.has("testSize")) s.test_size = dr.integer("testSize");
    if (dr.has("classes")) s.classes = static_cast<int32_t>(dr.integer("classes"));
    return s;
  }
  OptionReader dr(d, "dataset", {"name", "source", "testFraction"});
  s.source = text(d, "dataset", "source");
  if (s.source != "arrays" && s.source != "csv" && s.source != "nlds") {
    fail("dataset: unknown source '", s.source, "' (known: arrays, csv, nlds)");
  }
  s.name = dr.has("name") ? text(d, "dataset", "name") : "data";
  if (s.name.empty()) fail("dataset: name must not be empty");
  s.test_fraction = dr.number("testFraction", s.test_fraction);
  if (!(s.test_fraction > 0 && s.test_fraction < 1)) {
    fail("dataset: testFraction must be in (0, 1), got ", s.test_fraction);
  }
  return s;
}

nlohmann::json dataset_spec_to_json(const DatasetSpec& d) {
  if (d.user()) {
    return {{"name", d.name}, {"source", d.source},
            {"testFraction", d.test_fraction > 0 ? nlohmann::json(d.test_fraction) : nlohmann::json(nullptr)}};
  }
  // The image sets have a fixed size and classes: only the generated 2-D sets have the others.
  nlohmann::json dataset = {{"name", d.name}, {"testSize", d.test_size}};
  if (d.name != "digits" && d.name != "mnist") {
    dataset["noise"] = d.noise;
    dataset["trainSize"] = d.train_size;
    dataset["classes"] = d.classes;
  }
  return dataset;
}
// ---- end dataset ----

// ---- probes ----
// {landscape, ics, etas}; null or absent: no probes. etas (the landscape's) default to the lr's.
ProbeConfig probe_config_from_json(const nlohmann::json& p, double lr) {
  ProbeConfig c;
  if (p.is_null()) return c;
  OptionReader pr(p, "probes", {"landscape", "ics", "etas"});
  c.landscape = pr.boolean("landscape", false);
  c.ics = pr.boolean("ics", false);
  if (pr.has("etas") && !p.at("etas").is_null()) {
    if (!c.landscape) fail("probes: etas are the landscape probe's step sizes; set landscape: true with them");
    const nlohmann::json& etas = p.at("etas");
    if (!etas.is_array() || etas.empty() || etas.size() > 16) {
      fail("probes: etas must be a list of 1 to 16 step sizes (numbers > 0), got ", etas.dump());
    }
    for (const nlohmann::json& eta : etas) {
      if (!eta.is_number() || !(eta.get<double>() > 0) || !std::isfinite(eta.get<double>())) {
        fail("probes: every step size in etas must be a finite number > 0, got ", eta.dump());
      }
      c.etas.push_back(eta.get<double>());
    }
  }
  if (c.landscape && c.etas.empty()) c.etas = default_probe_etas(lr);
  return c;
}
// ---- end probes ----

// Short id of a method for tables and result keys: its first alias, or its name.
std::string short_id(const std::string& method) { return method_info(method).id(); }

}  // namespace

std::string canonical_method(const std::string& name) {
  if (const MethodInfo* m = find_method(name)) return m->name;
  std::string list, alias_list;
  for (const MethodInfo* m : method_table()) {
    list += (list.empty() ? "" : ", ") + m->name;
    for (const std::string& alias : m->aliases) alias_list += (alias_list.empty() ? "" : ", ") + alias;
  }
  fail("unknown method '", name, "' (known: ", list, "; aliases ", alias_list, ")");
}

std::vector<double> default_probe_etas(double lr) { return {lr / 4, lr / 2, lr, 2 * lr, 4 * lr}; }

RunConfig run_config_from_json(const nlohmann::json& json) {
  OptionReader r(json, "config",
                 {"dataset", "model", "methods", "batchSize", "batching", "optimizer", "schedule",
                  "steps", "evalInterval", "seed", "renormSchedule", "domainShift", "preprocess", "probes"});
  RunConfig c;
  if (r.has("dataset")) c.dataset = dataset_spec_from_json(json.at("dataset"));
  if (r.has("model")) c.model = model_spec_from_json(json.at("model"));
  if (!r.has("methods")) fail("config: methods is required (e.g. [\"bn\", \"brn\", \"ln\", \"gn\"])");
  const nlohmann::json& methods = json.at("methods");
  if (!methods.is_array() || methods.empty()) fail("config: methods must be a non-empty array");
  if (methods.size() > 12) fail("config: at most 12 methods, got ", methods.size());
  std::set<std::string> ids;
  for (size_t i = 0; i < methods.size(); ++i) {
    MethodSpec m = method_spec_from_json(methods[i], i);
    if (m.id.empty()) {
      m.id = short_id(m.method);
      for (int k = 2; ids.count(m.id); ++k) m.id = short_id(m.method) + "-" + std::to_string(k);
    }
    if (!ids.insert(m.id).second) fail("config: two methods have the id '", m.id, "'");
    c.methods.push_back(std::move(m));
  }
  if (r.has("batchSize")) c.batch_size = r.integer("batchSize");
  if (r.has("batching")) {
    const nlohmann::json& b = json.at("batching");
    const std::string& s = b.is_string() ? b.get_ref<const std::string&>() : std::string();
    if (s == "iid") {
      c.noniid_classes = 0;
    } else if (s.rfind("noniid:", 0) == 0 && s.size() > 7 &&
               s.find_first_not_of("0123456789", 7) == std::string::npos && s.size() < 10) {
      c.noniid_classes = std::stoi(s.substr(7));
    } else {
      fail("config: batching must be \"iid\" or \"noniid:K\" (K classes per batch), got ", b.dump());
    }
  }
  if (r.has("optimizer")) c.optimizer = optimizer_options_from_json(json.at("optimizer"));
  if (r.has("schedule")) c.schedule = schedule_options_from_json(json.at("schedule"));
  if (r.has("steps")) c.steps = r.integer("steps");
  if (r.has("evalInterval")) c.eval_interval = r.integer("evalInterval");
  if (r.has("seed")) {
    const int64_t seed = r.integer("seed");
    if (seed < 0) fail("config: seed must be an integer >= 0, got ", seed);
    c.seed = static_cast<uint64_t>(seed);
  }
  if (r.has("renormSchedule")) {
    const nlohmann::json& s = json.at("renormSchedule");
    if (s.is_boolean() && !s.get<bool>()) {
      c.renorm.enabled = false;
    } else {
      OptionReader sr(s, "renormSchedule", {"warmup", "rampEnd"});
      c.renorm.warmup = sr.number("warmup", c.renorm.warmup);
      c.renorm.ramp_end = sr.number("rampEnd", c.renorm.ramp_end);
      if (!(c.renorm.warmup >= 0 && c.renorm.warmup <= 1)) {
        fail("renormSchedule: warmup must be a fraction of the steps in [0, 1], got ", c.renorm.warmup);
      }
      if (!(c.renorm.ramp_end >= c.renorm.warmup && c.renorm.ramp_end <= 1)) {
        fail("renormSchedule: rampEnd must be in [warmup, 1], got ", c.renorm.ramp_end);
      }
    }
  }
  if (r.has("domainShift") && !json.at("domainShift").is_null()) {
    const nlohmann::json& d = json.at("domainShift");
    OptionReader dr(d, "domainShift", {"kind", "amount"});
    if (!dr.has("kind")) fail("domainShift: kind is required (invert, shift, scale, noise)");
    c.shift.kind = text(d, "domainShift", "kind");
    const std::string& k = c.shift.kind;
    if (k != "invert" && k != "shift" && k != "scale" && k != "noise") {
      fail("domainShift: unknown kind '", k, "' (known: invert, shift, scale, noise)");
    }
    c.shift.amount = dr.number("amount", k == "invert" ? 1.0 : k == "scale" ? 2.0 : 0.5);
    const double a = c.shift.amount;
    if (!std::isfinite(a)) fail("domainShift: amount must be a finite number, got ", a);
    if (k == "invert" && !(a >= 0 && a <= 1)) fail("domainShift: invert's amount must be in [0, 1], got ", a);
    if (k == "scale" && !(a > 0)) fail("domainShift: scale's amount must be > 0, got ", a);
    if (k == "noise" && !(a >= 0)) fail("domainShift: noise's amount must be >= 0, got ", a);
  }
  if (r.has("preprocess") && !json.at("preprocess").is_null()) {
    const Preprocessor p = preprocessor_from_json(json.at("preprocess"));  // validates
    c.preprocess = p.kind();
    c.preprocess_eps = p.eps();
  }
  if (r.has("probes")) c.probes = probe_config_from_json(json.at("probes"), c.optimizer.lr);
  if (c.batch_size < 1 || c.batch_size > 4096) fail("config: batchSize must be in [1, 4096], got ", c.batch_size);
  if (c.steps < 1 || c.steps > 10000000) fail("config: steps must be in [1, 10000000], got ", c.steps);
  if (!r.has("evalInterval")) c.eval_interval = std::max<int64_t>(1, c.steps / 20);
  if (c.eval_interval < 1) fail("config: evalInterval must be an integer >= 1, got ", c.eval_interval);
  return c;
}

nlohmann::json run_config_to_json(const RunConfig& c) {
  nlohmann::json methods = nlohmann::json::array();
  for (const MethodSpec& m : c.methods) {
    methods.push_back({{"id", m.id}, {"method", m.method}, {"options", m.options}, {"label", m.label}});
  }
  const OptimizerOptions& o = c.optimizer;
  nlohmann::json optimizer = {{"kind", o.kind}, {"lr", o.lr}, {"weightDecay", o.weight_decay}};
  if (o.kind == "sgd") {
    optimizer["momentum"] = o.momentum;
    optimizer["nesterov"] = o.nesterov;
  } else {
    optimizer["beta1"] = o.beta1;
    optimizer["beta2"] = o.beta2;
    optimizer["eps"] = o.eps;
  }
  nlohmann::json out = {
      {"dataset", dataset_spec_to_json(c.dataset)},
      {"model", model_spec_to_json(c.model)},
      {"methods", methods},
      {"batchSize", c.batch_size},
      {"batching", c.noniid_classes ? "noniid:" + std::to_string(c.noniid_classes) : "iid"},
      {"optimizer", optimizer},
      {"schedule", {{"kind", c.schedule.kind}, {"stepSize", c.schedule.step_size}, {"gamma", c.schedule.gamma},
                    {"minLr", c.schedule.min_lr}, {"warmup", c.schedule.warmup}}},
      {"steps", c.steps},
      {"evalInterval", c.eval_interval},
      {"seed", c.seed},
      {"domainShift", c.shift.kind.empty() ? nlohmann::json(nullptr)
                                           : nlohmann::json{{"kind", c.shift.kind}, {"amount", c.shift.amount}}},
      {"preprocess", c.preprocess.empty() ? nlohmann::json(nullptr)
                                          : nlohmann::json{{"kind", c.preprocess}, {"eps", c.preprocess_eps}}},
      {"renormSchedule", c.renorm.enabled ? nlohmann::json{{"warmup", c.renorm.warmup}, {"rampEnd", c.renorm.ramp_end}}
                                          : nlohmann::json(false)},
  };
  // Only a run with probes names them (a run without has the result it always had).
  if (c.probes.enabled()) {
    out["probes"] = {{"landscape", c.probes.landscape}, {"ics", c.probes.ics},
                     {"etas", c.probes.landscape ? nlohmann::json(c.probes.etas) : nlohmann::json(nullptr)}};
  }
  return out;
}

}  // namespace normlab
