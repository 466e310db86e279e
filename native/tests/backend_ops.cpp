// backend_ops.cpp: checks every op of the CUDA backend against the CPU backend through the C
// ABI (mamakit.h) on seeded random inputs, then times the CUDA ops. Needs no Node: it is what
// bench/gpu.sh runs on a lent GPU machine.
//   backend_ops --lib build-gpu/libmamakit_cuda.so [--bench out.jsonl]
// Exit status 0 only when every check passed; prints "checks: N passed, N failed" last.
#include <dlfcn.h>

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

  if (bench) {
    FILE* out = std::fopen(bench, "w");
    for (mk_dtype dt : {MK_BF16, MK_F32}) {
      bench_matmul(out, dt, 4096, 4096, 4096);
      bench_matmul(out, dt, 16 * 1374, 2304, 768);  // ViT-B/14 qkv at batch 16
    }
    if (out) std::fclose(out);
  }
  std::printf("checks: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
