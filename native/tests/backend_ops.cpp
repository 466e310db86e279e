// backend_ops.cpp: checks every op of the CUDA backend against the CPU backend through the C
// ABI (mamakit.h) on seeded random inputs, then times the CUDA ops. Needs no Node: it is what
// bench/gpu.sh runs on a lent GPU machine.
//   backend_ops --lib build-gpu/libmamakit_cuda.so [--bench out.jsonl]
// Exit status 0 only when every check passed; prints "checks: N passed, N failed" last.
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "mamakit.h"

namespace {

const mk_backend* g_cpu;
mk_context* g_cpu_ctx;
const mk_backend* g_gpu;
mk_context* g_gpu_ctx;
int g_passed = 0, g_failed = 0;
std::mt19937 g_rng(20261128);

const char* dtype_name(mk_dtype d) { return d == MK_BF16 ? "bf16" : d == MK_F16 ? "f16" : "f32"; }
size_t dtype_size(mk_dtype d) { return d == MK_F32 ? 4 : 2; }

void die(const char* what, const mk_backend* be, mk_context* ctx) {
  std::fprintf(stderr, "%s: %s\n", what, be->last_error(ctx));
  std::exit(2);
}

std::vector<float> randn(size_t n) {
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}

// A buffer on the GPU in `dtype`.
struct GpuBuf {
  void* p = nullptr;
  size_t n = 0;
  mk_dtype dtype = MK_F32;
  GpuBuf(const std::vector<float>& host, mk_dtype dt) : n(host.size()), dtype(dt) {
    if (g_gpu->alloc(g_gpu_ctx, &p, n * dtype_size(dt)) != MK_OK) die("alloc", g_gpu, g_gpu_ctx);
    if (g_gpu->upload(g_gpu_ctx, p, dt, host.data(), n) != MK_OK) die("upload", g_gpu, g_gpu_ctx);
  }
  ~GpuBuf() { g_gpu->free(g_gpu_ctx, p); }
  std::vector<float> get() const {
    std::vector<float> h(n);
    if (g_gpu->download(g_gpu_ctx, h.data(), p, dtype, n) != MK_OK) die("download", g_gpu, g_gpu_ctx);
    return h;
  }
};

// A buffer on the CPU (f32).
struct CpuBuf {
  void* p = nullptr;
  size_t n = 0;
  explicit CpuBuf(const std::vector<float>& host) : n(host.size()) {
    if (g_cpu->alloc(g_cpu_ctx, &p, n * 4) != MK_OK) die("alloc", g_cpu, g_cpu_ctx);
    std::memcpy(p, host.data(), n * 4);
  }
  ~CpuBuf() { g_cpu->free(g_cpu_ctx, p); }
  std::vector<float> get() const { return std::vector<float>(static_cast<float*>(p), static_cast<float*>(p) + n); }
};

// Rounds host values to `dtype` through the GPU, so both backends see the same numbers.
std::vector<float> rounded(const std::vector<float>& v, mk_dtype dt) { return GpuBuf(v, dt).get(); }

void report(bool ok, const std::string& what, double worst) {
  (ok ? g_passed : g_failed)++;
  std::printf("%s %s (worst excess %.3g)\n", ok ? "ok  " : "FAIL", what.c_str(), worst);
}

// |gpu − cpu| ≤ atol + rtol·|cpu| everywhere; returns the worst ratio of error to tolerance.
double worst_excess(const std::vector<float>& got, const std::vector<float>& want, double atol, double rtol) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double(got[i]) - want[i]), tol = atol + rtol * std::fabs(want[i]);
    const double e = std::isfinite(err) ? err / tol : INFINITY;
    if (e > worst) worst = e;
  }
  return worst;
}

void check_matmul(mk_dtype dt, int64_t M, int64_t N, int64_t K, bool ta, bool tb, bool bias, bool acc) {
  auto a = rounded(randn(M * K), dt), b = rounded(randn(K * N), dt), bv = rounded(randn(N), dt);
  auto c0 = rounded(randn(M * N), dt);
  CpuBuf ca(a), cb(b), cbias(bv), cc(c0);
  GpuBuf ga(a, dt), gb(b, dt), gbias(bv, dt), gc(c0, dt);
  if (g_cpu->matmul(g_cpu_ctx, cc.p, ca.p, cb.p, bias ? cbias.p : nullptr, MK_F32, M, N, K, ta, tb, acc) != MK_OK) die("cpu matmul", g_cpu, g_cpu_ctx);
  if (g_gpu->matmul(g_gpu_ctx, gc.p, ga.p, gb.p, bias ? gbias.p : nullptr, dt, M, N, K, ta, tb, acc) != MK_OK) die("cuda matmul", g_gpu, g_gpu_ctx);
  const double rtol = dt == MK_F32 ? 1e-5 : dt == MK_BF16 ? 8e-3 : 1e-3;
  const double worst = worst_excess(gc.get(), cc.get(), 1e-4 * std::sqrt(double(K)), rtol);
  char what[160];
  std::snprintf(what, sizeof(what), "matmul %s M=%lld N=%lld K=%lld ta=%d tb=%d bias=%d acc=%d", dtype_name(dt), (long long)M,
                (long long)N, (long long)K, ta, tb, bias, acc);
  report(worst <= 1, what, worst);
}

// Patch embedding forward (into a token buffer with 5 leading rows) and backward.
void check_patch_embed(mk_dtype dt, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p, int64_t D) {
  const int64_t np = (H / p) * (W / p), kp = C * p * p, T = np + 5;
  auto img = rounded(randn(B * C * H * W), dt), w = rounded(randn(D * kp), dt), bias = rounded(randn(D), dt);
  auto pos = rounded(randn(np * D), dt), tok0 = rounded(randn(B * T * D), dt), dtok = rounded(randn(B * T * D), dt);
  auto dw0 = rounded(randn(D * kp), dt), db0 = rounded(randn(D), dt), dp0 = rounded(randn(np * D), dt);
  CpuBuf ci(img), cw(w), cb(bias), cp(pos), ct(tok0), cdt(dtok), cdw(dw0), cdb(db0), cdp(dp0);
  GpuBuf gi(img, dt), gw(w, dt), gb(bias, dt), gp(pos, dt), gt(tok0, dt), gdt(dtok, dt), gdw(dw0, dt), gdb(db0, dt), gdp(dp0, dt);
  if (g_cpu->patch_embed_forward(g_cpu_ctx, ct.p, ci.p, cw.p, cb.p, cp.p, MK_F32, B, C, H, W, p, D, T, 5) != MK_OK ||
      g_cpu->patch_embed_backward(g_cpu_ctx, cdw.p, cdb.p, cdp.p, cdt.p, ci.p, MK_F32, B, C, H, W, p, D, T, 5) != MK_OK)
    die("cpu patch_embed", g_cpu, g_cpu_ctx);
  if (g_gpu->patch_embed_forward(g_gpu_ctx, gt.p, gi.p, gw.p, gb.p, gp.p, dt, B, C, H, W, p, D, T, 5) != MK_OK ||
      g_gpu->patch_embed_backward(g_gpu_ctx, gdw.p, gdb.p, gdp.p, gdt.p, gi.p, dt, B, C, H, W, p, D, T, 5) != MK_OK)
    die("cuda patch_embed", g_gpu, g_gpu_ctx);
  const double rtol = dt == MK_F32 ? 1e-5 : dt == MK_BF16 ? 8e-3 : 1e-3;
  const double m = double(B * np);
  const double worst = std::max({worst_excess(gt.get(), ct.get(), 1e-4 * std::sqrt(double(kp)), rtol),
                                 worst_excess(gdw.get(), cdw.get(), 1e-4 * std::sqrt(m), rtol),
                                 worst_excess(gdb.get(), cdb.get(), 1e-4 * std::sqrt(m), rtol),
                                 worst_excess(gdp.get(), cdp.get(), 1e-4 * std::sqrt(double(B)), rtol)});
  char what[160];
  std::snprintf(what, sizeof(what), "patch_embed %s B=%lld C=%lld H=%lld W=%lld p=%lld D=%lld", dtype_name(dt), (long long)B,
                (long long)C, (long long)H, (long long)W, (long long)p, (long long)D);
  report(worst <= 1, what, worst);
}

void check_pos_interp(mk_dtype dt, int64_t h0, int64_t w0, int64_t h1, int64_t w1, int64_t D) {
  auto x = rounded(randn(h0 * w0 * D), dt), dy = rounded(randn(h1 * w1 * D), dt);
  CpuBuf cx(x), cy(std::vector<float>(h1 * w1 * D)), cdy(dy), cdx(std::vector<float>(h0 * w0 * D));
  GpuBuf gx(x, dt), gy(std::vector<float>(h1 * w1 * D), dt), gdy(dy, dt), gdx(std::vector<float>(h0 * w0 * D), dt);
  const float sh = float(h0) / float(h1), sw = float(w0) / float(w1);
  if (g_cpu->pos_interp_forward(g_cpu_ctx, cy.p, cx.p, MK_F32, h0, w0, h1, w1, D, sh, sw) != MK_OK ||
      g_cpu->pos_interp_backward(g_cpu_ctx, cdx.p, cdy.p, MK_F32, h0, w0, h1, w1, D, sh, sw) != MK_OK)
    die("cpu pos_interp", g_cpu, g_cpu_ctx);
  if (g_gpu->pos_interp_forward(g_gpu_ctx, gy.p, gx.p, dt, h0, w0, h1, w1, D, sh, sw) != MK_OK ||
      g_gpu->pos_interp_backward(g_gpu_ctx, gdx.p, gdy.p, dt, h0, w0, h1, w1, D, sh, sw) != MK_OK)
    die("cuda pos_interp", g_gpu, g_gpu_ctx);
  const double rtol = dt == MK_F32 ? 1e-5 : dt == MK_BF16 ? 8e-3 : 1e-3;
  const double worst = std::max(worst_excess(gy.get(), cy.get(), 1e-4, rtol), worst_excess(gdx.get(), cdx.get(), 1e-4, rtol));
  char what[160];
  std::snprintf(what, sizeof(what), "pos_interp %s %lldx%lld -> %lldx%lld D=%lld", dtype_name(dt), (long long)h0, (long long)w0,
                (long long)h1, (long long)w1, (long long)D);
  report(worst <= 1, what, worst);
}

// Attention forward and backward against the CPU; kv_lens alternate full and padded.
void check_attention(mk_dtype dt, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t Dh, bool causal, bool padded) {
  const int64_t nq = B * Lq * H * Dh, nk = B * Lk * H * Dh;
  auto q = rounded(randn(nq), dt), k = rounded(randn(nk), dt), v = rounded(randn(nk), dt), g = rounded(randn(nq), dt);
  std::vector<int32_t> lens(B);
  for (int64_t b = 0; b < B; ++b) lens[b] = int32_t(padded && b % 2 ? (Lk + 1) / 2 : Lk);
  const int32_t* kl = padded ? lens.data() : nullptr;
  const float scale = 1.f / std::sqrt(float(Dh));
  const std::vector<float> zq(nq), zk(nk), zl(B * H * Lq);
  CpuBuf cq(q), ck(k), cv(v), cg(g), co(zq), cl(zl), cdq(zq), cdk(zk), cdv(zk);
  GpuBuf gq(q, dt), gk(k, dt), gv(v, dt), gg(g, dt), go(zq, dt), gl(zl, MK_F32), gdq(zq, dt), gdk(zk, dt), gdv(zk, dt);
  if (g_cpu->attention_forward(g_cpu_ctx, co.p, static_cast<float*>(cl.p), cq.p, ck.p, cv.p, kl, MK_F32, B, Lq, Lk, H, Dh,
                               scale, causal) != MK_OK ||
      g_cpu->attention_backward(g_cpu_ctx, cdq.p, cdk.p, cdv.p, cq.p, ck.p, cv.p, co.p, static_cast<float*>(cl.p), cg.p, kl,
                                MK_F32, B, Lq, Lk, H, Dh, scale, causal) != MK_OK)
    die("cpu attention", g_cpu, g_cpu_ctx);
  if (g_gpu->attention_forward(g_gpu_ctx, go.p, static_cast<float*>(gl.p), gq.p, gk.p, gv.p, kl, dt, B, Lq, Lk, H, Dh,
                               scale, causal) != MK_OK ||
      g_gpu->attention_backward(g_gpu_ctx, gdq.p, gdk.p, gdv.p, gq.p, gk.p, gv.p, go.p, static_cast<float*>(gl.p), gg.p, kl,
                                dt, B, Lq, Lk, H, Dh, scale, causal) != MK_OK)
    die("cuda attention", g_gpu, g_gpu_ctx);
  const double rtol = dt == MK_F32 ? 1e-4 : dt == MK_BF16 ? 2e-2 : 4e-3, atol = dt == MK_F32 ? 1e-4 : 3e-2;
  const double worst = std::max({worst_excess(go.get(), co.get(), atol, rtol), worst_excess(gl.get(), cl.get(), 1e-3, 1e-3),
                                 worst_excess(gdq.get(), cdq.get(), atol, rtol), worst_excess(gdk.get(), cdk.get(), atol, rtol),
                                 worst_excess(gdv.get(), cdv.get(), atol, rtol)});
  char what[160];
  std::snprintf(what, sizeof(what), "attention %s B=%lld Lq=%lld Lk=%lld H=%lld Dh=%lld causal=%d padded=%d", dtype_name(dt),
                (long long)B, (long long)Lq, (long long)Lk, (long long)H, (long long)Dh, causal, padded);
  report(worst <= 1, what, worst);
}

// The three loss heads against the CPU (one process); inputs rounded to the storage type.
void check_losses(mk_dtype dt, int64_t B, int64_t P, int64_t S, int64_t E) {
  auto img = rounded(randn(B * E), dt), txt = rounded(randn(B * E), dt);
  auto pat = rounded(randn(B * P * E), dt), sen = rounded(randn(B * S * E), dt);
  std::vector<int32_t> counts(B);
  for (int64_t b = 0; b < B; ++b) counts[b] = int32_t(1 + b % S);
  const std::vector<float> zbe(B * E), zp(B * P * E), zs(B * S * E);
  CpuBuf ci(img), ct(txt), cdi(zbe), cdt(zbe), cp(pat), cs(sen), cdp(zp), cds(zs);
  GpuBuf gi(img, dt), gt(txt, dt), gdi(zbe, dt), gdt(zbe, dt), gp(pat, dt), gs(sen, dt), gdp(zp, dt), gds(zs, dt);
  double cl = 0, cd = 0, gl = 0, gd = 0;
  const double rtol = dt == MK_F32 ? 1e-4 : 2e-2;
  auto close = [&](double a, double b) { return std::fabs(a - b) <= 1e-4 + rtol * std::fabs(b); };
  char what[160];
  if (g_cpu->clip_loss(g_cpu_ctx, &cl, &cd, cdi.p, cdt.p, cdi.p, cdt.p, ci.p, ct.p, ci.p, ct.p, MK_F32, B, B, E, 0, 2.f) != MK_OK)
    die("cpu clip_loss", g_cpu, g_cpu_ctx);
  if (g_gpu->clip_loss(g_gpu_ctx, &gl, &gd, gdi.p, gdt.p, gdi.p, gdt.p, gi.p, gt.p, gi.p, gt.p, dt, B, B, E, 0, 2.f) != MK_OK)
    die("cuda clip_loss", g_gpu, g_gpu_ctx);
  double worst = std::max(worst_excess(gdi.get(), cdi.get(), 1e-4, rtol), worst_excess(gdt.get(), cdt.get(), 1e-4, rtol));
  std::snprintf(what, sizeof(what), "clip_loss %s B=%lld E=%lld", dtype_name(dt), (long long)B, (long long)E);
  report(worst <= 1 && close(gl, cl) && close(gd, cd), what, worst);
  if (g_cpu->nt_xent(g_cpu_ctx, &cl, cdi.p, cdt.p, ci.p, ct.p, MK_F32, B, E, 0.5f) != MK_OK) die("cpu nt_xent", g_cpu, g_cpu_ctx);
  if (g_gpu->nt_xent(g_gpu_ctx, &gl, gdi.p, gdt.p, gi.p, gt.p, dt, B, E, 0.5f) != MK_OK) die("cuda nt_xent", g_gpu, g_gpu_ctx);
  worst = std::max(worst_excess(gdi.get(), cdi.get(), 1e-4, rtol), worst_excess(gdt.get(), cdt.get(), 1e-4, rtol));
  std::snprintf(what, sizeof(what), "nt_xent %s B=%lld E=%lld", dtype_name(dt), (long long)B, (long long)E);
  report(worst <= 1 && close(gl, cl), what, worst);
  if (g_cpu->local_align(g_cpu_ctx, &cl, &cd, cdp.p, cds.p, cdp.p, cds.p, cp.p, cs.p, counts.data(), cp.p, cs.p, counts.data(),
                         MK_F32, B, B, P, S, E, 0, 1.f) != MK_OK)
    die("cpu local_align", g_cpu, g_cpu_ctx);
  if (g_gpu->local_align(g_gpu_ctx, &gl, &gd, gdp.p, gds.p, gdp.p, gds.p, gp.p, gs.p, counts.data(), gp.p, gs.p, counts.data(),
                         dt, B, B, P, S, E, 0, 1.f) != MK_OK)
    die("cuda local_align", g_gpu, g_gpu_ctx);
  worst = std::max(worst_excess(gdp.get(), cdp.get(), 1e-4, rtol), worst_excess(gds.get(), cds.get(), 1e-4, rtol));
  std::snprintf(what, sizeof(what), "local_align %s B=%lld P=%lld S=%lld E=%lld", dtype_name(dt), (long long)B, (long long)P,
                (long long)S, (long long)E);
  report(worst <= 1 && close(gl, cl) && close(gd, cd), what, worst);
}

template <class F>
double time_gpu(F&& f) {
  f();
  g_gpu->synchronize(g_gpu_ctx);
  int reps = 0;
  auto t0 = std::chrono::steady_clock::now();
  double dt = 0;
  while (dt < 0.5 || reps < 5) {
    f();
    ++reps;
    g_gpu->synchronize(g_gpu_ctx);
    dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return dt / reps;
}

void bench_matmul(FILE* out, mk_dtype dt, int64_t M, int64_t N, int64_t K) {
  GpuBuf a(randn(M * K), dt), b(randn(K * N), dt), c(std::vector<float>(M * N), dt);
  const double s = time_gpu([&] { g_gpu->matmul(g_gpu_ctx, c.p, a.p, b.p, nullptr, dt, M, N, K, 0, 0, 0); });
  const double flops = 2.0 * M * N * K;
  std::printf("bench matmul %s %lldx%lldx%lld: %.3f ms, %.1f TFLOP/s\n", dtype_name(dt), (long long)M, (long long)N, (long long)K,
              s * 1e3, flops / s / 1e12);
  if (out)
    std::fprintf(out, "{\"op\":\"matmul\",\"dtype\":\"%s\",\"M\":%lld,\"N\":%lld,\"K\":%lld,\"seconds\":%.9g,\"flops\":%.9g}\n",
                 dtype_name(dt), (long long)M, (long long)N, (long long)K, s, flops);
}

// Forward + backward at the paper's image size (16 images of 518², p 14, ViT-B width).
void bench_patch_embed(FILE* out, mk_dtype dt, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p, int64_t D) {
  const int64_t np = (H / p) * (W / p), kp = C * p * p;
  GpuBuf img(randn(B * C * H * W), dt), w(randn(D * kp), dt), bias(randn(D), dt), pos(randn(np * D), dt);
  GpuBuf tok(std::vector<float>(B * np * D), dt), dtok(randn(B * np * D), dt);
  GpuBuf dw(std::vector<float>(D * kp), dt), db(std::vector<float>(D), dt), dp(std::vector<float>(np * D), dt);
  const double s = time_gpu([&] {
    g_gpu->patch_embed_forward(g_gpu_ctx, tok.p, img.p, w.p, bias.p, pos.p, dt, B, C, H, W, p, D, np, 0);
    g_gpu->patch_embed_backward(g_gpu_ctx, dw.p, db.p, dp.p, dtok.p, img.p, dt, B, C, H, W, p, D, np, 0);
  });
  const double flops = 2 * 2.0 * B * np * D * kp;
  char name[96];
  std::snprintf(name, sizeof(name), "fwd+bwd %lldx%lldx%lldx%lld p%lld D%lld", (long long)B, (long long)C, (long long)H,
                (long long)W, (long long)p, (long long)D);
  std::printf("bench patch_embed %s %s: %.3f ms, %.1f TFLOP/s\n", dtype_name(dt), name, s * 1e3, flops / s / 1e12);
  if (out)
    std::fprintf(out,
                 "{\"op\":\"patch_embed\",\"dtype\":\"%s\",\"case\":\"%s\",\"B\":%lld,\"C\":%lld,\"H\":%lld,\"W\":%lld,"
                 "\"p\":%lld,\"D\":%lld,\"bwd\":true,\"seconds\":%.9g,\"flops\":%.9g}\n",
                 dtype_name(dt), name, (long long)B, (long long)C, (long long)H, (long long)W, (long long)p, (long long)D, s,
                 flops);
}

// The paper's ViT attention at batch 16, forward and forward + backward (PyTorch's peer is
// scaled_dot_product_attention on the same card).
void bench_attention(FILE* out, mk_dtype dt, int64_t B, int64_t L, int64_t H, int64_t Dh, bool bwd) {
  const int64_t n = B * L * H * Dh;
  GpuBuf q(randn(n), dt), k(randn(n), dt), v(randn(n), dt), g(randn(n), dt), o(std::vector<float>(n), dt);
  GpuBuf l(std::vector<float>(B * H * L), MK_F32), dq(std::vector<float>(n), dt), dk(std::vector<float>(n), dt),
      dv(std::vector<float>(n), dt);
  const float scale = 1.f / std::sqrt(float(Dh));
  const double s = time_gpu([&] {
    g_gpu->attention_forward(g_gpu_ctx, o.p, static_cast<float*>(l.p), q.p, k.p, v.p, nullptr, dt, B, L, L, H, Dh, scale, 0);
    if (bwd)
      g_gpu->attention_backward(g_gpu_ctx, dq.p, dk.p, dv.p, q.p, k.p, v.p, o.p, static_cast<float*>(l.p), g.p, nullptr, dt,
                                B, L, L, H, Dh, scale, 0);
  });
  const double flops = (bwd ? 3.5 : 1.0) * 4.0 * B * H * L * L * Dh;
  char name[96];
  std::snprintf(name, sizeof(name), "%s B%lld L%lld H%lld Dh%lld", bwd ? "fwd+bwd" : "fwd", (long long)B, (long long)L,
                (long long)H, (long long)Dh);
  std::printf("bench attention %s %s: %.3f ms, %.1f TFLOP/s\n", dtype_name(dt), name, s * 1e3, flops / s / 1e12);
  if (out)
    std::fprintf(out,
                 "{\"op\":\"attention\",\"dtype\":\"%s\",\"case\":\"%s\",\"B\":%lld,\"L\":%lld,\"H\":%lld,\"Dh\":%lld,"
                 "\"bwd\":%s,\"sdpa\":true,\"seconds\":%.9g,\"flops\":%.9g}\n",
                 dtype_name(dt), name, (long long)B, (long long)L, (long long)H, (long long)Dh, bwd ? "true" : "false", s,
                 flops);
}

// MaMA's local loss at the paper's batch (B 144, 1369 patches, 12 sentences, E 512).
void bench_local_align(FILE* out, mk_dtype dt, int64_t B, int64_t P, int64_t S, int64_t E) {
  GpuBuf pat(randn(B * P * E), dt), sen(randn(B * S * E), dt), dp(std::vector<float>(B * P * E), dt),
      ds(std::vector<float>(B * S * E), dt);
  std::vector<int32_t> counts(B);
  for (int64_t b = 0; b < B; ++b) counts[b] = int32_t(8 + b % 5);
  double loss = 0, dscale = 0;
  const double s = time_gpu([&] {
    g_gpu->local_align(g_gpu_ctx, &loss, &dscale, dp.p, ds.p, dp.p, ds.p, pat.p, sen.p, counts.data(), pat.p, sen.p,
                       counts.data(), dt, B, B, P, S, E, 0, 1.f);
  });
  const double flops = 2.0 * B * B * S * P * E;
  char name[96];
  std::snprintf(name, sizeof(name), "fwd+bwd B%lld P%lld S%lld E%lld", (long long)B, (long long)P, (long long)S, (long long)E);
  std::printf("bench local_align %s %s: %.3f ms, %.2f TFLOP/s\n", dtype_name(dt), name, s * 1e3, flops / s / 1e12);
  if (out) {
    std::fprintf(out, "{\"op\":\"local_align\",\"dtype\":\"%s\",\"case\":\"%s\",\"B\":%lld,\"P\":%lld,\"S\":%lld,\"E\":%lld,\"counts\":[",
                 dtype_name(dt), name, (long long)B, (long long)P, (long long)S, (long long)E);
    for (int64_t b = 0; b < B; ++b) std::fprintf(out, "%s%d", b ? "," : "", counts[b]);
    std::fprintf(out, "],\"seconds\":%.9g,\"flops\":%.9g}\n", s, flops);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* lib = "libmamakit_cuda.so";
  const char* bench = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--lib") && i + 1 < argc) lib = argv[++i];
    else if (!std::strcmp(argv[i], "--bench") && i + 1 < argc) bench = argv[++i];
  }
  g_cpu = mk_cpu_backend();
  if (g_cpu->create(&g_cpu_ctx) != MK_OK) die("cpu create", g_cpu, nullptr);
  void* h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    std::fprintf(stderr, "cannot open %s: %s\n", lib, dlerror());
    return 2;
  }
  auto probe = reinterpret_cast<mk_cuda_probe_fn>(dlsym(h, "mk_cuda_probe"));
  auto get = reinterpret_cast<mk_cuda_backend_fn>(dlsym(h, "mk_cuda_backend"));
  char why[512] = {0};
  if (!probe || !get || probe(why, sizeof(why)) <= 0) {
    std::fprintf(stderr, "CUDA unavailable: %s\n", why);
    return 2;
  }
  g_gpu = get();
  if (g_gpu->create(&g_gpu_ctx) != MK_OK) die("cuda create", g_gpu, nullptr);
  std::printf("device: %s; cpu: %s\n", g_gpu->describe(g_gpu_ctx), g_cpu->describe(g_cpu_ctx));

  const int64_t sizes[] = {1, 3, 17, 64, 100, 129};
  for (mk_dtype dt : {MK_F32, MK_BF16, MK_F16})
    for (int i = 0; i < 24; ++i) {
      std::uniform_int_distribution<int> pick(0, 5), coin(0, 1);
      check_matmul(dt, sizes[pick(g_rng)], sizes[pick(g_rng)], sizes[pick(g_rng)], coin(g_rng), coin(g_rng), coin(g_rng), coin(g_rng));
    }
  check_matmul(MK_BF16, 1000, 1500, 700, false, true, true, false);
  for (mk_dtype dt : {MK_F32, MK_BF16}) {
    check_patch_embed(dt, 2, 1, 28, 42, 14, 33);
    check_patch_embed(dt, 3, 3, 32, 48, 16, 70);
    check_patch_embed(dt, 2, 1, 518, 518, 14, 96);
    check_pos_interp(dt, 37, 37, 16, 16, 24);
    check_pos_interp(dt, 16, 16, 37, 40, 7);
  }
  for (mk_dtype dt : {MK_F32, MK_BF16, MK_F16}) {
    check_attention(dt, 2, 67, 67, 3, 64, true, true);
    check_attention(dt, 2, 130, 75, 2, 80, false, true);
    check_attention(dt, 1, 200, 200, 2, 128, false, false);
    check_attention(dt, 3, 33, 33, 2, 32, true, false);
  }
  for (mk_dtype dt : {MK_F32, MK_BF16}) {
    check_losses(dt, 7, 50, 12, 40);
    check_losses(dt, 33, 196, 12, 128);
  }

  if (bench) {
    FILE* out = std::fopen(bench, "w");
    for (mk_dtype dt : {MK_BF16, MK_F32}) {
      bench_matmul(out, dt, 4096, 4096, 4096);
      bench_matmul(out, dt, 16 * 1374, 2304, 768);  // ViT-B/14 qkv at batch 16
      bench_patch_embed(out, dt, 16, 1, 518, 518, 14, 768);
      bench_attention(out, dt, 16, 1374, 12, 64, false);
      bench_attention(out, dt, 16, 1374, 12, 64, true);
      bench_local_align(out, dt, 144, 1369, 12, 512);
    }
    if (out) std::fclose(out);
  }
  std::printf("checks: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
