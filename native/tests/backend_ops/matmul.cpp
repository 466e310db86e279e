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

void bench_matmul_shape(FILE* out, mk_dtype dt, int64_t M, int64_t N, int64_t K) {
  GpuBuf a(randn(M * K), dt), b(randn(K * N), dt), c(std::vector<float>(M * N), dt);
  const std::string name = fmt("%lldx%lldx%lld", (long long)M, (long long)N, (long long)K);
  const double s = time_gpu("bench matmul", [&] { return GPU(matmul(g_gpu_ctx, c.p, a.p, b.p, nullptr, dt, M, N, K, 0, 0, 0), "bench matmul"); });
  record(out, "matmul", dt, name, fmt("\"M\":%lld,\"N\":%lld,\"K\":%lld", (long long)M, (long long)N, (long long)K), s, 2.0 * M * N * K);
}

void bench_matmul(FILE* out, mk_dtype dt) {
  bench_matmul_shape(out, dt, 4096, 4096, 4096);
  bench_matmul_shape(out, dt, 16 * 1374, 2304, 768);  // ViT-B/14 qkv at batch 16
}

}  // namespace

MK_OP_CASES(matmul, {"matmul"}, check_matmul, bench_matmul);

}  // namespace ops
