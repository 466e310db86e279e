// backend_ops: the cross-backend op test. Walks the CUDA backend's table (mamakit.h) and runs
// every non-NULL kernel entry on seeded random inputs in f32, bf16 and f16 at several shapes (odd
// sizes, tile edges) against the CPU backend through the C ABI; outputs start as NaN, accumulated
// gradients as random values. Each op stem's file here registers its cases (common.h); an entry
// with no case fails. It keeps going after a failure and prints every failing case with its
// worst element; the last line is "checks: N passed, N failed". On a GPU (not the emulated
// library) the cases add large shapes and, with --bench, the ops are timed (every call checked).
//   backend_ops --lib build/Release/libmamakit_cuda_emu.so       (the emulated library, as in CI)
//   backend_ops --lib build/Release/libmamakit_cuda.so --bench out.jsonl   (bench/gpu.sh on a GPU)
//   --only attention   runs the cases whose entries contain "attention"
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>

#include "common.h"

namespace ops {

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
std::mt19937 g_rng(20261206);
int g_passed = 0, g_failed = 0;

std::vector<Case>& cases() {
  static std::vector<Case> all;
  return all;
}

const char* dtype_name(mk_dtype d) { return d == MK_BF16 ? "bf16" : d == MK_F16 ? "f16" : "f32"; }

void die(const char* what, const mk_backend* be, mk_context* ctx) {
  std::fprintf(stderr, "%s: %s\n", what, be->last_error(ctx));
  std::exit(2);
}

std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

std::vector<float> randn(size_t n, float scale) {
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}

GpuBuf::GpuBuf(const std::vector<float>& host, mk_dtype dt) : n(host.size()), dtype(dt) {
  if (g_gpu->alloc(g_gpu_ctx, &p, std::max<size_t>(1, n) * dtype_size(dt)) != MK_OK) die("alloc", g_gpu, g_gpu_ctx);
  if (n && g_gpu->upload(g_gpu_ctx, p, dt, host.data(), n) != MK_OK) die("upload", g_gpu, g_gpu_ctx);
}
GpuBuf::~GpuBuf() { g_gpu->free(g_gpu_ctx, p); }
std::vector<float> GpuBuf::get() const {
  std::vector<float> h(n);
  if (n && g_gpu->download(g_gpu_ctx, h.data(), p, dtype, n) != MK_OK) die("download", g_gpu, g_gpu_ctx);
  return h;
}

CpuBuf::CpuBuf(const std::vector<float>& host) : n(host.size()) {
  if (g_cpu->alloc(g_cpu_ctx, &p, std::max<size_t>(1, n) * 4) != MK_OK) die("alloc", g_cpu, g_cpu_ctx);
  if (n) std::memcpy(p, host.data(), n * 4);
}
CpuBuf::~CpuBuf() { g_cpu->free(g_cpu_ctx, p); }

std::vector<float> rounded(const std::vector<float>& v, mk_dtype dt) { return dt == MK_F32 ? v : GpuBuf(v, dt).get(); }

void compare(const std::string& what, mk_dtype dt, const std::vector<Out>& outs, double loose) {
  const double tol = (dt == MK_F32 ? 1e-5 : 1e-2) * loose;
  double worst = 0;
  std::string where;
  for (const Out& o : outs) {
    if (o.got.size() != o.want.size()) {
      worst = INFINITY, where = fmt("%s: %zu values, the CPU %zu", o.name, o.got.size(), o.want.size());
      break;
    }
    if (!o.mag.empty() && o.mag.size() != o.want.size()) {
      worst = INFINITY, where = fmt("%s: %zu magnitudes for %zu values", o.name, o.mag.size(), o.want.size());
      break;
    }
    double scale = 0;
    for (float v : o.want) scale = std::max(scale, std::fabs(double(v)));
    for (size_t i = 0; i < o.got.size(); ++i) {
      const double mag = o.mag.empty() ? scale : std::max(scale, o.mag[i]);
      const double err = std::fabs(double(o.got[i]) - o.want[i]), lim = tol * (std::fabs(o.want[i]) + mag) + 1e-30;
      const double e = std::isnan(err) ? INFINITY : err / lim;
      if (e > worst) worst = e, where = fmt("%s[%zu] = %.7g, cpu %.7g", o.name, i, o.got[i], o.want[i]);
    }
  }
  const bool ok = worst <= 1;
  (ok ? g_passed : g_failed)++;
  if (ok) std::printf("ok   %s\n", what.c_str());
  else std::printf("FAIL %s: worst %s (%.3g× the tolerance)\n", what.c_str(), where.c_str(), worst);
}

bool called(mk_status s, const mk_backend* be, mk_context* ctx, const std::string& what) {
  if (s == MK_OK) return true;
  ++g_failed;
  std::printf("FAIL %s: %s returned %d: %s\n", what.c_str(), be->name, int(s), be->last_error(ctx));
  return false;
}

std::vector<float> tiled_randn(size_t n) {
  const std::vector<float> block = randn(size_t(1) << 20);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; i += block.size()) std::copy_n(block.begin(), std::min(block.size(), n - i), v.begin() + i);
  return v;
}

double time_gpu(const char* what, const std::function<bool()>& f) {
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

}  // namespace ops

using namespace ops;

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
      std::printf("FAIL %s: the CUDA table has this entry and no file in native/tests/backend_ops has a case for it\n", names[i]);
    } else if (std::find(run.begin(), run.end(), found) == run.end()) {
      run.push_back(found);
    }
  }
  std::printf("table: %zu of %zu kernel entries present on %s\n", present, kKernels, g_gpu->name);
  auto selected = [&](const Case* c) {
    return !only || std::any_of(c->entries.begin(), c->entries.end(), [&](const char* e) { return std::strstr(e, only) != nullptr; });
  };
  for (const Case* c : run)
    if (selected(c)) {
      // Each file's inputs come from a generator seeded by its first entry's name (FNV-1a), so
      // that adding or selecting cases never changes what another file draws; MK_OPS_SEED
      // draws other inputs.
      uint32_t h = 2166136261u ^ uint32_t(std::strtoul(std::getenv("MK_OPS_SEED") ? std::getenv("MK_OPS_SEED") : "0", nullptr, 10));
      for (const char* p = c->entries.front(); *p; ++p) h = (h ^ uint8_t(*p)) * 16777619u;
      g_rng.seed(h);
      c->check();
    }

  if (bench && g_emulated) {
    std::fprintf(stderr, "--bench: %s is the emulated library, which is never timed\n", lib);
    ++g_failed;
  } else if (bench) {
    FILE* out = std::fopen(bench, "w");
    for (mk_dtype dt : {MK_BF16, MK_F32})
      for (const Case* c : run)
        if (c->bench && selected(c)) c->bench(out, dt);
    if (out) std::fclose(out);
  }
  std::printf("checks: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
