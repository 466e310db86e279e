// axpy.cpp: the op test's in-place accumulate (y += alpha·x) and scale (x *= alpha, or alpha·*by) cases.
#include "common.h"

namespace ops {
namespace {

// ydt: y's dtype (x's, or f32 under a 16-bit x: mixed-precision gradient accumulation).
void axpy_case(mk_dtype dt, int64_t n, float alpha, mk_dtype ydt) {
  const std::string what = fmt("axpy x %s y %s n=%lld alpha=%g", dtype_name(dt), dtype_name(ydt), (long long)n, alpha);
  auto x = rnd(n, dt), y = rnd(n, ydt);
  CpuBuf cx(x), cy(y);
  GpuBuf gx(x, dt), gy(y, ydt);
  if (!CPU(axpy(g_cpu_ctx, cy.p, MK_F32, cx.p, MK_F32, n, alpha), what) || !GPU(axpy(g_gpu_ctx, gy.p, ydt, gx.p, dt, n, alpha), what))
    return;
  compare(what, ydt, {{"y", gy.get(), cy.get()}});
}

// by: the factor read in device memory too (NaN: none).
void scale_case(mk_dtype dt, int64_t n, float alpha, float by = kNaN) {
  const std::string what = fmt("scale %s n=%lld alpha=%g by=%g", dtype_name(dt), (long long)n, alpha, by);
  auto x = rnd(n, dt);
  CpuBuf cx(x), cb({by});
  GpuBuf gx(x, dt), gb({by}, MK_F32);
  const bool use = by == by;
  if (!CPU(scale(g_cpu_ctx, cx.p, MK_F32, n, alpha, use ? cb.f32() : nullptr), what) ||
      !GPU(scale(g_gpu_ctx, gx.p, dt, n, alpha, use ? gb.f32() : nullptr), what))
    return;
  compare(what, dt, {{"x", gx.get(), cx.get()}});
}

void check_axpy() {
  for (mk_dtype dt : kDtypes) {
    axpy_case(dt, 1, 0.5f, dt);
    axpy_case(dt, 100003, -1.75f, dt);
    if (dt != MK_F32) axpy_case(dt, 4099, 0.75f, MK_F32);
    scale_case(dt, 3, 2.f);
    scale_case(dt, 100003, 0.125f);
    scale_case(dt, 1001, 0.5f, -3.f);
  }
}

}  // namespace

MK_OP_CASES(axpy, {"axpy", "scale"}, check_axpy, nullptr);

}  // namespace ops
