// matmul.cpp: the op test's GEMM cases and timings. f32 (FMA kernel): tile edges of 64×64×16, odd
// sizes, every transpose. bf16/f16 (tensor-core core, native/cuda/gemm.cuh): every layout, bias,
// accumulate, c in the operands' dtype and in f32, odd M/N/K, 128-tile multiples and ±1, K not a
// multiple of 8 and misaligned operands (element loads instead of cp.async), K over many pipeline
// stages, repeats bit for bit; refused dtype pairs name themselves.
#include "common.h"

namespace ops {
namespace {

struct MatmulCase {
  mk_dtype dt, c_dt;
  int64_t M, N, K;
  bool ta, tb, bias, acc;
  bool misalign = false;  // a and b start one element past a 16-byte boundary
};

std::string describe(const MatmulCase& k) {
  return fmt("matmul %s→%s M=%lld N=%lld K=%lld ta=%d tb=%d bias=%d acc=%d%s", dtype_name(k.dt), dtype_name(k.c_dt), (long long)k.M,
             (long long)k.N, (long long)k.K, k.ta, k.tb, k.bias, k.acc, k.misalign ? " misaligned" : "");
}

// The GPU's c after one call on copies of the same inputs (c0 NaN without accumulate).
std::vector<float> gpu_matmul(const MatmulCase& k, const std::vector<float>& a, const std::vector<float>& b,
                              const std::vector<float>& bv, const std::vector<float>& c0, const std::string& what, bool* ok) {
  const size_t skip = k.misalign ? 1 : 0;
  auto padded = [&](const std::vector<float>& v) {
    std::vector<float> p(skip, 0.f);
    p.insert(p.end(), v.begin(), v.end());
    return p;
  };
  GpuBuf ga(padded(a), k.dt), gb(padded(b), k.dt), gbias(bv, k.dt), gc(c0, k.c_dt);
  const size_t off = skip * dtype_size(k.dt);
  *ok = GPU(matmul(g_gpu_ctx, gc.p, static_cast<char*>(ga.p) + off, static_cast<char*>(gb.p) + off, k.bias ? gbias.p : nullptr, k.dt,
                   k.c_dt, k.M, k.N, k.K, k.ta, k.tb, k.acc),
            what);
  return *ok ? gc.get() : std::vector<float>();
}

void matmul_case(const MatmulCase& k, bool twice = false) {
  const std::string what = describe(k);
  auto a = rnd(k.M * k.K, k.dt), b = rnd(k.K * k.N, k.dt), bv = rnd(k.N, k.dt), c0 = k.acc ? rnd(k.M * k.N, k.c_dt) : nans(k.M * k.N);
  CpuBuf ca(a), cb(b), cbias(bv), cc(c0);
  bool ok = false;
  if (!CPU(matmul(g_cpu_ctx, cc.p, ca.p, cb.p, k.bias ? cbias.p : nullptr, MK_F32, MK_F32, k.M, k.N, k.K, k.ta, k.tb, k.acc), what)) return;
  const std::vector<float> got = gpu_matmul(k, a, b, bv, c0, what, &ok);
  if (!ok) return;
  // The CPU multiplies the same rounded operands in f32: c in f32 differs only by the order of
  // the f32 sums (tensor cores add 16 products at a time), at 10× the f32 criterion; c in 16 bits
  // by its rounding.
  compare(what, k.c_dt == MK_F32 ? MK_F32 : k.dt, {{"c", got, cc.get()}}, k.c_dt == MK_F32 && k.dt != MK_F32 ? 10 : 1);
  if (twice) same_bits(what, {"c"}, {got}, {gpu_matmul(k, a, b, bv, c0, what, &ok)});
}

// A refused dtype pair fails with MK_ERR_UNSUPPORTED and a message naming both dtypes.
void refused(const mk_backend* be, mk_context* ctx, mk_dtype dt, mk_dtype c_dt) {
  const std::string what = fmt("matmul on %s refuses %s operands with c in %s", be->name, dtype_name(dt), dtype_name(c_dt));
  void *a = nullptr, *c = nullptr;
  if (be->alloc(ctx, &a, 16) != MK_OK || be->alloc(ctx, &c, 16) != MK_OK) die("alloc", be, ctx);
  const mk_status s = be->matmul(ctx, c, a, a, nullptr, dt, c_dt, 1, 1, 1, 0, 0, 0);
  const std::string msg = s == MK_OK ? "" : be->last_error(ctx);
  const bool ok = s == MK_ERR_UNSUPPORTED && msg.find(fmt("in %s with c in %s", dtype_name(dt), dtype_name(c_dt))) != std::string::npos;
  (ok ? g_passed : g_failed)++;
  std::printf("%s %s: status %d, \"%s\"\n", ok ? "ok  " : "FAIL", what.c_str(), int(s), msg.c_str());
  be->free(ctx, a), be->free(ctx, c);
}

void check_matmul_f32() {
  // Tile edges of the 64×64×16 kernel, odd sizes, one-element products.
  const int64_t shapes[][3] = {{1, 1, 1}, {63, 64, 17}, {64, 65, 16}, {65, 63, 15}, {129, 100, 33}, {3, 129, 64}, {100, 2, 130}};
  int i = 0;
  for (const auto& s : shapes)
    for (int t = 0; t < 4; ++t, ++i) matmul_case({MK_F32, MK_F32, s[0], s[1], s[2], bool(t & 1), bool(t >> 1), i % 3 == 0, i % 2 == 0});
}

void check_matmul_tc() {
  // Odd sizes; exact 128×128 tiles and ±1; K not a multiple of 8 (element loads) and a multiple
  // of 8 with odd M or N (cp.async for one operand, element loads for the other when it is
  // contiguous along M or N); K of 8 and 9 pipeline tiles of 32 (the 3-stage ring wraps).
  const int64_t shapes[][3] = {{1, 1, 1},    {17, 33, 9},   {65, 130, 47}, {129, 257, 200}, {128, 128, 64},
                               {127, 129, 32}, {129, 127, 96}, {40, 24, 256},  {33, 136, 280}};
  // Each shape in every layout with one of the four (operand, c) dtype pairs, rotating with the
  // shape so that each layout meets every pair (the emulation runs every thread as a fiber: one
  // pair per shape and layout keeps this file to a few seconds); bias, accumulate and the repeat
  // cycle at other periods.
  int i = 0;
  for (const auto& s : shapes)
    for (int t = 0; t < 4; ++t, ++i) {
      const int pair = (t + i / 4) % 4;
      const mk_dtype dt = pair & 1 ? MK_F16 : MK_BF16;
      matmul_case({dt, pair & 2 ? MK_F32 : dt, s[0], s[1], s[2], bool(t & 1), bool(t >> 1), i % 3 != 1, i % 5 >= 2}, i % 7 == 0);
    }
  // Every combination of bias, accumulate and c dtype on one shape with edges, and the
  // misaligned fallback with K a multiple of 8.
  for (int f = 0; f < 8; ++f) matmul_case({MK_BF16, f & 4 ? MK_F32 : MK_BF16, 70, 45, 40, bool(f & 1), false, bool(f & 1), bool(f & 2)});
  for (int t = 0; t < 4; ++t) matmul_case({MK_F16, MK_F16, 72, 64, 64, bool(t & 1), bool(t >> 1), true, t == 3, true}, t == 0);
  if (!g_emulated) {
    matmul_case({MK_BF16, MK_BF16, 1000, 1500, 700, false, true, true, false});
    matmul_case({MK_BF16, MK_F32, 768, 3072, 4096, true, false, false, true}, true);
  }
}

void check_matmul() {
  check_matmul_f32();
  check_matmul_tc();
  refused(g_gpu, g_gpu_ctx, MK_F16, MK_BF16);
  refused(g_gpu, g_gpu_ctx, MK_F32, MK_BF16);
  refused(g_gpu, g_gpu_ctx, MK_BF16, MK_F16);
  refused(g_cpu, g_cpu_ctx, MK_BF16, MK_F32);
  refused(g_cpu, g_cpu_ctx, MK_F32, MK_BF16);
}

// c [M,N] = op(a)·op(b) on buffers at least that large; case names end in the layout (NN, NT: b
// transposed, TN: a transposed) as the torch peer reads transA/transB.
void bench_matmul_on(FILE* out, mk_dtype dt, const GpuBuf& a, const GpuBuf& b, const GpuBuf& c, const char* what, int64_t M, int64_t N,
                     int64_t K, bool ta, bool tb) {
  const std::string name = fmt("%s%lldx%lldx%lld %s", what, (long long)M, (long long)N, (long long)K, ta ? "TN" : tb ? "NT" : "NN");
  const double s = time_gpu("bench matmul", [&] { return GPU(matmul(g_gpu_ctx, c.p, a.p, b.p, nullptr, dt, dt, M, N, K, ta, tb, 0), "bench matmul"); });
  record(out, "matmul", dt, name,
         fmt("\"M\":%lld,\"N\":%lld,\"K\":%lld,\"transA\":%s,\"transB\":%s", (long long)M, (long long)N, (long long)K, ta ? "true" : "false",
             tb ? "true" : "false"),
         s, 2.0 * M * N * K);
}

void bench_matmul_shape(FILE* out, mk_dtype dt, int64_t M, int64_t N, int64_t K) {
  GpuBuf a(randn(M * K), dt), b(randn(K * N), dt), c(std::vector<float>(M * N), dt);
  bench_matmul_on(out, dt, a, b, c, "", M, N, K, false, false);
}

// The paper's ViT-B/14 GEMMs at batch 36 × 2 views of 518 px (1374 tokens each), for each layer
// x [R,in] → [R,out]: forward x·Wᵀ (NT), dX = dY·W (NN), dW = dYᵀ·X (TN). QKV is fused here, as
// most ViTs fuse it (our SelfAttention runs three of the 768 → 768 products instead).
void bench_vit_b_gemms(FILE* out, mk_dtype dt) {
  const int64_t R = 72 * 1374;
  const struct { const char* name; int64_t in, outF; } layers[] = {{"qkv", 768, 2304}, {"proj", 768, 768}, {"fc1", 768, 3072}, {"fc2", 3072, 768}};
  const size_t most = size_t(R) * 3072;
  GpuBuf a(tiled_randn(most), dt), b(tiled_randn(most), dt), c(std::vector<float>(most), dt);
  for (const auto& l : layers) {
    const std::string what = fmt("ViT-B %s ", l.name);
    bench_matmul_on(out, dt, a, b, c, what.c_str(), R, l.outF, l.in, false, true);
    bench_matmul_on(out, dt, a, b, c, what.c_str(), R, l.in, l.outF, false, false);
    bench_matmul_on(out, dt, a, b, c, what.c_str(), l.outF, l.in, R, true, false);
  }
}

void bench_matmul(FILE* out, mk_dtype dt) {
  bench_matmul_shape(out, dt, 4096, 4096, 4096);
  bench_matmul_shape(out, dt, 16 * 1374, 2304, 768);  // ViT-B/14 qkv at batch 16
  if (dt == MK_BF16) bench_vit_b_gemms(out, dt);
}

}  // namespace

MK_OP_CASES(matmul, {"matmul"}, check_matmul, bench_matmul);

}  // namespace ops
