// batchnorm.cpp: the op test's BatchNorm1d cases: training (batch statistics, running statistics
// updated, R = 1 included) and evaluation, with and without weight/bias and running statistics,
// columns around the 32-column tiles and rows around the 8 row groups; the backward of each mode
// with dWeight/dBias accumulated into random values.
#include "common.h"

namespace ops {
namespace {

void batchnorm_case(mk_dtype dt, int64_t R, int64_t C, bool training, bool affine, bool running) {
  const std::string what = fmt("batchnorm %s R=%lld C=%lld %s%s%s", dtype_name(dt), (long long)R, (long long)C,
                               training ? "training" : "eval", affine ? " affine" : "", running ? " running" : "");
  auto raw = randn(R * C, 2.f);
  for (auto& v : raw) v += 1.f;  // a mean away from 0
  auto x = rounded(raw, dt), dy = rnd(R * C, dt);
  auto w = rnd(C, dt), b = rnd(C, dt), dw0 = rnd(C, dt), db0 = rnd(C, dt);
  auto rm = randn(C), rv = randn(C);
  for (auto& v : rv) v = 0.5f + std::fabs(v);
  const float eps = 1e-5f, momentum = 0.1f;
  CpuBuf cx(x), cdy(dy), cw(w), cb(b), cdw(dw0), cdb(db0), crm(rm), crv(rv), cy(nans(R * C)), cmean(nans(C)), crstd(nans(C)),
      cdx(nans(R * C));
  GpuBuf gx(x, dt), gdy(dy, dt), gw(w, dt), gb(b, dt), gdw(dw0, dt), gdb(db0, dt), grm(rm, MK_F32), grv(rv, MK_F32),
      gy(nans(R * C), dt), gmean(nans(C), MK_F32), grstd(nans(C), MK_F32), gdx(nans(R * C), dt);
  float *crm_p = running ? crm.f32() : nullptr, *crv_p = running ? crv.f32() : nullptr;
  float *grm_p = running ? grm.f32() : nullptr, *grv_p = running ? grv.f32() : nullptr;
  const void *cw_p = affine ? cw.p : nullptr, *cb_p = affine ? cb.p : nullptr, *gw_p = affine ? gw.p : nullptr,
             *gb_p = affine ? gb.p : nullptr;
  // dWeight/dBias go with the affine cases; the others pass null for them.
  void *cdw_p = affine ? cdw.p : nullptr, *cdb_p = affine ? cdb.p : nullptr, *gdw_p = affine ? gdw.p : nullptr,
       *gdb_p = affine ? gdb.p : nullptr;
  if (!CPU(batchnorm_forward(g_cpu_ctx, cy.p, cmean.f32(), crstd.f32(), crm_p, crv_p, cx.p, cw_p, cb_p, MK_F32, R, C, eps,
                             momentum, training),
           what) ||
      !CPU(batchnorm_backward(g_cpu_ctx, cdx.p, cdw_p, cdb_p, cdy.p, cx.p, cmean.f32(), crstd.f32(), cw_p, MK_F32, R, C, training),
           what))
    return;
  // The GPU backward reads the GPU's own mean and rstd, as training does.
  if (!GPU(batchnorm_forward(g_gpu_ctx, gy.p, gmean.f32(), grstd.f32(), grm_p, grv_p, gx.p, gw_p, gb_p, dt, R, C, eps,
                             momentum, training),
           what) ||
      !GPU(batchnorm_backward(g_gpu_ctx, gdx.p, gdw_p, gdb_p, gdy.p, gx.p, gmean.f32(), grstd.f32(), gw_p, dt, R, C, training),
           what))
    return;
  std::vector<Out> outs = {{"y", gy.get(), cy.get()},     {"mean", gmean.get(), cmean.get()}, {"rstd", grstd.get(), crstd.get()},
                           {"dx", gdx.get(), cdx.get()}, {"runningMean", grm.get(), crm.get()}, {"runningVar", grv.get(), crv.get()}};
  if (affine) outs.push_back({"dw", gdw.get(), cdw.get()}), outs.push_back({"db", gdb.get(), cdb.get()});
  compare(what, dt, outs);
}

void check_batchnorm() {
  for (mk_dtype dt : kDtypes) {
    batchnorm_case(dt, 257, 33, true, true, true);
    batchnorm_case(dt, 8, 32, true, true, true);
    batchnorm_case(dt, 9, 70, true, false, true);
    batchnorm_case(dt, 3, 1, true, true, true);  // not R = 2: its dx is 0 up to eps, only rounding noise
    batchnorm_case(dt, 7, 31, true, true, false);
    batchnorm_case(dt, 257, 5, true, false, false);
    batchnorm_case(dt, 1, 33, true, true, true);  // R = 1: variance 0, the running one moves toward it
    batchnorm_case(dt, 257, 33, false, true, true);
    batchnorm_case(dt, 9, 70, false, false, true);
    batchnorm_case(dt, 1, 5, false, true, true);
  }
}

}  // namespace

MK_OP_CASES(batchnorm, {"batchnorm_forward", "batchnorm_backward"}, check_batchnorm, nullptr);

}  // namespace ops
