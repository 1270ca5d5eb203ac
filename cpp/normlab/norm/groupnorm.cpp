#include "normlab/norm/groupnorm.h"

#include <algorithm>
#include <memory>

#include "normlab/norm/method_info.h"

#include <cmath>

#include "normlab/core/error.h"
#include "normlab/core/reduce.h"

namespace normlab {

void groupnorm_forward(float* y, float* mean, float* rstd, const float* x, const float* gamma,
                       const float* beta, double eps, int64_t N, int64_t C, int64_t S, int64_t G) {
  const int64_t K = C / G;  // channels per group; each (n, g) is a contiguous run of K*S values
  std::vector<double> m(static_cast<size_t>(N * G)), v(static_cast<size_t>(N * G));
  moments(m.data(), v.data(), x, 1, N * G, K * S);
  for (int64_t ng = 0; ng < N * G; ++ng) {
    mean[ng] = static_cast<float>(m[ng]);
    rstd[ng] = static_cast<float>(1.0 / std::sqrt(v[ng] + eps));
  }
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t ng = n * G + c / K;
      const float mc = mean[ng], k = rstd[ng] * gamma[c], b = beta[c];
      const float* xp = x + (n * C + c) * S;
      float* yp = y + (n * C + c) * S;
      for (int64_t s = 0; s < S; ++s) yp[s] = (xp[s] - mc) * k + b;
    }
  }
}

void groupnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                        const float* mean, const float* rstd, const float* gamma, int64_t N,
                        int64_t C, int64_t S, int64_t G) {
  const int64_t K = C / G;
  const double M = static_cast<double>(K) * static_cast<double>(S);
  std::vector<double> dg(static_cast<size_t>(C), 0.0), db(static_cast<size_t>(C), 0.0);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < G; ++g) {
      const float mg = mean[n * G + g], sg = rstd[n * G + g];
      // Pass 1: per channel sums of dy and dy*xhat, folded into the group's sums with gamma.
      double sum_g = 0, sum_g_xhat = 0;
      for (int64_t c = g * K; c < (g + 1) * K; ++c) {
        const float* dyp = dy + (n * C + c) * S;
        const float* xp = x + (n * C + c) * S;
        float a = 0, b = 0;
        for (int64_t s = 0; s < S; ++s) {
          a += dyp[s];
          b += dyp[s] * ((xp[s] - mg) * sg);
        }
        db[c] += a;
        dg[c] += b;
        sum_g += double{gamma[c]} * a;
        sum_g_xhat += double{gamma[c]} * b;
      }
      const float mean_g = static_cast<float>(sum_g / M);
      const float mean_g_xhat = static_cast<float>(sum_g_xhat / M);
      // Pass 2: dx for the group.
      for (int64_t c = g * K; c < (g + 1) * K; ++c) {
        const float* dyp = dy + (n * C + c) * S;
        const float* xp = x + (n * C + c) * S;
        float* dxp = dx + (n * C + c) * S;
        const float gc = gamma[c];
        for (int64_t s = 0; s < S; ++s) {
          const float xhat = (xp[s] - mg) * sg;
          dxp[s] = sg * (dyp[s] * gc - mean_g - xhat * mean_g_xhat);
        }
      }
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    dgamma[c] = static_cast<float>(dg[c]);
    dbeta[c] = static_cast<float>(db[c]);
  }
}

GroupNorm::GroupNorm(const GroupNormOptions& options) : NormLayer("groupnorm"), options_(options) {
  check_channel_count(method(), options.channels);
  if (options.groups < 1) fail(method(), ": groups must be a positive integer, got ", options.groups);
  if (options.channels % options.groups != 0) {
    fail(method(), ": groups (", options.groups, ") must divide channels (", options.channels, ")");
  }
  check_eps(method(), options.eps);
  const size_t C = static_cast<size_t>(options.channels);
  add_affine(C, options.affine);
}

void GroupNorm::check_shape(const Shape& shape) const {
  check_channels(method(), shape, options_.channels, 2);
}

void GroupNorm::forward_train(const float* x, const Shape& shape, float* y) {
  const int64_t N = shape[0], G = options_.groups;
  mean_.resize(static_cast<size_t>(N * G));
  rstd_.resize(static_cast<size_t>(N * G));
  groupnorm_forward(y, mean_.data(), rstd_.data(), x, gamma(), beta(), options_.eps, N, shape[1],
                    spatial_size(shape), G);
}

void GroupNorm::forward_infer(const float* x, const Shape& shape, float* y) {
  const int64_t N = shape[0], G = options_.groups;
  std::vector<float> mean(static_cast<size_t>(N * G)), rstd(static_cast<size_t>(N * G));
  groupnorm_forward(y, mean.data(), rstd.data(), x, gamma(), beta(), options_.eps, N, shape[1],
                    spatial_size(shape), G);
}

void GroupNorm::backward_impl(const float* dy, const Shape& shape, float* dx) {
  groupnorm_backward(dx, dgamma(), dbeta(), dy, x_.data(), mean_.data(), rstd_.data(), gamma(),
                     shape[0], shape[1], spatial_size(shape), options_.groups);
}

int64_t default_groups(int64_t channels) {
  int64_t g = std::min<int64_t>(8, channels);
  while (g > 1 && channels % g != 0) --g;
  return std::max<int64_t>(g, 1);
}

namespace {

void model_defaults(nlohmann::json& o, const Shape& input_shape) {
  if (o.contains("groups") && !o["groups"].is_null()) return;
  // From the channels the layer will have (a given non-integer channels is create_norm's error to
  // report; fall back to the input's).
  const nlohmann::json& c = o.at("channels");
  int64_t channels = input_shape[1];
  if (c.is_number()) {
    const double d = c.get<double>();
    if (d >= 1 && d <= static_cast<double>(kMaxElements) && d == std::floor(d)) channels = static_cast<int64_t>(d);
  }
  o["groups"] = default_groups(channels);
}

std::string label_of(const nlohmann::json& options) {
  std::string label = groupnorm_info().label;
  if (options.contains("groups")) label += " (" + options.at("groups").dump() + " groups)";
  return label;
}

std::unique_ptr<NormLayer> create(const nlohmann::json& options) {
  const MethodInfo& info = groupnorm_info();
  OptionReader r(options, info.name, info.option_keys());
  GroupNormOptions o;
  o.channels = r.integer("channels");
  o.groups = r.integer("groups");
  o.eps = r.number("eps", o.eps);
  o.affine = r.boolean("affine", o.affine);
  return std::make_unique<GroupNorm>(o);
}

nlohmann::json options_of(const NormLayer& layer) {
  const GroupNormOptions& o = static_cast<const GroupNorm&>(layer).options();
  return {{"channels", o.channels}, {"groups", o.groups}, {"eps", o.eps}, {"affine", o.affine}};
}

}  // namespace

const MethodInfo& groupnorm_info() {
  static const MethodInfo info = [] {
    const GroupNormOptions d;
    MethodInfo m;
    m.name = "groupnorm";
    m.aliases = {"gn"};
    m.label = "GroupNorm";
    OptionInfo groups = integer_option("groups", "groups", nullptr, 1,
                                       "groups of channels; must divide channels (a model picks up to 32)");
    groups.from_model = true;
    m.options = {channels_option(), groups, eps_option(d.eps), affine_option(d.affine)};
    m.create = create;
    m.options_of = options_of;
    m.model_defaults = model_defaults;
    m.label_of = label_of;
    return m;
  }();
  return info;
}

}  // namespace normlab
