// patch_embed.cpp: the op test's patch embedding cases (forward into a token buffer with CLS and
// register rows first, backward accumulating and repeated bit for bit; for bf16/f16 the tensor-core
// GEMM core with gathered patches, native/cuda/gemm.cuh) and its timing at the paper's image size.
#include "common.h"

namespace ops {
namespace {

// Patch embedding forward (into a token buffer with CLS/register rows first) and backward.
void patch_embed_case(mk_dtype dt, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p, int64_t D, int64_t offset, bool bias_pos) {
  const std::string what = fmt("patch_embed %s B=%lld C=%lld H=%lld W=%lld p=%lld D=%lld offset=%lld%s", dtype_name(dt), (long long)B,
                               (long long)C, (long long)H, (long long)W, (long long)p, (long long)D, (long long)offset,
                               bias_pos ? "" : " no bias/pos");
  const int64_t np = (H / p) * (W / p), kp = C * p * p, T = np + offset;
  auto img = rnd(B * C * H * W, dt), w = rnd(D * kp, dt, 0.2f), bias = rnd(D, dt), pos = rnd(np * D, dt);
  auto tok0 = rounded(nans(B * T * D), dt), dtok = rnd(B * T * D, dt);
  auto dw0 = rnd(D * kp, dt), db0 = rnd(D, dt), dp0 = rnd(np * D, dt);
  // Rows before `offset` are not the kernel's: they keep their values (random there, NaN elsewhere).
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < offset * D; ++i) tok0[b * T * D + i] = float(i % 7) - 3.f;
  CpuBuf ci(img), cw(w), cb(bias), cp(pos), ct(tok0), cdt(dtok), cdw(dw0), cdb(db0), cdp(dp0);
  GpuBuf gi(img, dt), gw(w, dt), gb(bias, dt), gp(pos, dt), gt(tok0, dt), gdt(dtok, dt), gdw(dw0, dt), gdb(db0, dt), gdp(dp0, dt);
  void *cbp = bias_pos ? cb.p : nullptr, *cpp = bias_pos ? cp.p : nullptr, *gbp = bias_pos ? gb.p : nullptr, *gpp = bias_pos ? gp.p : nullptr;
  if (!CPU(patch_embed_forward(g_cpu_ctx, ct.p, ci.p, cw.p, cbp, cpp, MK_F32, B, C, H, W, p, D, T, offset), what) ||
      !CPU(patch_embed_backward(g_cpu_ctx, cdw.p, cdb.p, cdp.p, cdt.p, ci.p, MK_F32, B, C, H, W, p, D, T, offset), what) ||
      !GPU(patch_embed_forward(g_gpu_ctx, gt.p, gi.p, gw.p, gbp, gpp, dt, B, C, H, W, p, D, T, offset), what) ||
      !GPU(patch_embed_backward(g_gpu_ctx, gdw.p, gdb.p, gdp.p, gdt.p, gi.p, dt, B, C, H, W, p, D, T, offset), what))
    return;
  compare(what, dt, {{"tokens", gt.get(), ct.get()}, {"dweight", gdw.get(), cdw.get()}, {"dbias", gdb.get(), cdb.get()},
                     {"dpos", gdp.get(), cdp.get()}});
  // The backward again, accumulating into the same starting gradients: the same bits.
  GpuBuf gdw2(dw0, dt), gdb2(db0, dt), gdp2(dp0, dt);
  if (GPU(patch_embed_backward(g_gpu_ctx, gdw2.p, gdb2.p, gdp2.p, gdt.p, gi.p, dt, B, C, H, W, p, D, T, offset), what))
    same_bits(what, {"dweight", "dbias", "dpos"}, {gdw.get(), gdb.get(), gdp.get()}, {gdw2.get(), gdb2.get(), gdp2.get()});
}

void check_patch_embed() {
  for (mk_dtype dt : kDtypes) {
    patch_embed_case(dt, 2, 1, 28, 42, 14, 33, 5, true);
    patch_embed_case(dt, 3, 3, 32, 48, 16, 70, 0, true);
    patch_embed_case(dt, 1, 2, 8, 12, 4, 64, 1, false);
    patch_embed_case(dt, 2, 1, 20, 20, 4, 65, 3, true);
    patch_embed_case(dt, 8, 1, 64, 64, 4, 24, 2, true);  // 2048 patches: dweight in 8 token splits
    patch_embed_case(dt, 2, 2, 40, 40, 8, 136, 1, true);  // D past one 128-wide tile, cp.async-aligned W and dT rows
  }
  if (!g_emulated) patch_embed_case(MK_BF16, 2, 1, 518, 518, 14, 96, 5, true);
}

// Forward + backward at the paper's image size (16 images of 518², p 14, ViT-B width).
void bench_patch_embed_shape(FILE* out, mk_dtype dt, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p, int64_t D) {
  const int64_t np = (H / p) * (W / p), kp = C * p * p;
  GpuBuf img(randn(B * C * H * W), dt), w(randn(D * kp), dt), bias(randn(D), dt), pos(randn(np * D), dt);
  GpuBuf tok(std::vector<float>(B * np * D), dt), dtok(randn(B * np * D), dt);
  GpuBuf dw(std::vector<float>(D * kp), dt), db(std::vector<float>(D), dt), dp(std::vector<float>(np * D), dt);
  const std::string name = fmt("fwd+bwd %lldx%lldx%lldx%lld p%lld D%lld", (long long)B, (long long)C, (long long)H, (long long)W,
                               (long long)p, (long long)D);
  const double s = time_gpu("bench patch_embed", [&] {
    return GPU(patch_embed_forward(g_gpu_ctx, tok.p, img.p, w.p, bias.p, pos.p, dt, B, C, H, W, p, D, np, 0), "bench patch_embed") &&
           GPU(patch_embed_backward(g_gpu_ctx, dw.p, db.p, dp.p, dtok.p, img.p, dt, B, C, H, W, p, D, np, 0), "bench patch_embed");
  });
  record(out, "patch_embed", dt, name,
         fmt("\"B\":%lld,\"C\":%lld,\"H\":%lld,\"W\":%lld,\"p\":%lld,\"D\":%lld,\"bwd\":true", (long long)B, (long long)C, (long long)H,
             (long long)W, (long long)p, (long long)D),
         s, 2 * 2.0 * B * np * D * kp);
}

void bench_patch_embed(FILE* out, mk_dtype dt) { bench_patch_embed_shape(out, dt, 16, 1, 518, 518, 14, 768); }

}  // namespace

MK_OP_CASES(patch_embed, {"patch_embed_forward", "patch_embed_backward"}, check_patch_embed, bench_patch_embed);

}  // namespace ops
