#include "preprocess_handle.h"

#include <new>
#include <vector>

#include "guard.h"
#include "normlab/core/error.h"
#include "normlab/core/shape.h"

using emscripten::typed_memory_view;
using emscripten::val;

namespace normlab::wasm {

namespace {

int g_live = 0;

// n and f arrive as JS numbers: whole, positive, and n*f matching the array's length.
void check_counts(double n, double f, size_t length) {
  if (!(n >= 1) || n != static_cast<double>(static_cast<int64_t>(n)) || !(f >= 1) ||
      f != static_cast<double>(static_cast<int64_t>(f)) || n * f > static_cast<double>(kMaxElements)) {
    fail("preprocess: the shape must be [N, ...features] with positive integer dims");
  }
  if (static_cast<double>(length) != n * f) {
    fail("preprocess: ", length, " values do not make ", static_cast<int64_t>(n), " samples of ",
         static_cast<int64_t>(f), " features");
  }
}

}  // namespace

PreprocessHandle::PreprocessHandle() { ++g_live; }
PreprocessHandle::~PreprocessHandle() { --g_live; }
int PreprocessHandle::live_count() { return g_live; }

val PreprocessHandle::fit(const std::string& kind, double eps, const val& x, double n, double f) {
  return guarded("preprocess", ErrorForm::kString, [&] {
    const size_t length = x["length"].as<size_t>();
    check_counts(n, f, length);
    std::vector<float> data(length);
    val(typed_memory_view(length, data.data())).call<void>("set", x);
    auto pre = std::make_unique<Preprocessor>(kind, eps);
    pre->fit(data.data(), static_cast<int64_t>(n), static_cast<int64_t>(f));
    pre_ = std::move(pre);
    return val::undefined();
  });
}

val PreprocessHandle::apply(const val& in, double n, bool forward) const {
  return guarded("preprocess", ErrorForm::kString, [&] {
    const size_t length = in["length"].as<size_t>();
    check_counts(n, static_cast<double>(pre_->features()), length);
    std::vector<float> data(length);
    val(typed_memory_view(length, data.data())).call<void>("set", in);
    if (forward) {
      pre_->transform(data.data(), data.data(), static_cast<int64_t>(n));
    } else {
      pre_->inverse(data.data(), data.data(), static_cast<int64_t>(n));
    }
    return val(typed_memory_view(length, data.data())).call<val>("slice");
  });
}

val PreprocessHandle::transform(const val& x, double n) const { return apply(x, n, true); }
val PreprocessHandle::inverse(const val& y, double n) const { return apply(y, n, false); }
int PreprocessHandle::features() const { return static_cast<int>(pre_->features()); }

}  // namespace normlab::wasm
