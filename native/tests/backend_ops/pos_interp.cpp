// pos_interp.cpp: the op test's bicubic position-embedding cases, up and down, forward and backward
// (the backward repeated bit for bit).
#include "common.h"

namespace ops {
namespace {

// Scales sh, sw default to h0/h1, w0/w1 (a target size); others (a scale factor's) may read past
// the grid's edges or leave source rows and columns that no output reaches.
void pos_interp_case(mk_dtype dt, int64_t h0, int64_t w0, int64_t h1, int64_t w1, int64_t D, float sh = 0, float sw = 0) {
  const std::string what = fmt("pos_interp %s %lldx%lld -> %lldx%lld D=%lld%s", dtype_name(dt), (long long)h0, (long long)w0,
                               (long long)h1, (long long)w1, (long long)D, sh ? fmt(" scale %g×%g", sh, sw).c_str() : "");
  if (!sh) sh = float(h0) / float(h1), sw = float(w0) / float(w1);
  auto x = rnd(h0 * w0 * D, dt), dy = rnd(h1 * w1 * D, dt);
  CpuBuf cx(x), cy(nans(h1 * w1 * D)), cdy(dy), cdx(nans(h0 * w0 * D));
  GpuBuf gx(x, dt), gy(nans(h1 * w1 * D), dt), gdy(dy, dt), gdx(nans(h0 * w0 * D), dt);
  if (!CPU(pos_interp_forward(g_cpu_ctx, cy.p, cx.p, MK_F32, h0, w0, h1, w1, D, sh, sw), what) ||
      !CPU(pos_interp_backward(g_cpu_ctx, cdx.p, cdy.p, MK_F32, h0, w0, h1, w1, D, sh, sw), what) ||
      !GPU(pos_interp_forward(g_gpu_ctx, gy.p, gx.p, dt, h0, w0, h1, w1, D, sh, sw), what) ||
      !GPU(pos_interp_backward(g_gpu_ctx, gdx.p, gdy.p, dt, h0, w0, h1, w1, D, sh, sw), what))
    return;
  compare(what, dt, {{"y", gy.get(), cy.get()}, {"dx", gdx.get(), cdx.get()}});
  // The backward again on the same inputs: the same bits.
  GpuBuf gdx2(nans(h0 * w0 * D), dt);
  if (GPU(pos_interp_backward(g_gpu_ctx, gdx2.p, gdy.p, dt, h0, w0, h1, w1, D, sh, sw), what)) same_bits(what, {"dx"}, {gdx.get()}, {gdx2.get()});
}

void check_pos_interp() {
  for (mk_dtype dt : kDtypes) {
    pos_interp_case(dt, 37, 37, 16, 16, 24);
    pos_interp_case(dt, 16, 16, 37, 40, 7);
    pos_interp_case(dt, 4, 4, 4, 4, 5);
    pos_interp_case(dt, 3, 5, 7, 2, 9);
    pos_interp_case(dt, 5, 6, 7, 9, 3, 2.5f, 0.3f);
  }
  // DINOv2's grid of 37² at ViT-B width, down and up.
  if (!g_emulated)
    for (mk_dtype dt : {MK_F32, MK_BF16}) {
      pos_interp_case(dt, 37, 37, 16, 16, 768);
      pos_interp_case(dt, 37, 37, 64, 64, 768);
    }
}

}  // namespace

MK_OP_CASES(pos_interp, {"pos_interp_forward", "pos_interp_backward"}, check_pos_interp, nullptr);

}  // namespace ops
