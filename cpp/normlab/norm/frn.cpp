#include "normlab/norm/frn.h"

#include <memory>

#include "normlab/norm/method_info.h"

#include <cmath>

#include "normlab/core/error.h"

namespace normlab {

void frn_forward(float* z, float* rstd, float* tlu, const float* x, const float* gamma,
                 const float* beta, const float* tau, double e, int64_t N, int64_t C, int64_t S) {
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const int64_t c = nc % C;
    const float* xp = x + nc * S;
    double sq = 0;
    for (int64_t s = 0; s < S; ++s) sq += static_cast<double>(xp[s]) * xp[s];
    const float r = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(S) + e));
    rstd[nc] = r;
    const float k = gamma[c] * r, b = beta[c], t = tau[c];
    float* zp = z + nc * S;
    float* tp = tlu == nullptr ? nullptr : tlu + nc * S;
    for (int64_t s = 0; s < S; ++s) {
      const float y = xp[s] * k + b;
      if (tp != nullptr) tp[s] = y > t ? 1.0f : y == t ? 0.5f : 0.0f;
      zp[s] = y > t || std::isnan(y) ? y : t;  // NaN propagates, as in torch.maximum
    }
  }
}

void frn_backward(float* dx, float* dgamma, float* dbeta, float* dtau, double* de, const float* dz,
                  const float* x, const float* rstd, const float* tlu, const float* gamma,
                  int64_t N, int64_t C, int64_t S) {
  std::vector<double> dg(static_cast<size_t>(C), 0.0), db(static_cast<size_t>(C), 0.0),
      dt(static_cast<size_t>(C), 0.0);
  double e_sum = 0;
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const int64_t c = nc % C;
    const float r = rstd[nc];
    const float* dzp = dz + nc * S;
    const float* xp = x + nc * S;
    const float* tp = tlu + nc * S;
    double sum_g = 0, sum_g_xhat = 0, sum_t = 0;
    for (int64_t s = 0; s < S; ++s) {
      const float g = dzp[s] * tp[s];
      sum_t += static_cast<double>(dzp[s]) * (1.0f - tp[s]);
      sum_g += g;
      sum_g_xhat += static_cast<double>(g) * (xp[s] * r);
    }
    dt[c] += sum_t;
    db[c] += sum_g;
    dg[c] += sum_g_xhat;
    e_sum += static_cast<double>(gamma[c]) * r * r * sum_g_xhat;
    const float mean_g_xhat = static_cast<float>(sum_g_xhat / static_cast<double>(S));
    const float k = gamma[c] * r;
    float* dxp = dx + nc * S;
    for (int64_t s = 0; s < S; ++s) {
      const float g = dzp[s] * tp[s];
      dxp[s] = k * (g - (xp[s] * r) * mean_g_xhat);
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    dgamma[c] = static_cast<float>(dg[c]);
    dbeta[c] = static_cast<float>(db[c]);
    dtau[c] = static_cast<float>(dt[c]);
  }
  *de = -0.5 * e_sum;
}

FilterResponseNorm::FilterResponseNorm(const FrnOptions& options)
    : NormLayer("frn"), options_(options) {
  check_channel_count(method(), options.channels);
  check_eps(method(), options.eps);
  const size_t C = static_cast<size_t>(options.channels);
  add_affine(C, /*affine=*/true);
  add_param("tau", C, 0.0f);
  if (options.learnable_eps) add_param("eps", 1, kLearnedEpsInit);
}

double FilterResponseNorm::effective_eps() const {
  if (!options_.learnable_eps) return options_.eps;
  return options_.eps + std::fabs(static_cast<double>(params_[3].value[0]));
}

void FilterResponseNorm::check_shape(const Shape& shape) const {
  check_channels(method(), shape, options_.channels, 2);
  if (!options_.learnable_eps && spatial_size(shape) == 1) {
    fail(method(), ": input shape ", to_string(shape), " has one value per sample and channel, "
         "where nu2 = x^2 and FRN is gamma*sign(x) + beta; use learnableEps: true (the paper's "
         "remedy for 1x1 activations) or an input with spatial dims");
  }
}

void FilterResponseNorm::forward_train(const float* x, const Shape& shape, float* y) {
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  rstd_.resize(static_cast<size_t>(N * C));
  tlu_.resize(static_cast<size_t>(N * C * S));
  frn_forward(y, rstd_.data(), tlu_.data(), x, gamma(), beta(), params_[2].value.data(),
              effective_eps(), N, C, S);
}

void FilterResponseNorm::forward_infer(const float* x, const Shape& shape, float* y) {
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  std::vector<float> rstd(static_cast<size_t>(N * C));  // not the training cache
  frn_forward(y, rstd.data(), nullptr, x, gamma(), beta(), params_[2].value.data(),
              effective_eps(), N, C, S);
}

void FilterResponseNorm::backward_impl(const float* dy, const Shape& shape, float* dx) {
  const int64_t N = shape[0], C = shape[1], S = spatial_size(shape);
  double de = 0;
  frn_backward(dx, dgamma(), dbeta(), params_[2].grad.data(), &de, dy, x_.data(), rstd_.data(),
               tlu_.data(), gamma(), N, C, S);
  if (options_.learnable_eps) {
    // e = eps + |epsL|: d|epsL|/depsL = sign(epsL), 0 at 0 (torch.abs's subgradient).
    const float l = params_[3].value[0];
    params_[3].grad[0] = static_cast<float>(de * (l > 0 ? 1 : l < 0 ? -1 : 0));
  }
}

namespace {

std::unique_ptr<NormLayer> create(const nlohmann::json& options) {
  const MethodInfo& info = frn_info();
  OptionReader r(options, info.name, info.option_keys());
  FrnOptions o;
  read_channels_eps(r, o);
  o.learnable_eps = r.boolean("learnableEps", o.learnable_eps);
  return std::make_unique<FilterResponseNorm>(o);
}

nlohmann::json options_of(const NormLayer& layer) {
  const FrnOptions& o = static_cast<const FilterResponseNorm&>(layer).options();
  return {{"channels", o.channels}, {"eps", o.eps}, {"learnableEps", o.learnable_eps}};
}

}  // namespace

const MethodInfo& frn_info() {
  static const MethodInfo info = [] {
    const FrnOptions d;
    MethodInfo m;
    m.name = "frn";
    m.aliases = {};
    m.label = "FRN + TLU";
    OptionInfo eps = eps_option(d.eps);
    eps.help = "added to nu^2, the mean square; the lower bound of the learned eps";
    m.options = {channels_option(), eps,
                 boolean_option("learnableEps", "learnable_eps", d.learnable_eps,
                                "learn eps (as the paper does for 1x1 activations)")};
    m.create = create;
    m.options_of = options_of;
    return m;
  }();
  return info;
}

}  // namespace normlab
