// copy.cpp: the op test's copy cases (copy2d: strided blocks, NaN outside them kept).
#include "common.h"

namespace ops {
namespace {

void copy2d_case(mk_dtype dt, int64_t rows, int64_t cols, int64_t dst_stride, int64_t src_stride) {
  const std::string what = fmt("copy2d %s rows=%lld cols=%lld strides %lld <- %lld", dtype_name(dt), (long long)rows, (long long)cols,
                               (long long)dst_stride, (long long)src_stride);
  auto src = rnd(rows * src_stride, dt), dst = rounded(nans(rows * dst_stride), dt);
  CpuBuf cs(src), cd(dst);
  GpuBuf gs(src, dt), gd(dst, dt);
  if (!CPU(copy2d(g_cpu_ctx, cd.p, dst_stride, cs.p, src_stride, MK_F32, rows, cols), what) ||
      !GPU(copy2d(g_gpu_ctx, gd.p, dst_stride, gs.p, src_stride, dt, rows, cols), what))
    return;
  // Both keep NaN outside the block; compare the block and the NaN pattern (NaN on both sides is equal here).
  auto got = gd.get(), want = cd.get();
  for (size_t i = 0; i < got.size(); ++i)
    if (std::isnan(got[i]) && std::isnan(want[i])) got[i] = want[i] = 0.f;
  compare(what, dt, {{"dst", got, want}});
}

void check_copy2d() {
  for (mk_dtype dt : kDtypes) {
    copy2d_case(dt, 5, 7, 9, 11);
    copy2d_case(dt, 1, 33, 33, 40);
    copy2d_case(dt, 17, 3, 3, 3);
  }
}

}  // namespace

MK_OP_CASES(copy, {"copy2d"}, check_copy2d, nullptr);

}  // namespace ops
