// l2norm.cpp: the op test's row L2-normalisation cases, forward and backward: widths around the
// warp and block sizes, and rows whose norm falls below eps (norm = eps, the backward's dot 0).
#include "common.h"

namespace ops {
namespace {

// The rows r ≡ parity (mod 2) of v [R, D].
std::vector<float> rows(const std::vector<float>& v, int64_t D, int64_t parity) {
  std::vector<float> out;
  for (size_t r = size_t(parity); r * D < v.size(); r += 2) out.insert(out.end(), v.begin() + r * D, v.begin() + (r + 1) * D);
  return out;
}

// With `tiny`, every other row is scaled by 1e-5 (norm below eps = 1e-3 for D ≤ 1025).
void l2norm_case(mk_dtype dt, int64_t R, int64_t D, float eps, bool tiny) {
  const std::string what = fmt("l2norm %s R=%lld D=%lld eps=%g%s", dtype_name(dt), (long long)R, (long long)D, eps,
                               tiny ? " tiny rows" : "");
  auto x = randn(R * D);
  if (tiny)
    for (int64_t r = 1; r < R; r += 2)
      for (int64_t d = 0; d < D; ++d) x[r * D + d] *= 1e-5f;
  x = rounded(x, dt);
  auto dy = rnd(R * D, dt);
  CpuBuf cx(x), cy(nans(R * D)), cn(nans(R));
  GpuBuf gx(x, dt), gy(nans(R * D), dt), gn(nans(R), MK_F32);
  if (!CPU(l2norm_forward(g_cpu_ctx, cy.p, cn.f32(), cx.p, MK_F32, R, D, eps), what) ||
      !GPU(l2norm_forward(g_gpu_ctx, gy.p, gn.f32(), gx.p, dt, R, D, eps), what))
    return;
  // The backward on both sides reads the GPU's y (in its dtype) and norm: the same inputs, so
  // that it is compared alone.
  const auto y = gy.get(), norm = gn.get();
  CpuBuf cdy(dy), cyb(y), cnb(norm), cdx(nans(R * D));
  GpuBuf gdy(dy, dt), gdx(nans(R * D), dt);
  if (!CPU(l2norm_backward(g_cpu_ctx, cdx.p, cdy.p, cyb.p, cnb.f32(), MK_F32, R, D, eps), what) ||
      !GPU(l2norm_backward(g_gpu_ctx, gdx.p, gdy.p, gy.p, gn.f32(), dt, R, D, eps), what))
    return;
  if (!tiny) {
    auto gdxv = gdx.get(), cdxv = cdx.get();
    if (D == 1) {
      // A row of one value normalises to ±1 whatever it is: dx = dy·(1 − y²)/norm is 0 up to
      // the rounding of y (an ulp, ~1e-7·|dy|/norm) on either side. The GPU's is checked against
      // 0 within 1e-5·|dy|/norm rather than against the CPU's noise.
      for (int64_t r = 0; r < R; ++r)
        if (std::fabs(gdxv[r]) <= 1e-5f * std::fabs(dy[r]) / norm[r]) gdxv[r] = 0.f;
      cdxv.assign(cdxv.size(), 0.f);
    }
    compare(what, dt, {{"y", y, cy.get()}, {"norm", norm, cn.get()}, {"dx", gdxv, cdxv}});
    return;
  }
  // dx of a row below eps is dy/eps (1000·dy): each kind of row is compared at its own scale.
  const auto gdxv = gdx.get(), cdxv = cdx.get(), cyv = cy.get();
  compare(what, dt, {{"y (ordinary rows)", rows(y, D, 0), rows(cyv, D, 0)}, {"y (rows below eps)", rows(y, D, 1), rows(cyv, D, 1)},
                     {"norm", norm, cn.get()}, {"dx (ordinary rows)", rows(gdxv, D, 0), rows(cdxv, D, 0)},
                     {"dx (rows below eps)", rows(gdxv, D, 1), rows(cdxv, D, 1)}});
}

void check_l2norm() {
  for (mk_dtype dt : kDtypes) {
    const int64_t shapes[][2] = {{1, 1}, {17, 1}, {3, 7}, {17, 33}, {130, 64}, {5, 100}, {3, 768}, {17, 1025}, {600, 40}};
    for (auto& s : shapes) l2norm_case(dt, s[0], s[1], 1e-12f, false);
    l2norm_case(dt, 6, 33, 1e-3f, true);
    l2norm_case(dt, 5, 1025, 1e-3f, true);
  }
}

}  // namespace

MK_OP_CASES(l2norm, {"l2norm_forward", "l2norm_backward"}, check_l2norm, nullptr);

}  // namespace ops
