// residual.cpp: the op test's residual cases, out = x + s ⊙ h and its backward: gamma or the
// scalar alpha, dgamma wanted or not, row counts past the backward's partial blocks.
#include "common.h"

namespace ops {
namespace {

void residual_case(mk_dtype dt, int64_t R, int64_t D, bool gamma, bool dgamma, float alpha = -0.75f) {
  const std::string what = fmt("residual %s R=%lld D=%lld %s dgamma=%d", dtype_name(dt), (long long)R, (long long)D,
                               gamma ? "gamma" : fmt("alpha=%g", alpha).c_str(), dgamma);
  auto x = rnd(R * D, dt), h = rnd(R * D, dt), g = rnd(D, dt), dy = rnd(R * D, dt), dg = rnd(D, dt);
  CpuBuf cx(x), ch(h), cg(g), cdy(dy), cdg(dg), cout(nans(R * D)), cdh(nans(R * D));
  GpuBuf gx(x, dt), gh(h, dt), gg(g, dt), gdy(dy, dt), gdg(dg, dt), gout(nans(R * D), dt), gdh(nans(R * D), dt);
  const void* cgam = gamma ? cg.p : nullptr;
  const void* ggam = gamma ? gg.p : nullptr;
  if (!CPU(residual_forward(g_cpu_ctx, cout.p, cx.p, ch.p, cgam, alpha, MK_F32, R, D), what) ||
      !CPU(residual_backward(g_cpu_ctx, cdh.p, dgamma ? cdg.p : nullptr, cdy.p, ch.p, cgam, alpha, MK_F32, R, D), what) ||
      !GPU(residual_forward(g_gpu_ctx, gout.p, gx.p, gh.p, ggam, alpha, dt, R, D), what) ||
      !GPU(residual_backward(g_gpu_ctx, gdh.p, dgamma ? gdg.p : nullptr, gdy.p, gh.p, ggam, alpha, dt, R, D), what))
    return;
  // dgamma is compared either way: when not passed it must stay as it was.
  compare(what, dt, {{"out", gout.get(), cout.get()}, {"dh", gdh.get(), cdh.get()}, {"dgamma", gdg.get(), cdg.get()}});
}

void check_residual() {
  for (mk_dtype dt : kDtypes) {
    // 1300 and 600 rows: more than the backward's 512 partial blocks.
    const int64_t shapes[][2] = {{1, 1}, {3, 7}, {17, 33}, {130, 64}, {5, 100}, {3, 768}, {17, 1025}, {1300, 7}, {600, 300}};
    for (auto& s : shapes) {
      residual_case(dt, s[0], s[1], true, true);
      residual_case(dt, s[0], s[1], false, true);
    }
    residual_case(dt, 17, 33, true, false);
    residual_case(dt, 17, 33, false, false, 1.f);
    residual_case(dt, 1300, 7, false, false);
  }
}

}  // namespace

MK_OP_CASES(residual, {"residual_forward", "residual_backward"}, check_residual, nullptr);

}  // namespace ops
