// gelu.cpp: the op test's GELU cases, forward and backward, erf and tanh forms: odd sizes, and
// inputs reaching far into both tails (where a naive formula overflows into NaN).
#include "common.h"

namespace ops {
namespace {

void gelu_case(mk_dtype dt, const std::vector<float>& x0, bool tanh_form, const char* kind) {
  const int64_t n = int64_t(x0.size());
  const std::string what = fmt("gelu %s %s n=%lld %s", dtype_name(dt), tanh_form ? "tanh" : "erf", (long long)n, kind);
  auto x = rounded(x0, dt), dy = rnd(n, dt);
  CpuBuf cx(x), cdy(dy), cy(nans(n)), cdx(nans(n));
  GpuBuf gx(x, dt), gdy(dy, dt), gy(nans(n), dt), gdx(nans(n), dt);
  if (!CPU(gelu_forward(g_cpu_ctx, cy.p, cx.p, MK_F32, n, tanh_form), what) ||
      !CPU(gelu_backward(g_cpu_ctx, cdx.p, cdy.p, cx.p, MK_F32, n, tanh_form), what) ||
      !GPU(gelu_forward(g_gpu_ctx, gy.p, gx.p, dt, n, tanh_form), what) || !GPU(gelu_backward(g_gpu_ctx, gdx.p, gdy.p, gx.p, dt, n, tanh_form), what))
    return;
  compare(what, dt, {{"y", gy.get(), cy.get()}, {"dx", gdx.get(), cdx.get()}});
}

void check_gelu() {
  for (mk_dtype dt : kDtypes)
    for (bool tanh_form : {false, true}) {
      // A single element at scale 1: far in the left tail (below −5.3) the CPU's erf form rounds y
      // to 0 where the true value is ~1e-13, and a lone element has no larger neighbour to give
      // the comparison its scale.
      gelu_case(dt, randn(1, 1.f), tanh_form, "normal(0, 1)");
      for (int64_t n : {7, 33, 1025, 100003}) gelu_case(dt, randn(n, 3.f), tanh_form, "normal(0, 3)");
      // Left tail (Φ near 0; exp(−x²/2) underflows, e^{−2u} overflows: NaN for a naive formula)
      // among ordinary values, so that the comparison's scale stays that of the ordinary ones.
      auto left = randn(4096, 1.f);
      const float lt[] = {-1e4f, -300.f, -100.f, -30.f, -13.f, -10.f, -7.5f, -5.5f, -4.f, -3.f};
      for (size_t i = 0; i < sizeof lt / sizeof lt[0]; ++i) left[i * 397] = lt[i];
      gelu_case(dt, left, tanh_form, "left tail");
      // Right tail alone (y ≈ x, y' ≈ 1): 3 to 1e4.
      std::vector<float> right;
      for (float v = 3.f; v < 1e4f; v *= 1.37f) right.push_back(v);
      gelu_case(dt, right, tanh_form, "right tail");
    }
}

}  // namespace

MK_OP_CASES(gelu, {"gelu_forward", "gelu_backward"}, check_gelu, nullptr);

}  // namespace ops
