// optim.cpp: the op test's optimizer and norm cases: AdamW and SGD steps over f32 ranges (the
// arenas are f32 only) at sizes around the 256-thread blocks, with and without weight decay, a
// gradient scale, SGD with momentum and without a buffer; sumsq in every dtype, n = 1 to large.
#include "common.h"

namespace ops {
namespace {

std::vector<float> positive(size_t n, float scale) {
  auto v = randn(n, scale);
  for (auto& x : v) x = std::fabs(x) + 1e-3f * scale;
  return v;
}

// Two steps (t = 1, 2) with fresh gradients; m and v start random (a run in progress).
void adamw_case(int64_t n, float wd, float grad_scale) {
  const std::string what = fmt("adamw n=%lld wd=%g grad_scale=%g", (long long)n, wd, grad_scale);
  auto p = randn(n), m = randn(n, 0.1f), v = positive(n, 0.01f);
  CpuBuf cp(p), cm(m), cv(v);
  GpuBuf gp(p, MK_F32), gm(m, MK_F32), gv(v, MK_F32);
  const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  for (int t = 1; t <= 2; ++t) {
    auto g = randn(n);
    CpuBuf cg(g);
    GpuBuf gg(g, MK_F32);
    const float bc1 = 1.f - std::pow(b1, float(t)), bc2 = 1.f - std::pow(b2, float(t));
    if (!CPU(adamw(g_cpu_ctx, cp.f32(), cg.f32(), cm.f32(), cv.f32(), n, lr, b1, b2, eps, wd, bc1, bc2, grad_scale), what) ||
        !GPU(adamw(g_gpu_ctx, gp.f32(), gg.f32(), gm.f32(), gv.f32(), n, lr, b1, b2, eps, wd, bc1, bc2, grad_scale), what))
      return;
  }
  compare(what, MK_F32, {{"p", gp.get(), cp.get()}, {"m", gm.get(), cm.get()}, {"v", gv.get(), cv.get()}});
}

// Two steps; the buffer starts random, or is null (momentum 0).
void sgd_case(int64_t n, float momentum, float wd, float grad_scale, bool buffer) {
  const std::string what =
      fmt("sgd n=%lld momentum=%g wd=%g grad_scale=%g%s", (long long)n, momentum, wd, grad_scale, buffer ? "" : " no buffer");
  auto p = randn(n), buf = randn(n, 0.1f);
  CpuBuf cp(p), cb(buf);
  GpuBuf gp(p, MK_F32), gb(buf, MK_F32);
  for (int t = 0; t < 2; ++t) {
    auto g = randn(n);
    CpuBuf cg(g);
    GpuBuf gg(g, MK_F32);
    if (!CPU(sgd(g_cpu_ctx, cp.f32(), cg.f32(), buffer ? cb.f32() : nullptr, n, 0.1f, momentum, wd, grad_scale), what) ||
        !GPU(sgd(g_gpu_ctx, gp.f32(), gg.f32(), buffer ? gb.f32() : nullptr, n, 0.1f, momentum, wd, grad_scale), what))
      return;
  }
  std::vector<Out> outs = {{"p", gp.get(), cp.get()}};
  if (buffer) outs.push_back({"buf", gb.get(), cb.get()});
  compare(what, MK_F32, outs);
}

void sumsq_case(mk_dtype dt, int64_t n) {
  const std::string what = fmt("sumsq %s n=%lld", dtype_name(dt), (long long)n);
  auto x = rnd(n, dt);
  CpuBuf cx(x);
  GpuBuf gx(x, dt);
  double c = kNaN, g = kNaN;
  if (!CPU(sumsq(g_cpu_ctx, &c, cx.p, MK_F32, n), what) || !GPU(sumsq(g_gpu_ctx, &g, gx.p, dt, n), what)) return;
  // Both backends see the same (rounded) values and sum in f32 or wider, so the f32 tolerance
  // holds in every dtype (the 16-bit one would let a wrong sum pass).
  compare(what, MK_F32, {{"sum", {float(g)}, {float(c)}}});
}

void check_optim() {
  for (int64_t n : {1, 255, 256, 257, 100003}) {
    adamw_case(n, 0.f, 1.f);
    adamw_case(n, 0.1f, 0.37f);
    sgd_case(n, 0.9f, 0.f, 1.f, true);
    sgd_case(n, 0.9f, 1e-2f, 0.5f, true);
    sgd_case(n, 0.f, 1e-2f, 2.f, false);
  }
  for (mk_dtype dt : kDtypes)
    for (int64_t n : {1, 7, 256, 257, 256 * 1024 + 1, 1000003}) sumsq_case(dt, n);
}

}  // namespace

MK_OP_CASES(optim, {"adamw", "sgd", "sumsq"}, check_optim, nullptr);

}  // namespace ops
