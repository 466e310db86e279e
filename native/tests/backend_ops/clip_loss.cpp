// clip_loss.cpp: the op test's symmetric InfoNCE cases, one process and a local block against
// gathered rows.
#include "common.h"

namespace ops {
namespace {

// Symmetric InfoNCE, one process (Bl = Bg) and a local block against gathered rows.
void clip_loss_case(mk_dtype dt, int64_t Bl, int64_t Bg, int64_t E, int64_t offset) {
  const std::string what = fmt("clip_loss %s Bl=%lld Bg=%lld E=%lld offset=%lld", dtype_name(dt), (long long)Bl, (long long)Bg,
                               (long long)E, (long long)offset);
  const bool one = Bl == Bg;
  auto ia = rnd(Bg * E, dt, 0.3f), ta = rnd(Bg * E, dt, 0.3f);
  std::vector<float> il(ia.begin() + offset * E, ia.begin() + (offset + Bl) * E), tl(ta.begin() + offset * E, ta.begin() + (offset + Bl) * E);
  auto dia0 = one ? nans(Bg * E) : rnd(Bg * E, dt), dta0 = one ? nans(Bg * E) : rnd(Bg * E, dt);
  CpuBuf ci(il), ct(tl), cia(ia), cta(ta), cdi(nans(Bl * E)), cdt(nans(Bl * E)), cdia(dia0), cdta(dta0);
  GpuBuf gi(il, dt), gt(tl, dt), gia(ia, dt), gta(ta, dt), gdi(nans(Bl * E), dt), gdt(nans(Bl * E), dt), gdia(dia0, dt), gdta(dta0, dt);
  CpuBuf cl(nans(1)), cds(nans(1)), cls({2.f});
  GpuBuf gl(nans(1), MK_F32), gds(nans(1), MK_F32), gls({2.f}, MK_F32);
  // One process: the *_all arguments are the local ones (and the *_all gradients alias them).
  if (!CPU(clip_loss(g_cpu_ctx, cl.f32(), cds.f32(), cdi.p, cdt.p, one ? cdi.p : cdia.p, one ? cdt.p : cdta.p, ci.p, ct.p, one ? ci.p : cia.p,
                     one ? ct.p : cta.p, MK_F32, Bl, Bg, E, offset, cls.f32()),
           what) ||
      !GPU(clip_loss(g_gpu_ctx, gl.f32(), gds.f32(), gdi.p, gdt.p, one ? gdi.p : gdia.p, one ? gdt.p : gdta.p, gi.p, gt.p, one ? gi.p : gia.p,
                     one ? gt.p : gta.p, dt, Bl, Bg, E, offset, gls.f32()),
           what))
    return;
  std::vector<Out> outs = {{"loss", {gl.get()[0], gds.get()[0]}, {cl.get()[0], cds.get()[0]}}, {"dimg", gdi.get(), cdi.get()}, {"dtxt", gdt.get(), cdt.get()}};
  if (!one) outs.push_back({"dimg_all", gdia.get(), cdia.get()}), outs.push_back({"dtxt_all", gdta.get(), cdta.get()});
  compare(what, dt, outs);
}

void check_clip_loss() {
  for (mk_dtype dt : kDtypes) {
    clip_loss_case(dt, 7, 7, 40, 0);
    clip_loss_case(dt, 3, 9, 33, 4);
  }
}

}  // namespace

MK_OP_CASES(clip_loss, {"clip_loss"}, check_clip_loss, nullptr);

}  // namespace ops
