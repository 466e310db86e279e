// layernorm.cpp: the op test's LayerNorm cases, forward and backward: widths around the warp and
// block sizes, row counts past the backward's partial blocks, every optional argument (weight,
// bias, dWeight, dBias) present and absent, rows with an offset mean.
#include "common.h"

namespace ops {
namespace {

struct Opt {
  bool w, b, dw, db;
};

void layernorm_case(mk_dtype dt, int64_t R, int64_t D, Opt o, float eps = 1e-5f) {
  const std::string what = fmt("layernorm %s R=%lld D=%lld w=%d b=%d dw=%d db=%d eps=%g", dtype_name(dt), (long long)R, (long long)D,
                               o.w, o.b, o.dw, o.db, eps);
  // An offset mean (3) exercises the two-pass variance.
  auto x = randn(R * D, 2.f);
  for (float& v : x) v += 3.f;
  x = rounded(x, dt);
  auto w = rnd(D, dt), b = rnd(D, dt), dy = rnd(R * D, dt), dw = rnd(D, dt), db = rnd(D, dt);
  CpuBuf cx(x), cw(w), cb(b), cdy(dy), cdw(dw), cdb(db), cy(nans(R * D)), cmean(nans(R)), crstd(nans(R)), cdx(nans(R * D));
  GpuBuf gx(x, dt), gw(w, dt), gb(b, dt), gdy(dy, dt), gdw(dw, dt), gdb(db, dt), gy(nans(R * D), dt), gmean(nans(R), MK_F32),
      grstd(nans(R), MK_F32), gdx(nans(R * D), dt);
  auto opt = [](bool on, void* p) { return on ? p : nullptr; };
  if (!CPU(layernorm_forward(g_cpu_ctx, cy.p, cmean.f32(), crstd.f32(), cx.p, opt(o.w, cw.p), opt(o.b, cb.p), MK_F32, R, D, eps), what) ||
      !CPU(layernorm_backward(g_cpu_ctx, cdx.p, opt(o.dw, cdw.p), opt(o.db, cdb.p), cdy.p, cx.p, cmean.f32(), crstd.f32(), opt(o.w, cw.p),
                              MK_F32, R, D),
           what))
    return;
  // The GPU backward reads the GPU's own mean and rstd, as training does.
  if (!GPU(layernorm_forward(g_gpu_ctx, gy.p, gmean.f32(), grstd.f32(), gx.p, opt(o.w, gw.p), opt(o.b, gb.p), dt, R, D, eps), what) ||
      !GPU(layernorm_backward(g_gpu_ctx, gdx.p, opt(o.dw, gdw.p), opt(o.db, gdb.p), gdy.p, gx.p, gmean.f32(), grstd.f32(), opt(o.w, gw.p),
                              dt, R, D),
           what))
    return;
  auto gdxv = gdx.get(), cdxv = cdx.get();
  if (D == 1) {
    // One value per row normalises to 0 whatever it is, so dx is 0 up to the rounding of
    // rstd·(g − mean(g)) (rstd = 1/√eps; an fma may keep g's product exact, as the CPU's does):
    // the GPU's is checked against 0 within 1e-5·rstd·|g| rather than against the CPU's noise.
    for (int64_t r = 0; r < R; ++r) {
      const float bound = 1e-5f / std::sqrt(eps) * std::fabs(dy[r] * (o.w ? w[0] : 1.f));
      if (std::fabs(gdxv[r]) <= bound) gdxv[r] = 0.f;
    }
    cdxv.assign(cdxv.size(), 0.f);
  }
  // dw and db are compared whether or not they were passed: an absent one must stay as it was.
  compare(what, dt, {{"y", gy.get(), cy.get()}, {"mean", gmean.get(), cmean.get()}, {"rstd", grstd.get(), crstd.get()},
                     {"dx", gdxv, cdxv}, {"dw", gdw.get(), cdw.get()}, {"db", gdb.get(), cdb.get()}});
}

void check_layernorm() {
  const Opt all{true, true, true, true}, none{false, false, false, false};
  const Opt weight_only{true, false, true, false}, bias_only{false, true, false, true};
  for (mk_dtype dt : kDtypes) {
    // Widths 1, under a warp, a warp + 1, two warps, odd, ViT's 768, past the 256-thread block;
    // 1300 rows: more than the backward's 512 partial blocks, so that blocks take several rows.
    const int64_t shapes[][2] = {{1, 1}, {17, 1}, {3, 7}, {17, 33}, {130, 64}, {5, 100}, {3, 768}, {17, 1025}, {1300, 7}, {600, 40}};
    for (auto& s : shapes) layernorm_case(dt, s[0], s[1], all);
    for (const Opt& o : {none, weight_only, bias_only}) {
      layernorm_case(dt, 17, 33, o);
      layernorm_case(dt, 3, 1025, o);
      layernorm_case(dt, 1300, 7, o);
    }
    layernorm_case(dt, 7, 100, all, 1e-2f);  // an eps that moves rstd visibly
  }
}

}  // namespace

MK_OP_CASES(layernorm, {"layernorm_forward", "layernorm_backward"}, check_layernorm, nullptr);

}  // namespace ops
