// softmax_xent.cpp: the op test's softmax cross-entropy cases: ignored rows (target −1), C = 1, 7,
// around the warp/block switch (512) and 1000, one row far from 0 (the max subtraction).
#include "common.h"

namespace ops {
namespace {

void xent_case(mk_dtype dt, int64_t R, int64_t C, float scale) {
  const std::string what = fmt("softmax_xent %s R=%lld C=%lld scale=%g", dtype_name(dt), (long long)R, (long long)C, scale);
  auto raw = randn(R * C, 3.f);
  for (int64_t c = 0; c < C; ++c) raw[c] += 60.f;  // row 0 far from 0: exp overflows without the max
  auto x = rounded(raw, dt), dl = nans(R * C);
  // About a quarter of the rows ignored, row 0 never, the last row always when R > 1.
  std::uniform_int_distribution<int32_t> cls(0, int32_t(C - 1));
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<int32_t> t(R);
  for (int64_t r = 0; r < R; ++r) t[r] = (r > 0 && (r == R - 1 || u(g_rng) < 0.25f)) ? -1 : cls(g_rng);
  CpuBuf cx(x), closs(nans(R)), clse(nans(R)), cdl(dl);
  GpuBuf gx(x, dt), gloss(nans(R), MK_F32), glse(nans(R), MK_F32), gdl(dl, dt);
  if (!CPU(softmax_xent_forward(g_cpu_ctx, closs.f32(), clse.f32(), cx.p, t.data(), MK_F32, R, C), what) ||
      !CPU(softmax_xent_backward(g_cpu_ctx, cdl.p, cx.p, clse.f32(), t.data(), scale, MK_F32, R, C), what))
    return;
  // The GPU backward reads the GPU's own lse, as training does.
  if (!GPU(softmax_xent_forward(g_gpu_ctx, gloss.f32(), glse.f32(), gx.p, t.data(), dt, R, C), what) ||
      !GPU(softmax_xent_backward(g_gpu_ctx, gdl.p, gx.p, glse.f32(), t.data(), scale, dt, R, C), what))
    return;
  compare(what, dt, {{"loss", gloss.get(), closs.get()}, {"lse", glse.get(), clse.get()}, {"dlogits", gdl.get(), cdl.get()}});
}

void check_softmax_xent() {
  for (mk_dtype dt : kDtypes) {
    xent_case(dt, 1, 1, 1.f);
    xent_case(dt, 5, 1, 0.5f);
    xent_case(dt, 257, 7, 1.f / 200);
    xent_case(dt, 9, 33, 1.f);
    xent_case(dt, 8, 512, 0.25f);
    xent_case(dt, 7, 513, 0.25f);
    xent_case(dt, 37, 1000, 1.f / 30);
  }
}

}  // namespace

MK_OP_CASES(softmax_xent, {"softmax_xent_forward", "softmax_xent_backward"}, check_softmax_xent, nullptr);

}  // namespace ops
