// relu.cpp: the op test's ReLU cases, forward and backward, at odd sizes and around the block size
// (and, on a GPU, past the grid's 65535 blocks).
#include "common.h"

namespace ops {
namespace {

void relu_case(mk_dtype dt, int64_t n) {
  const std::string what = fmt("relu %s n=%lld", dtype_name(dt), (long long)n);
  auto x = rnd(n, dt), dy = rnd(n, dt);
  CpuBuf cx(x), cdy(dy), cy(nans(n)), cdx(nans(n));
  GpuBuf gx(x, dt), gdy(dy, dt), gy(nans(n), dt), gdx(nans(n), dt);
  if (!CPU(relu_forward(g_cpu_ctx, cy.p, cx.p, MK_F32, n), what) || !CPU(relu_backward(g_cpu_ctx, cdx.p, cdy.p, cx.p, MK_F32, n), what) ||
      !GPU(relu_forward(g_gpu_ctx, gy.p, gx.p, dt, n), what) || !GPU(relu_backward(g_gpu_ctx, gdx.p, gdy.p, gx.p, dt, n), what))
    return;
  compare(what, dt, {{"y", gy.get(), cy.get()}, {"dx", gdx.get(), cdx.get()}});
}

void check_relu() {
  for (mk_dtype dt : kDtypes)
    for (int64_t n : {1, 7, 33, 255, 257, 1025}) relu_case(dt, n);
  // Past 65535 blocks of 256, where the threads take several elements each (grid-stride): on a
  // GPU only (the emulation takes minutes over it under AddressSanitizer).
  if (!g_emulated) relu_case(MK_BF16, 65535 * 256 + 1000);
}

}  // namespace

MK_OP_CASES(relu, {"relu_forward", "relu_backward"}, check_relu, nullptr);

}  // namespace ops
