// matmul.cpp: the op test's GEMM cases (tile edges of the 64×64×16 kernel, odd sizes, every
// transpose, bias and accumulate) and its timings.
#include "common.h"

namespace ops {
namespace {

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

// c [M,N] = op(a)·op(b) on buffers at least that large; case names end in the layout (NN, NT: b
// transposed, TN: a transposed) as the torch peer reads transA/transB.
void bench_matmul_on(FILE* out, mk_dtype dt, const GpuBuf& a, const GpuBuf& b, const GpuBuf& c, const char* what, int64_t M, int64_t N,
                     int64_t K, bool ta, bool tb) {
  const std::string name = fmt("%s%lldx%lldx%lld %s", what, (long long)M, (long long)N, (long long)K, ta ? "TN" : tb ? "NT" : "NN");
  const double s = time_gpu("bench matmul", [&] { return GPU(matmul(g_gpu_ctx, c.p, a.p, b.p, nullptr, dt, M, N, K, ta, tb, 0), "bench matmul"); });
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
