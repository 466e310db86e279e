// dropout.cpp: the op test's dropout cases: the CPU's counter-based mask bit for bit, p 0.1, 0.5
// and 0.9, sizes around the 256-thread blocks, offsets and seeds past 2^32.
#include "common.h"

namespace ops {
namespace {

void dropout_case(mk_dtype dt, int64_t n, float p, uint64_t seed, uint64_t offset) {
  const std::string what = fmt("dropout %s n=%lld p=%g seed=%llu offset=%llu", dtype_name(dt), (long long)n, p,
                               (unsigned long long)seed, (unsigned long long)offset);
  auto x = rnd(n, dt);
  CpuBuf cx(x), cy(nans(n));
  GpuBuf gx(x, dt), gy(nans(n), dt);
  if (!CPU(dropout(g_cpu_ctx, cy.p, cx.p, MK_F32, n, p, seed, offset), what) ||
      !GPU(dropout(g_gpu_ctx, gy.p, gx.p, dt, n, p, seed, offset), what))
    return;
  // Exact (loose 0): the same mask and the same f32 product x·(1/(1−p)); in 16 bits the GPU rounds
  // that product once, so it must equal the CPU's result rounded to the dtype.
  compare(what, dt, {{"y", gy.get(), rounded(cy.get(), dt)}}, 0);
}

void check_dropout() {
  const uint64_t big = (uint64_t(1) << 32) + 12345;  // counters past 32 bits: the uint64 arithmetic
  for (mk_dtype dt : kDtypes)
    for (float p : {0.1f, 0.5f, 0.9f}) {
      dropout_case(dt, 1, p, 7, 0);
      dropout_case(dt, 255, p, 12345, 77);
      dropout_case(dt, 257, p, 3, big);
      dropout_case(dt, 100003, p, (uint64_t(1) << 40) + 5, big * 3);
    }
}

}  // namespace

MK_OP_CASES(dropout, {"dropout"}, check_dropout, nullptr);

}  // namespace ops
