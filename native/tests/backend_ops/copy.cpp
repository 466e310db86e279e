// copy.cpp: the op test's cases for moving values: copy, copy2d (strided blocks, NaN outside them
// kept), fill, and cast between every pair of dtypes (against the values rounded on the host side
// of the upload, which both ends must agree with).
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

void copy_case(mk_dtype dt, int64_t n) {
  const std::string what = fmt("copy %s n=%lld", dtype_name(dt), (long long)n);
  auto src = rnd(n, dt);
  CpuBuf cs(src), cd(nans(n));
  GpuBuf gs(src, dt), gd(nans(n), dt);
  if (!CPU(copy(g_cpu_ctx, cd.p, cs.p, MK_F32, n), what) || !GPU(copy(g_gpu_ctx, gd.p, gs.p, dt, n), what)) return;
  compare(what, dt, {{"dst", gd.get(), cd.get()}});
}

void fill_case(mk_dtype dt, int64_t n, float value) {
  const std::string what = fmt("fill %s n=%lld value=%g", dtype_name(dt), (long long)n, value);
  CpuBuf cx(nans(n));
  GpuBuf gx(nans(n), dt);
  if (!CPU(fill(g_cpu_ctx, cx.p, MK_F32, n, value), what) || !GPU(fill(g_gpu_ctx, gx.p, dt, n, value), what)) return;
  // The CPU keeps f32: compare with the value rounded as the GPU stores it.
  auto want = cx.get();
  if (dt != MK_F32) want = rounded(want, dt);
  compare(what, dt, {{"x", gx.get(), want}});
}

void cast_case(mk_dtype to, mk_dtype from, int64_t n) {
  const std::string what = fmt("cast %s <- %s n=%lld", dtype_name(to), dtype_name(from), (long long)n);
  auto src = rnd(n, from, 3.f);
  GpuBuf gs(src, from), gd(nans(n), to);
  if (!GPU(cast(g_gpu_ctx, gd.p, to, gs.p, from, n), what)) return;
  // Exactly the upload's rounding of the same values (round to nearest even, once).
  compare(what, MK_F32, {{"dst", gd.get(), rounded(src, to)}}, 0);
}

void check_copy() {
  for (mk_dtype dt : kDtypes) {
    copy_case(dt, 1);
    copy_case(dt, 1000003);
    fill_case(dt, 7, 0.f);
    fill_case(dt, 70001, -1.234567f);
    for (mk_dtype from : kDtypes) cast_case(dt, from, 4099);
  }
  check_copy2d();
}

}  // namespace

MK_OP_CASES(copy, {"copy", "copy2d", "fill", "cast"}, check_copy, nullptr);

}  // namespace ops
