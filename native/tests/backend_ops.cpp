// backend_ops.cpp: the cross-backend op test. Walks the CUDA backend's table (mamakit.h) and runs
// every non-NULL kernel entry on seeded random inputs in f32, bf16 and f16 at several shapes (odd
// sizes, tile edges) against the CPU backend through the C ABI; outputs start as NaN, accumulated
// gradients as random values. An entry with no case here fails. It keeps going after a failure
// and prints every failing case with its worst element; the last line is
// "checks: N passed, N failed". On a GPU (not the emulated library) it adds large shapes and,
// with --bench, times the CUDA ops (every return code checked).
//   backend_ops --lib build/Release/libmamakit_cuda_emu.so       (the emulated library, as in CI)
//   backend_ops --lib build-gpu/libmamakit_cuda.so --bench out.jsonl   (bench/gpu.sh on a GPU)
//   --only attention   runs the cases whose entries contain "attention"
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "mamakit.h"

namespace {

// The kernel entries, checked against the struct: one added to mk_backend but not to
// MK_BACKEND_KERNELS fails to compile here.
#define MK_COUNT(name) +1
constexpr size_t kKernels = 0 MK_BACKEND_KERNELS(MK_COUNT);
static_assert(offsetof(mk_backend, matmul) + kKernels * sizeof(void*) == sizeof(mk_backend),
              "MK_BACKEND_KERNELS in mamakit.h does not list every kernel entry of mk_backend");

const mk_backend* g_cpu;
mk_context* g_cpu_ctx;
const mk_backend* g_gpu;
mk_context* g_gpu_ctx;
bool g_emulated = false;
int g_passed = 0, g_failed = 0;
std::mt19937 g_rng(20261206);
const float kNaN = std::numeric_limits<float>::quiet_NaN();

const char* dtype_name(mk_dtype d) { return d == MK_BF16 ? "bf16" : d == MK_F16 ? "f16" : "f32"; }
size_t dtype_size(mk_dtype d) { return d == MK_F32 ? 4 : 2; }
const mk_dtype kDtypes[] = {MK_F32, MK_BF16, MK_F16};

[[noreturn]] void die(const char* what, const mk_backend* be, mk_context* ctx) {
  std::fprintf(stderr, "%s: %s\n", what, be->last_error(ctx));
  std::exit(2);
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

std::vector<float> randn(size_t n, float scale = 1.f) {
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}
std::vector<float> nans(size_t n) { return std::vector<float>(n, kNaN); }

// A buffer on the GPU in `dtype`.
struct GpuBuf {
  void* p = nullptr;
  size_t n = 0;
  mk_dtype dtype = MK_F32;
  GpuBuf(const std::vector<float>& host, mk_dtype dt) : n(host.size()), dtype(dt) {
    if (g_gpu->alloc(g_gpu_ctx, &p, std::max<size_t>(1, n) * dtype_size(dt)) != MK_OK) die("alloc", g_gpu, g_gpu_ctx);
    if (n && g_gpu->upload(g_gpu_ctx, p, dt, host.data(), n) != MK_OK) die("upload", g_gpu, g_gpu_ctx);
  }
  GpuBuf(const GpuBuf&) = delete;
  ~GpuBuf() { g_gpu->free(g_gpu_ctx, p); }
  std::vector<float> get() const {
    std::vector<float> h(n);
    if (n && g_gpu->download(g_gpu_ctx, h.data(), p, dtype, n) != MK_OK) die("download", g_gpu, g_gpu_ctx);
    return h;
  }
  float* f32() const { return static_cast<float*>(p); }
};

// A buffer on the CPU (f32).
struct CpuBuf {
  void* p = nullptr;
  size_t n = 0;
  explicit CpuBuf(const std::vector<float>& host) : n(host.size()) {
    if (g_cpu->alloc(g_cpu_ctx, &p, std::max<size_t>(1, n) * 4) != MK_OK) die("alloc", g_cpu, g_cpu_ctx);
    if (n) std::memcpy(p, host.data(), n * 4);
  }
  CpuBuf(const CpuBuf&) = delete;
  ~CpuBuf() { g_cpu->free(g_cpu_ctx, p); }
  std::vector<float> get() const { return std::vector<float>(static_cast<float*>(p), static_cast<float*>(p) + n); }
  float* f32() const { return static_cast<float*>(p); }
};

// Host values rounded to `dtype` through the GPU, so that both backends see the same numbers.
std::vector<float> rounded(const std::vector<float>& v, mk_dtype dt) { return dt == MK_F32 ? v : GpuBuf(v, dt).get(); }
std::vector<float> rnd(size_t n, mk_dtype dt, float scale = 1.f) { return rounded(randn(n, scale), dt); }

// One output of a case: what the GPU gave, what the CPU gave.
struct Out {
  const char* name;
  std::vector<float> got, want;
};

// |gpu − cpu| ≤ rtol·|cpu| + atol·scale for every element, scale = max |cpu| of that output:
// f32 rtol = atol = 1e-5 (f32 arithmetic in another order); bf16/f16 1e-2 (16-bit storage of
// the results and, on tensor cores, of intermediates). `loose` widens both for reductions
// whose terms are rounded to 16 bits before they are summed.
void compare(const std::string& what, mk_dtype dt, const std::vector<Out>& outs, double loose = 1) {
  const double tol = (dt == MK_F32 ? 1e-5 : 1e-2) * loose;
  double worst = 0;
  std::string where;
  for (const Out& o : outs) {
    if (o.got.size() != o.want.size()) {
      worst = INFINITY, where = fmt("%s: %zu values, the CPU %zu", o.name, o.got.size(), o.want.size());
      break;
    }
    double scale = 0;
    for (float v : o.want) scale = std::max(scale, std::fabs(double(v)));
    for (size_t i = 0; i < o.got.size(); ++i) {
      const double err = std::fabs(double(o.got[i]) - o.want[i]), lim = tol * (std::fabs(o.want[i]) + scale) + 1e-30;
      const double e = std::isnan(err) ? INFINITY : err / lim;
      if (e > worst) worst = e, where = fmt("%s[%zu] = %.7g, cpu %.7g", o.name, i, o.got[i], o.want[i]);
    }
  }
  const bool ok = worst <= 1;
  (ok ? g_passed : g_failed)++;
  if (ok) std::printf("ok   %s\n", what.c_str());
  else std::printf("FAIL %s: worst %s (%.3g× the tolerance)\n", what.c_str(), where.c_str(), worst);
}

// A backend call that failed: the case fails with the backend's message.
bool called(mk_status s, const mk_backend* be, mk_context* ctx, const std::string& what) {
  if (s == MK_OK) return true;
  ++g_failed;
  std::printf("FAIL %s: %s returned %d: %s\n", what.c_str(), be->name, int(s), be->last_error(ctx));
  return false;
}
#define CPU(call, what) called(g_cpu->call, g_cpu, g_cpu_ctx, what)
#define GPU(call, what) called(g_gpu->call, g_gpu, g_gpu_ctx, what)

// ---- cases ----------------------------------------------------------------------------------

void matmul_case(mk_dtype dt, int64_t M, int64_t N, int64_t K, bool ta, bool tb, bool bias, bool acc) {
  const std::string what = fmt("matmul %s M=%lld N=%lld K=%lld ta=%d tb=%d bias=%d acc=%d", dtype_name(dt), (long long)M,
                               (long long)N, (long long)K, ta, tb, bias, acc);
  auto a = rnd(M * K, dt), b = rnd(K * N, dt), bv = rnd(N, dt), c0 = acc ? rnd(M * N, dt) : nans(M * N);
  CpuBuf ca(a), cb(b), cbias(bv), cc(c0);
  GpuBuf ga(a, dt), gb(b, dt), gbias(bv, dt), gc(c0, dt);
  if (!CPU(matmul(g_cpu_ctx, cc.p, ca.p, cb.p, bias ? cbias.p : nullptr, MK_F32, M, N, K, ta, tb, acc), what) ||
      !GPU(matmul(g_gpu_ctx, gc.p, ga.p, gb.p, bias ? gbias.p : nullptr, dt, M, N, K, ta, tb, acc), what))
    return;
  compare(what, dt, {{"c", gc.get(), cc.get()}});
}

void check_matmul() {
  // Tile edges of the 64×64×16 kernel, odd sizes, one-element products.
  const int64_t shapes[][3] = {{1, 1, 1}, {63, 64, 17}, {64, 65, 16}, {65, 63, 15}, {129, 100, 33}, {3, 129, 64}, {100, 2, 130}};
  int i = 0;
  for (mk_dtype dt : kDtypes)
    for (const auto& s : shapes)
      for (int t = 0; t < 4; ++t, ++i) matmul_case(dt, s[0], s[1], s[2], t & 1, t >> 1, i % 3 == 0, i % 2 == 0);
  if (!g_emulated) matmul_case(MK_BF16, 1000, 1500, 700, false, true, true, false);
}

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
}

void check_patch_embed() {
  for (mk_dtype dt : kDtypes) {
    patch_embed_case(dt, 2, 1, 28, 42, 14, 33, 5, true);
    patch_embed_case(dt, 3, 3, 32, 48, 16, 70, 0, true);
    patch_embed_case(dt, 1, 2, 8, 12, 4, 64, 1, false);
    patch_embed_case(dt, 2, 1, 20, 20, 4, 65, 3, true);
  }
  if (!g_emulated) patch_embed_case(MK_BF16, 2, 1, 518, 518, 14, 96, 5, true);
}

void pos_interp_case(mk_dtype dt, int64_t h0, int64_t w0, int64_t h1, int64_t w1, int64_t D) {
  const std::string what = fmt("pos_interp %s %lldx%lld -> %lldx%lld D=%lld", dtype_name(dt), (long long)h0, (long long)w0,
                               (long long)h1, (long long)w1, (long long)D);
  auto x = rnd(h0 * w0 * D, dt), dy = rnd(h1 * w1 * D, dt);
  CpuBuf cx(x), cy(nans(h1 * w1 * D)), cdy(dy), cdx(nans(h0 * w0 * D));
  GpuBuf gx(x, dt), gy(nans(h1 * w1 * D), dt), gdy(dy, dt), gdx(nans(h0 * w0 * D), dt);
  const float sh = float(h0) / float(h1), sw = float(w0) / float(w1);
  if (!CPU(pos_interp_forward(g_cpu_ctx, cy.p, cx.p, MK_F32, h0, w0, h1, w1, D, sh, sw), what) ||
      !CPU(pos_interp_backward(g_cpu_ctx, cdx.p, cdy.p, MK_F32, h0, w0, h1, w1, D, sh, sw), what) ||
      !GPU(pos_interp_forward(g_gpu_ctx, gy.p, gx.p, dt, h0, w0, h1, w1, D, sh, sw), what) ||
      !GPU(pos_interp_backward(g_gpu_ctx, gdx.p, gdy.p, dt, h0, w0, h1, w1, D, sh, sw), what))
    return;
  compare(what, dt, {{"y", gy.get(), cy.get()}, {"dx", gdx.get(), cdx.get()}});
}

void check_pos_interp() {
  for (mk_dtype dt : kDtypes) {
    pos_interp_case(dt, 37, 37, 16, 16, 24);
    pos_interp_case(dt, 16, 16, 37, 40, 7);
    pos_interp_case(dt, 4, 4, 4, 4, 5);
    pos_interp_case(dt, 3, 5, 7, 2, 9);
  }
}

// Attention forward and backward; kv_lens (padded) alternate full and partial per batch entry.
// With `odd`, every GPU tensor starts one element into its allocation (a view at an odd offset:
// 16-bit operands are then not 4-byte aligned and take the kernels without tensor cores).
void attention_case(mk_dtype dt, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t Dh, bool causal, bool padded, bool odd = false) {
  const std::string what = fmt("attention %s B=%lld Lq=%lld Lk=%lld H=%lld Dh=%lld causal=%d padded=%d%s", dtype_name(dt), (long long)B,
                               (long long)Lq, (long long)Lk, (long long)H, (long long)Dh, causal, padded, odd ? " odd offsets" : "");
  const int64_t nq = B * Lq * H * Dh, nk = B * Lk * H * Dh;
  auto q = rnd(nq, dt), k = rnd(nk, dt), v = rnd(nk, dt), g = rnd(nq, dt);
  std::vector<int32_t> lens(B);
  for (int64_t b = 0; b < B; ++b) lens[b] = int32_t(padded && b % 2 == 0 ? std::max<int64_t>(1, Lk / 3 + b) : Lk);
  const int32_t* kl = padded ? lens.data() : nullptr;
  const float scale = 1.f / std::sqrt(float(Dh));
  CpuBuf cq(q), ck(k), cv(v), cg(g), co(nans(nq)), cl(nans(B * H * Lq)), cdq(nans(nq)), cdk(nans(nk)), cdv(nans(nk));
  auto pad = [&](const std::vector<float>& x) {
    std::vector<float> y(x.size() + (odd ? 1 : 0), kNaN);
    std::copy(x.begin(), x.end(), y.begin() + (odd ? 1 : 0));
    return y;
  };
  auto unpad = [&](const GpuBuf& b) {
    auto h = b.get();
    return odd ? std::vector<float>(h.begin() + 1, h.end()) : h;
  };
  GpuBuf gq(pad(q), dt), gk(pad(k), dt), gv(pad(v), dt), gg(pad(g), dt), go(pad(nans(nq)), dt), gl(nans(B * H * Lq), MK_F32),
      gdq(pad(nans(nq)), dt), gdk(pad(nans(nk)), dt), gdv(pad(nans(nk)), dt);
  const size_t sh = odd ? dtype_size(dt) : 0;
  auto at = [&](const GpuBuf& b) { return static_cast<void*>(static_cast<char*>(b.p) + sh); };
  if (!CPU(attention_forward(g_cpu_ctx, co.p, cl.f32(), cq.p, ck.p, cv.p, kl, MK_F32, B, Lq, Lk, H, Dh, scale, causal), what) ||
      !CPU(attention_backward(g_cpu_ctx, cdq.p, cdk.p, cdv.p, cq.p, ck.p, cv.p, co.p, cl.f32(), cg.p, kl, MK_F32, B, Lq, Lk, H, Dh,
                              scale, causal),
           what))
    return;
  // The GPU backward reads the GPU's own forward (out and lse), as training does.
  if (!GPU(attention_forward(g_gpu_ctx, at(go), gl.f32(), at(gq), at(gk), at(gv), kl, dt, B, Lq, Lk, H, Dh, scale, causal), what) ||
      !GPU(attention_backward(g_gpu_ctx, at(gdq), at(gdk), at(gdv), at(gq), at(gk), at(gv), at(go), gl.f32(), at(gg), kl, dt, B, Lq, Lk,
                              H, Dh, scale, causal),
           what))
    return;
  compare(what, dt, {{"out", unpad(go), co.get()}, {"lse", gl.get(), cl.get()}, {"dq", unpad(gdq), cdq.get()},
                     {"dk", unpad(gdk), cdk.get()}, {"dv", unpad(gdv), cdv.get()}});
}

void check_attention() {
  for (mk_dtype dt : kDtypes) {
    // Head dims 32/64/80/128 take the tensor cores in bf16/f16; 40 and 16 the other kernels.
    attention_case(dt, 2, 67, 67, 3, 64, true, true);
    attention_case(dt, 2, 130, 75, 2, 80, false, true);
    attention_case(dt, 1, 100, 100, 2, 128, false, false);
    attention_case(dt, 3, 33, 33, 2, 32, true, false);
    attention_case(dt, 1, 17, 70, 1, 40, false, true);
    attention_case(dt, 2, 1, 5, 1, 16, false, true);
    attention_case(dt, 1, 40, 40, 2, 64, true, true, true);
  }
  if (!g_emulated)
    for (mk_dtype dt : kDtypes) attention_case(dt, 2, 600, 600, 4, 64, true, true);
}

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
  double cl = 0, cds = 0, gl = 0, gds = 0;
  // One process: the *_all arguments are the local ones (and the *_all gradients alias them).
  if (!CPU(clip_loss(g_cpu_ctx, &cl, &cds, cdi.p, cdt.p, one ? cdi.p : cdia.p, one ? cdt.p : cdta.p, ci.p, ct.p, one ? ci.p : cia.p,
                     one ? ct.p : cta.p, MK_F32, Bl, Bg, E, offset, 2.f),
           what) ||
      !GPU(clip_loss(g_gpu_ctx, &gl, &gds, gdi.p, gdt.p, one ? gdi.p : gdia.p, one ? gdt.p : gdta.p, gi.p, gt.p, one ? gi.p : gia.p,
                     one ? gt.p : gta.p, dt, Bl, Bg, E, offset, 2.f),
           what))
    return;
  std::vector<Out> outs = {{"loss", {float(gl), float(gds)}, {float(cl), float(cds)}}, {"dimg", gdi.get(), cdi.get()}, {"dtxt", gdt.get(), cdt.get()}};
  if (!one) outs.push_back({"dimg_all", gdia.get(), cdia.get()}), outs.push_back({"dtxt_all", gdta.get(), cdta.get()});
  compare(what, dt, outs);
}

void nt_xent_case(mk_dtype dt, int64_t B, int64_t E) {
  const std::string what = fmt("nt_xent %s B=%lld E=%lld", dtype_name(dt), (long long)B, (long long)E);
  auto z0 = rnd(B * E, dt), z1 = rnd(B * E, dt);
  CpuBuf c0(z0), c1(z1), cd0(nans(B * E)), cd1(nans(B * E));
  GpuBuf g0(z0, dt), g1(z1, dt), gd0(nans(B * E), dt), gd1(nans(B * E), dt);
  double cl = 0, gl = 0;
  if (!CPU(nt_xent(g_cpu_ctx, &cl, cd0.p, cd1.p, c0.p, c1.p, MK_F32, B, E, 0.5f), what) ||
      !GPU(nt_xent(g_gpu_ctx, &gl, gd0.p, gd1.p, g0.p, g1.p, dt, B, E, 0.5f), what))
    return;
  compare(what, dt, {{"loss", {float(gl)}, {float(cl)}}, {"dz0", gd0.get(), cd0.get()}, {"dz1", gd1.get(), cd1.get()}});
}

// Unit rows of E; with `lead` each row's first coordinate is positive.
std::vector<float> unit_rows(int64_t R, int64_t E, bool lead) {
  auto x = randn(R * E);
  for (int64_t r = 0; r < R; ++r) {
    if (lead) x[r * E] = 0.5f + std::fabs(x[r * E]);
    double q = 0;
    for (int64_t e = 0; e < E; ++e) q += double(x[r * E + e]) * x[r * E + e];
    for (int64_t e = 0; e < E; ++e) x[r * E + e] = float(x[r * E + e] / std::sqrt(q));
  }
  return x;
}

// Local alignment; sentence rows past a caption's count hold 1000·e₀, which would win every
// max over sentences (the patches' first coordinates are positive) if a kernel read them.
void local_align_case(mk_dtype dt, int64_t Bl, int64_t Bg, int64_t P, int64_t S, int64_t E, int64_t offset) {
  const std::string what = fmt("local_align %s Bl=%lld Bg=%lld P=%lld S=%lld E=%lld offset=%lld", dtype_name(dt), (long long)Bl,
                               (long long)Bg, (long long)P, (long long)S, (long long)E, (long long)offset);
  const bool one = Bl == Bg;
  std::vector<int32_t> counts(Bg);
  for (int64_t b = 0; b < Bg; ++b) counts[b] = int32_t(b == 0 ? 1 : b == 1 ? S : 1 + int64_t(g_rng() % uint32_t(S)));
  auto pa = rounded(unit_rows(Bg * P, E, true), dt), sa = unit_rows(Bg * S, E, false);
  for (int64_t b = 0; b < Bg; ++b)
    for (int64_t j = counts[b]; j < S; ++j)
      for (int64_t e = 0; e < E; ++e) sa[(b * S + j) * E + e] = e == 0 ? 1000.f : 0.f;
  sa = rounded(sa, dt);
  std::vector<float> pl(pa.begin() + offset * P * E, pa.begin() + (offset + Bl) * P * E);
  std::vector<float> sl(sa.begin() + offset * S * E, sa.begin() + (offset + Bl) * S * E);
  std::vector<int32_t> cl_(counts.begin() + offset, counts.begin() + offset + Bl);
  auto dpa0 = one ? nans(Bg * P * E) : rnd(Bg * P * E, dt), dsa0 = one ? nans(Bg * S * E) : rnd(Bg * S * E, dt);
  CpuBuf cp(pl), cs(sl), cpa(pa), csa(sa), cdp(nans(Bl * P * E)), cds(nans(Bl * S * E)), cdpa(dpa0), cdsa(dsa0);
  GpuBuf gp(pl, dt), gs(sl, dt), gpa(pa, dt), gsa(sa, dt), gdp(nans(Bl * P * E), dt), gds(nans(Bl * S * E), dt), gdpa(dpa0, dt),
      gdsa(dsa0, dt);
  double cl = 0, cdsc = 0, gl = 0, gdsc = 0;
  if (!CPU(local_align(g_cpu_ctx, &cl, &cdsc, cdp.p, cds.p, one ? cdp.p : cdpa.p, one ? cds.p : cdsa.p, cp.p, cs.p, cl_.data(),
                       one ? cp.p : cpa.p, one ? cs.p : csa.p, counts.data(), MK_F32, Bl, Bg, P, S, E, offset, 1.f),
           what) ||
      !GPU(local_align(g_gpu_ctx, &gl, &gdsc, gdp.p, gds.p, one ? gdp.p : gdpa.p, one ? gds.p : gdsa.p, gp.p, gs.p, cl_.data(),
                       one ? gp.p : gpa.p, one ? gs.p : gsa.p, counts.data(), dt, Bl, Bg, P, S, E, offset, 1.f),
           what))
    return;
  std::vector<Out> outs = {{"loss", {float(gl), float(gdsc)}, {float(cl), float(cdsc)}}, {"dpatches", gdp.get(), cdp.get()},
                           {"dsentences", gds.get(), cds.get()}};
  if (!one) outs.push_back({"dpatches_all", gdpa.get(), cdpa.get()}), outs.push_back({"dsentences_all", gdsa.get(), cdsa.get()});
  compare(what, dt, outs);
}

void check_losses() {
  for (mk_dtype dt : kDtypes) {
    clip_loss_case(dt, 7, 7, 40, 0);
    clip_loss_case(dt, 3, 9, 33, 4);
    nt_xent_case(dt, 7, 40);
    nt_xent_case(dt, 1, 5);
    local_align_case(dt, 5, 5, 37, 6, 24, 0);
    local_align_case(dt, 2, 6, 20, 12, 16, 3);
  }
  if (!g_emulated) local_align_case(MK_BF16, 33, 33, 196, 12, 128, 0);
}

// ---- the table walk -------------------------------------------------------------------------

struct Case {
  std::vector<const char*> entries;  // the table entries a case covers
  std::function<void()> run;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {{"matmul"}, check_matmul},
      {{"patch_embed_forward", "patch_embed_backward"}, check_patch_embed},
      {{"pos_interp_forward", "pos_interp_backward"}, check_pos_interp},
      {{"attention_forward", "attention_backward"}, check_attention},
      {{"copy2d"}, check_copy2d},
      {{"clip_loss", "nt_xent", "local_align"}, check_losses},
  };
  return all;
}

// ---- timings (a GPU only) --------------------------------------------------------------------

// Seconds per call of f (which returns false on a failed call: timing stops and the run fails).
template <class F>
double time_gpu(const char* what, F&& f) {
  auto sync = [&] { return called(g_gpu->synchronize(g_gpu_ctx), g_gpu, g_gpu_ctx, what); };
  if (!f() || !sync()) return NAN;
  int reps = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double dt = 0;
  while (dt < 0.5 || reps < 5) {
    if (!f()) return NAN;
    ++reps;
    if (!sync()) return NAN;
    dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return dt / reps;
}

void record(FILE* out, const char* op, mk_dtype dt, const std::string& name, const std::string& fields, double s, double flops) {
  if (!std::isfinite(s)) return;
  std::printf("bench %s %s %s: %.3f ms, %.1f TFLOP/s\n", op, dtype_name(dt), name.c_str(), s * 1e3, flops / s / 1e12);
  if (out)
    std::fprintf(out, "{\"op\":\"%s\",\"dtype\":\"%s\",\"case\":\"%s\",%s,\"seconds\":%.9g,\"flops\":%.9g}\n", op, dtype_name(dt),
                 name.c_str(), fields.c_str(), s, flops);
}

void bench_matmul(FILE* out, mk_dtype dt, int64_t M, int64_t N, int64_t K) {
  GpuBuf a(randn(M * K), dt), b(randn(K * N), dt), c(std::vector<float>(M * N), dt);
  const std::string name = fmt("%lldx%lldx%lld", (long long)M, (long long)N, (long long)K);
  const double s = time_gpu("bench matmul", [&] {
    return called(g_gpu->matmul(g_gpu_ctx, c.p, a.p, b.p, nullptr, dt, M, N, K, 0, 0, 0), g_gpu, g_gpu_ctx, "bench matmul");
  });
  record(out, "matmul", dt, name, fmt("\"M\":%lld,\"N\":%lld,\"K\":%lld", (long long)M, (long long)N, (long long)K), s, 2.0 * M * N * K);
}

// Forward + backward at the paper's image size (16 images of 518², p 14, ViT-B width).
void bench_patch_embed(FILE* out, mk_dtype dt, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p, int64_t D) {
  const int64_t np = (H / p) * (W / p), kp = C * p * p;
  GpuBuf img(randn(B * C * H * W), dt), w(randn(D * kp), dt), bias(randn(D), dt), pos(randn(np * D), dt);
  GpuBuf tok(std::vector<float>(B * np * D), dt), dtok(randn(B * np * D), dt);
  GpuBuf dw(std::vector<float>(D * kp), dt), db(std::vector<float>(D), dt), dp(std::vector<float>(np * D), dt);
  const std::string name = fmt("fwd+bwd %lldx%lldx%lldx%lld p%lld D%lld", (long long)B, (long long)C, (long long)H, (long long)W,
                               (long long)p, (long long)D);
  const double s = time_gpu("bench patch_embed", [&] {
    return called(g_gpu->patch_embed_forward(g_gpu_ctx, tok.p, img.p, w.p, bias.p, pos.p, dt, B, C, H, W, p, D, np, 0), g_gpu, g_gpu_ctx,
                  "bench patch_embed") &&
           called(g_gpu->patch_embed_backward(g_gpu_ctx, dw.p, db.p, dp.p, dtok.p, img.p, dt, B, C, H, W, p, D, np, 0), g_gpu, g_gpu_ctx,
                  "bench patch_embed");
  });
  record(out, "patch_embed", dt, name,
         fmt("\"B\":%lld,\"C\":%lld,\"H\":%lld,\"W\":%lld,\"p\":%lld,\"D\":%lld,\"bwd\":true", (long long)B, (long long)C, (long long)H,
             (long long)W, (long long)p, (long long)D),
         s, 2 * 2.0 * B * np * D * kp);
}

// The paper's ViT attention at batch 16, forward and forward + backward (PyTorch's peer is
// scaled_dot_product_attention on the same card).
void bench_attention(FILE* out, mk_dtype dt, int64_t B, int64_t L, int64_t H, int64_t Dh, bool bwd) {
  const int64_t n = B * L * H * Dh;
  GpuBuf q(randn(n), dt), k(randn(n), dt), v(randn(n), dt), g(randn(n), dt), o(std::vector<float>(n), dt);
  GpuBuf l(std::vector<float>(B * H * L), MK_F32), dq(std::vector<float>(n), dt), dk(std::vector<float>(n), dt), dv(std::vector<float>(n), dt);
  const float scale = 1.f / std::sqrt(float(Dh));
  const std::string name = fmt("%s B%lld L%lld H%lld Dh%lld", bwd ? "fwd+bwd" : "fwd", (long long)B, (long long)L, (long long)H, (long long)Dh);
  const double s = time_gpu("bench attention", [&] {
    return called(g_gpu->attention_forward(g_gpu_ctx, o.p, l.f32(), q.p, k.p, v.p, nullptr, dt, B, L, L, H, Dh, scale, 0), g_gpu,
                  g_gpu_ctx, "bench attention") &&
           (!bwd || called(g_gpu->attention_backward(g_gpu_ctx, dq.p, dk.p, dv.p, q.p, k.p, v.p, o.p, l.f32(), g.p, nullptr, dt, B, L, L,
                                                     H, Dh, scale, 0),
                           g_gpu, g_gpu_ctx, "bench attention"));
  });
  record(out, "attention", dt, name,
         fmt("\"B\":%lld,\"L\":%lld,\"H\":%lld,\"Dh\":%lld,\"bwd\":%s,\"sdpa\":true", (long long)B, (long long)L, (long long)H,
             (long long)Dh, bwd ? "true" : "false"),
         s, (bwd ? 3.5 : 1.0) * 4.0 * B * H * L * L * Dh);
}

// MaMA's local loss at the paper's batch (B 144, 1369 patches, 12 sentences, E 512).
void bench_local_align(FILE* out, mk_dtype dt, int64_t B, int64_t P, int64_t S, int64_t E) {
  GpuBuf pat(randn(B * P * E), dt), sen(randn(B * S * E), dt), dp(std::vector<float>(B * P * E), dt), ds(std::vector<float>(B * S * E), dt);
  std::vector<int32_t> counts(B);
  std::string cs;
  for (int64_t b = 0; b < B; ++b) counts[b] = int32_t(8 + b % 5), cs += fmt("%s%d", b ? "," : "", counts[b]);
  double loss = 0, dscale = 0;
  const std::string name = fmt("fwd+bwd B%lld P%lld S%lld E%lld", (long long)B, (long long)P, (long long)S, (long long)E);
  const double s = time_gpu("bench local_align", [&] {
    return called(g_gpu->local_align(g_gpu_ctx, &loss, &dscale, dp.p, ds.p, dp.p, ds.p, pat.p, sen.p, counts.data(), pat.p, sen.p,
                                     counts.data(), dt, B, B, P, S, E, 0, 1.f),
                  g_gpu, g_gpu_ctx, "bench local_align");
  });
  record(out, "local_align", dt, name,
         fmt("\"B\":%lld,\"P\":%lld,\"S\":%lld,\"E\":%lld,\"counts\":[%s]", (long long)B, (long long)P, (long long)S, (long long)E,
             cs.c_str()),
         s, 2.0 * B * B * S * P * E);
}

}  // namespace

int main(int argc, char** argv) {
  const char* lib = "libmamakit_cuda.so";
  const char* bench = nullptr;
  const char* only = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--lib") && i + 1 < argc) lib = argv[++i];
    else if (!std::strcmp(argv[i], "--bench") && i + 1 < argc) bench = argv[++i];
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else {
      std::fprintf(stderr, "usage: backend_ops --lib LIBRARY [--bench OUT.jsonl] [--only ENTRY]\n");
      return 2;
    }
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
  if (g_gpu->abi_version != MK_ABI_VERSION) {
    std::fprintf(stderr, "%s: ABI version %u, this checker %u\n", lib, g_gpu->abi_version, MK_ABI_VERSION);
    return 2;
  }
  if (g_gpu->create(&g_gpu_ctx) != MK_OK) die("cuda create", g_gpu, nullptr);
  const char* dev = g_gpu->describe(g_gpu_ctx);
  g_emulated = std::strncmp(dev, "emulated", 8) == 0;
  std::printf("device: %s; cpu: %s\n", dev, g_cpu->describe(g_cpu_ctx));

  // Walk the table: every non-NULL kernel entry needs a case; each case runs once.
  const char* names[] = {
#define MK_NAME(name) #name,
      MK_BACKEND_KERNELS(MK_NAME)
#undef MK_NAME
  };
  auto entry = [&](size_t i) { return reinterpret_cast<void* const*>(reinterpret_cast<const char*>(g_gpu) + offsetof(mk_backend, matmul))[i]; };
  std::vector<const Case*> run;
  size_t present = 0;
  for (size_t i = 0; i < kKernels; ++i) {
    if (!entry(i)) continue;
    ++present;
    const Case* found = nullptr;
    for (const Case& c : cases())
      for (const char* e : c.entries)
        if (!std::strcmp(e, names[i])) found = &c;
    if (!found) {
      ++g_failed;
      std::printf("FAIL %s: the CUDA table has this entry and backend_ops.cpp has no case for it\n", names[i]);
    } else if (std::find(run.begin(), run.end(), found) == run.end()) {
      run.push_back(found);
    }
  }
  std::printf("table: %zu of %zu kernel entries present on %s\n", present, kKernels, g_gpu->name);
  for (const Case* c : run) {
    if (only && std::none_of(c->entries.begin(), c->entries.end(), [&](const char* e) { return std::strstr(e, only) != nullptr; })) continue;
    c->run();
  }

  if (bench && g_emulated) {
    std::fprintf(stderr, "--bench: %s is the emulated library, which is never timed\n", lib);
    ++g_failed;
  } else if (bench) {
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
