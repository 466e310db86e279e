// nt_xent.cpp: the op test's NT-Xent cases.
#include "common.h"

namespace ops {
namespace {

void nt_xent_case(mk_dtype dt, int64_t B, int64_t E) {
  const std::string what = fmt("nt_xent %s B=%lld E=%lld", dtype_name(dt), (long long)B, (long long)E);
  auto z0 = rnd(B * E, dt), z1 = rnd(B * E, dt);
  CpuBuf c0(z0), c1(z1), cd0(nans(B * E)), cd1(nans(B * E));
  GpuBuf g0(z0, dt), g1(z1, dt), gd0(nans(B * E), dt), gd1(nans(B * E), dt);
  CpuBuf cl(nans(1));
  GpuBuf gl(nans(1), MK_F32);
  if (!CPU(nt_xent(g_cpu_ctx, cl.f32(), cd0.p, cd1.p, c0.p, c1.p, MK_F32, B, E, 0.5f), what) ||
      !GPU(nt_xent(g_gpu_ctx, gl.f32(), gd0.p, gd1.p, g0.p, g1.p, dt, B, E, 0.5f), what))
    return;
  compare(what, dt, {{"loss", gl.get(), cl.get()}, {"dz0", gd0.get(), cd0.get()}, {"dz1", gd1.get(), cd1.get()}});
}

void check_nt_xent() {
  for (mk_dtype dt : kDtypes) {
    nt_xent_case(dt, 7, 40);
    nt_xent_case(dt, 1, 5);
  }
}

}  // namespace

MK_OP_CASES(nt_xent, {"nt_xent"}, check_nt_xent, nullptr);

}  // namespace ops
