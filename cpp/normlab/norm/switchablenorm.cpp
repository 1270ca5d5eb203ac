#include "normlab/norm/switchablenorm.h"

#include <memory>

#include "normlab/norm/method_info.h"

#include <algorithm>
#include <cmath>

#include "normlab/core/error.h"
#include "normlab/core/reduce.h"

namespace normlab {

namespace {
enum { kIN = 0, kLN = 1, kBN = 2 };
}  // namespace

void switchable_moments(double* mu_in, double* var_in, double* mu_ln, double* var_ln,
                        double* mu_bn, double* var_bn, const float* x, int64_t N, int64_t C,
                        int64_t S) {
  moments(mu_in, var_in, x, 1, N * C, S);
  // mean_k(var_in + mu_in^2) - mu^2 == mean_k(var_in) + mean_k((mu_in - mu)^2): the second form.
  for (int64_t n = 0; n < N; ++n) {
    double m = 0;
    for (int64_t c = 0; c < C; ++c) m += mu_in[n * C + c];
    m /= static_cast<double>(C);
    double v = 0;
    for (int64_t c = 0; c < C; ++c) {
      const double d = mu_in[n * C + c] - m;
      v += var_in[n * C + c] + d * d;
    }
    mu_ln[n] = m;
    var_ln[n] = v / static_cast<double>(C);
  }
  for (int64_t c = 0; c < C; ++c) {
    double m = 0;
    for (int64_t n = 0; n < N; ++n) m += mu_in[n * C + c];
    m /= static_cast<double>(N);
    double v = 0;
    for (int64_t n = 0; n < N; ++n) {
      const double d = mu_in[n * C + c] - m;
      v += var_in[n * C + c] + d * d;
    }
    mu_bn[c] = m;
    var_bn[c] = v / static_cast<double>(N);
  }
}

void switchable_forward(float* y, float* mean, float* rstd, const float* x, const double* mu_in,
                        const double* var_in, const double* mu_ln, const double* var_ln,
                        const double* mu_bn, const double* var_bn, const double* wm,
                        const double* wv, const float* gamma, const float* beta, double eps,
                        int64_t N, int64_t C, int64_t S) {
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t nc = n * C + c;
      const double m = wm[kIN] * mu_in[nc] + wm[kLN] * mu_ln[n] + wm[kBN] * mu_bn[c];
      const double v = wv[kIN] * var_in[nc] + wv[kLN] * var_ln[n] + wv[kBN] * var_bn[c];
      const double r = 1.0 / std::sqrt(v + eps);
      mean[nc] = static_cast<float>(m);
      rstd[nc] = static_cast<float>(r);
      const float mc = mean[nc], k = static_cast<float>(gamma[c] * r), b = beta[c];
      const float* xp = x + nc * S;
      float* yp = y + nc * S;
      for (int64_t s = 0; s < S; ++s) yp[s] = (xp[s] - mc) * k + b;
    }
  }
}

void switchable_backward(float* dx, float* dgamma, float* dbeta, double* dmw, double* dvw,
                         const float* dy, const float* x, const float* mean, const float* rstd,
                         const double* mu_in, const double* var_in, const double* mu_ln,
                         const double* var_ln, const double* mu_bn, const double* var_bn,
                         const double* wm, const double* wv, const float* gamma, int64_t N,
                         int64_t C, int64_t S) {
  const size_t NC = static_cast<size_t>(N * C);
  std::vector<double> gm(NC), gv(NC);  // dL/dmean, dL/dvar per (n, c)
  std::vector<double> dg(static_cast<size_t>(C), 0.0), db(static_cast<size_t>(C), 0.0);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t nc = n * C + c;
      const float mc = mean[nc], r = rstd[nc];
      const float* dyp = dy + nc * S;
      const float* xp = x + nc * S;
      double a = 0, b = 0;  // sum dy, sum dy * xhat
      for (int64_t s = 0; s < S; ++s) {
        a += dyp[s];
        b += dyp[s] * ((xp[s] - mc) * r);
      }
      db[c] += a;
      dg[c] += b;
      gm[nc] = -double{r} * gamma[c] * a;
      gv[nc] = -0.5 * double{r} * r * gamma[c] * b;
    }
  }
  // Averages over channels (LN) and over the batch (BN).
  std::vector<double> gm_l(static_cast<size_t>(N), 0.0), gv_l(static_cast<size_t>(N), 0.0);
  std::vector<double> gm_b(static_cast<size_t>(C), 0.0), gv_b(static_cast<size_t>(C), 0.0);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      gm_l[n] += gm[n * C + c] / static_cast<double>(C);
      gv_l[n] += gv[n * C + c] / static_cast<double>(C);
      gm_b[c] += gm[n * C + c] / static_cast<double>(N);
      gv_b[c] += gv[n * C + c] / static_cast<double>(N);
    }
  }
  for (int k = 0; k < 3; ++k) dmw[k] = dvw[k] = 0;
  const double Sd = static_cast<double>(S);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t nc = n * C + c;
      // The mixture weights: sum Gm (mu_k - mean), sum Gv (var_k - var), in double.
      const double m = wm[kIN] * mu_in[nc] + wm[kLN] * mu_ln[n] + wm[kBN] * mu_bn[c];
      const double v = wv[kIN] * var_in[nc] + wv[kLN] * var_ln[n] + wv[kBN] * var_bn[c];
      dmw[kIN] += gm[nc] * (mu_in[nc] - m);
      dmw[kLN] += gm[nc] * (mu_ln[n] - m);
      dmw[kBN] += gm[nc] * (mu_bn[c] - m);
      dvw[kIN] += gv[nc] * (var_in[nc] - v);
      dvw[kLN] += gv[nc] * (var_ln[n] - v);
      dvw[kBN] += gv[nc] * (var_bn[c] - v);
      // dx through the shared moments.
      const double dt = wv[kIN] * gv[nc] + wv[kLN] * gv_l[n] + wv[kBN] * gv_b[c];
      const double dmu = wm[kIN] * gm[nc] + wm[kLN] * gm_l[n] + wm[kBN] * gm_b[c] +
                         2 * wv[kLN] * (mu_in[nc] - mu_ln[n]) * gv_l[n] +
                         2 * wv[kBN] * (mu_in[nc] - mu_bn[c]) * gv_b[c];
      const float k = gamma[c] * rstd[nc];
      const float base = static_cast<float>(dmu / Sd);
      const float slope = static_cast<float>(2 * dt / Sd);
      const float mi = static_cast<float>(mu_in[nc]);
      const float* dyp = dy + nc * S;
      const float* xp = x + nc * S;
      float* dxp = dx + nc * S;
      for (int64_t s = 0; s < S; ++s) dxp[s] = dyp[s] * k + base + (xp[s] - mi) * slope;
    }
  }
  for (int k = 0; k < 3; ++k) {
    dmw[k] *= wm[k];
    dvw[k] *= wv[k];
  }
  for (int64_t c = 0; c < C; ++c) {
    dgamma[c] = static_cast<float>(dg[c]);
    dbeta[c] = static_cast<float>(db[c]);
  }
}

SwitchableNorm::SwitchableNorm(const SwitchableNormOptions& options)
    : NormLayer("switchablenorm"), options_(options) {
  const std::string& who = method();
  check_channel_count(who, options.channels);
  check_eps(who, options.eps);
  check_momentum(who, options.momentum);
  const size_t C = static_cast<size_t>(options.channels);
  add_affine(C, options.affine);
  // One logit per normalizer used, in the order IN, LN, BN; ones (equal weights) as the paper.
  const size_t K = 1 + (options.use_in ? 1 : 0) + (options.use_bn ? 1 : 0);
  weights_ = params_.size();
  add_param("meanWeight", K, 1.0f);
  add_param("varWeight", K, 1.0f);
  if (options.use_bn) {
    add_state("runningMean", C, 0.0f);
    add_state("runningVar", C, 1.0f);
  }
}

void SwitchableNorm::mixture(double* wm, double* wv) const {
  const bool used[3] = {options_.use_in, true, options_.use_bn};
  for (int which = 0; which < 2; ++which) {
    const std::vector<float>& logits = params_[weights_ + which].value;
    double* w = which == 0 ? wm : wv;
    const double top = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    size_t i = 0;
    for (int k = 0; k < 3; ++k) {
      w[k] = used[k] ? std::exp(double{logits[i++]} - top) : 0.0;
      sum += w[k];
    }
    for (int k = 0; k < 3; ++k) w[k] /= sum;
  }
}

void SwitchableNorm::check_shape(const Shape& shape) const {
  check_channels(method(), shape, options_.channels, 2);
  if (options_.use_in && spatial_size(shape) == 1) {
    fail(method(), ": input shape ", to_string(shape), " has 1 spatial element, too few for "
         "instance statistics; use useIN: false to normalize it with LN and BN statistics only");
  }
}

void SwitchableNorm::run(const float* x, const Shape& shape, float* y, bool training, Stats& st) {
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  const size_t NC = static_cast<size_t>(N * C), Ns = static_cast<size_t>(N), Cs = static_cast<size_t>(C);
  st.mu_in.resize(NC);
  st.var_in.resize(NC);
  st.mu_ln.resize(Ns);
  st.var_ln.resize(Ns);
  st.mu_bn.resize(Cs);
  st.var_bn.resize(Cs);
  st.mean.resize(NC);
  st.rstd.resize(NC);
  switchable_moments(st.mu_in.data(), st.var_in.data(), st.mu_ln.data(), st.var_ln.data(),
                     st.mu_bn.data(), st.var_bn.data(), x, N, C, S);
  mixture(st.wm, st.wv);
  if (options_.use_bn) {
    float* running_mean = state_[0].value.data();
    float* running_var = state_[1].value.data();
    if (training) {
      const double f = options_.momentum;
      for (size_t c = 0; c < Cs; ++c) {
        running_mean[c] = static_cast<float>((1 - f) * running_mean[c] + f * st.mu_bn[c]);
        running_var[c] = static_cast<float>((1 - f) * running_var[c] + f * st.var_bn[c]);
      }
    } else {
      st.mu_bn.assign(running_mean, running_mean + C);
      st.var_bn.assign(running_var, running_var + C);
    }
  }
  switchable_forward(y, st.mean.data(), st.rstd.data(), x, st.mu_in.data(), st.var_in.data(),
                     st.mu_ln.data(), st.var_ln.data(), st.mu_bn.data(), st.var_bn.data(), st.wm,
                     st.wv, gamma(), beta(), options_.eps, N, C, S);
}

void SwitchableNorm::forward_train(const float* x, const Shape& shape, float* y) {
  run(x, shape, y, true, cache_);
}

void SwitchableNorm::forward_infer(const float* x, const Shape& shape, float* y) {
  Stats st;  // not the training cache, which backward may still need
  run(x, shape, y, false, st);
}

void SwitchableNorm::backward_impl(const float* dy, const Shape& shape, float* dx) {
  double dmw[3], dvw[3];
  const Stats& st = cache_;
  switchable_backward(dx, dgamma(), dbeta(), dmw, dvw, dy, x_.data(), st.mean.data(), st.rstd.data(),
                      st.mu_in.data(), st.var_in.data(), st.mu_ln.data(), st.var_ln.data(),
                      st.mu_bn.data(), st.var_bn.data(), st.wm, st.wv, gamma(), shape[0],
                      shape[1], spatial_size(shape));
  const bool used[3] = {options_.use_in, true, options_.use_bn};
  size_t i = 0;
  for (int k = 0; k < 3; ++k) {
    if (!used[k]) continue;
    params_[weights_].grad[i] = static_cast<float>(dmw[k]);
    params_[weights_ + 1].grad[i] = static_cast<float>(dvw[k]);
    ++i;
  }
}

bool SwitchableNorm::set_population_statistics(const float* x, const Shape& shape) {
  if (!options_.use_bn) return false;
  check_channels(method(), shape, options_.channels, 2);
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  std::vector<double> mu_in(static_cast<size_t>(N * C)), var_in(mu_in.size());
  std::vector<double> mu_ln(static_cast<size_t>(N)), var_ln(mu_ln.size());
  std::vector<double> mu_bn(static_cast<size_t>(C)), var_bn(mu_bn.size());
  switchable_moments(mu_in.data(), var_in.data(), mu_ln.data(), var_ln.data(), mu_bn.data(),
                     var_bn.data(), x, N, C, S);
  for (int64_t c = 0; c < C; ++c) {
    state_[0].value[c] = static_cast<float>(mu_bn[c]);
    state_[1].value[c] = static_cast<float>(var_bn[c]);
  }
  return true;
}

void SwitchableNorm::check_state_values(const std::string& name, const float* values, size_t n) const {
  NormLayer::check_state_values(name, values, n);
  for (size_t i = 0; i < n; ++i) {
    if (name == "runningVar" && values[i] < 0) {
      fail(method(), ": runningVar[", i, "] must be >= 0, got ", values[i]);
    }
  }
}

namespace {

// [N,C] (MLPs) has no instance statistics: the mixture is then over LN and BN.
void model_defaults(nlohmann::json& o, const Shape& input_shape) {
  if ((!o.contains("useIN") || o["useIN"].is_null()) && spatial_size(input_shape) == 1) o["useIN"] = false;
}

std::string label_of(const nlohmann::json& options) {
  auto off = [&](const char* key) { return options.contains(key) && options.at(key) == false; };
  std::string label = switchablenorm_info().label;
  if (off("useIN")) label += " (no IN)";
  if (off("useBN")) label += " (no BN)";
  return label;
}

std::unique_ptr<NormLayer> create(const nlohmann::json& options) {
  const MethodInfo& info = switchablenorm_info();
  OptionReader r(options, info.name, info.option_keys());
  SwitchableNormOptions o;
  read_channels_eps(r, o);
  o.momentum = read_momentum_not_null(r, info.name, o.momentum);
  o.affine = r.boolean("affine", o.affine);
  o.use_in = r.boolean("useIN", o.use_in);
  o.use_bn = r.boolean("useBN", o.use_bn);
  return std::make_unique<SwitchableNorm>(o);
}

nlohmann::json options_of(const NormLayer& layer) {
  const SwitchableNormOptions& o = static_cast<const SwitchableNorm&>(layer).options();
  return {{"channels", o.channels}, {"eps", o.eps},        {"momentum", o.momentum},
          {"affine", o.affine},     {"useIN", o.use_in},   {"useBN", o.use_bn}};
}

}  // namespace

const MethodInfo& switchablenorm_info() {
  static const MethodInfo info = [] {
    const SwitchableNormOptions d;
    MethodInfo m;
    m.name = "switchablenorm";
    m.aliases = {"sn"};
    m.label = "Switchable Norm";
    OptionInfo use_in = boolean_option("useIN", "use_in", d.use_in,
                                       "mix in InstanceNorm's statistics (a model turns it off for [N, C])");
    use_in.from_model = true;
    m.options = {channels_option(), eps_option(d.eps), momentum_option(d.momentum), affine_option(d.affine),
                 use_in,
                 boolean_option("useBN", "use_bn", d.use_bn,
                                "mix in BatchNorm's statistics (and keep running statistics)")};
    m.uses_batch_statistics = true;
    m.population_statistics = {"runningMean", "runningVar"};
    m.create = create;
    m.options_of = options_of;
    m.model_defaults = model_defaults;
    m.label_of = label_of;
    return m;
  }();
  return info;
}

}  // namespace normlab
