// meanpool.cpp: the op test's mean-over-tokens cases, forward and backward: odd token counts and
// widths, one token, many.
#include "common.h"

namespace ops {
namespace {

void meanpool_case(mk_dtype dt, int64_t B, int64_t L, int64_t D) {
  const std::string what = fmt("meanpool %s B=%lld L=%lld D=%lld", dtype_name(dt), (long long)B, (long long)L, (long long)D);
  auto x = rnd(B * L * D, dt), dy = rnd(B * D, dt);
  CpuBuf cx(x), cdy(dy), cy(nans(B * D)), cdx(nans(B * L * D));
  GpuBuf gx(x, dt), gdy(dy, dt), gy(nans(B * D), dt), gdx(nans(B * L * D), dt);
  if (!CPU(meanpool_forward(g_cpu_ctx, cy.p, cx.p, MK_F32, B, L, D), what) ||
      !CPU(meanpool_backward(g_cpu_ctx, cdx.p, cdy.p, MK_F32, B, L, D), what) ||
      !GPU(meanpool_forward(g_gpu_ctx, gy.p, gx.p, dt, B, L, D), what) || !GPU(meanpool_backward(g_gpu_ctx, gdx.p, gdy.p, dt, B, L, D), what))
    return;
  compare(what, dt, {{"y", gy.get(), cy.get()}, {"dx", gdx.get(), cdx.get()}});
}

void check_meanpool() {
  for (mk_dtype dt : kDtypes) {
    const int64_t shapes[][3] = {{1, 1, 1}, {3, 7, 33}, {2, 197, 64}, {5, 17, 100}, {2, 3, 768}, {1, 130, 1025}, {17, 1, 7}, {130, 5, 3}};
    for (auto& s : shapes) meanpool_case(dt, s[0], s[1], s[2]);
  }
}

}  // namespace

MK_OP_CASES(meanpool, {"meanpool_forward", "meanpool_backward"}, check_meanpool, nullptr);

}  // namespace ops
