// pos_interp.cpp: the op test's bicubic position-embedding cases, up and down, forward and backward.
#include "common.h"

namespace ops {
namespace {

void pos_interp_case(mk_dtype dt, int64_t h0, int64_t w0, int64_t h1, int64_t w1, int64_t D) {
  const std::string what = fmt("pos_interp %s %lldx%lld -> %lldx%lld D=%lld", dtype_name(dt), (long long)h0, (long long)w0,
                               (long long)h1, (long long)w1, (long long)D);
  auto x = rnd(h0 * w0 * D, dt), dy = rnd(h1 * w1 * D, dt);
  CpuBuf cx(x), cy(nans(h1 * w1 * D)), cdy(dy), cdx(nans(h0 * w0 * D));
  GpuBuf gx(x, dt), gy(nans(h1 * w1 * D), dt), gdy(dy, dt), gdx(nans(h0 * w0 * D), dt);
  const float sh = float(h0) / float(h1), sw = float(w0) / float(w1);
  if (!CPU(pos_interp_forward(g_cpu_ctx, cy.p, cx.p, MK_F32, h0, w0, h1, w1, D, sh, sw), what) ||
      !CPU(pos_interp_backward(g_cpu_ctx, cdx.p, cdy.p, MK_F32, h0, w0, h1, w1, D, sh, sw), what) ||
      !GPU(pos_interp_forward(g_gpu_ctx, gy.p, gx.p, dt, h0, w0, h1, w1, D, sh, sw), what) ||
      !GPU(pos_interp_backward(g_gpu_ctx, gdx.p, gdy.p, dt, h0, w0, h1, w1, D, sh, sw), what))
    return;
  compare(what, dt, {{"y", gy.get(), cy.get()}, {"dx", gdx.get(), cdx.get()}});
}

void check_pos_interp() {
  for (mk_dtype dt : kDtypes) {
    pos_interp_case(dt, 37, 37, 16, 16, 24);
    pos_interp_case(dt, 16, 16, 37, 40, 7);
    pos_interp_case(dt, 4, 4, 4, 4, 5);
    pos_interp_case(dt, 3, 5, 7, 2, 9);
  }
}

}  // namespace

MK_OP_CASES(pos_interp, {"pos_interp_forward", "pos_interp_backward"}, check_pos_interp, nullptr);

}  // namespace ops
