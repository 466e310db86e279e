// common.h: what the cross-backend op test's case files share (native/tests/backend_ops/):
// the two backends, buffers on each, seeded inputs, the comparison, and the registry through
// which each op stem's file adds its cases (and, for some, timings). See main.cpp.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "mamakit.h"

namespace ops {

extern const mk_backend* g_cpu;
extern mk_context* g_cpu_ctx;
extern const mk_backend* g_gpu;
extern mk_context* g_gpu_ctx;
// The library is the emulated one: small shapes only, never timed.
extern bool g_emulated;
extern std::mt19937 g_rng;
inline const float kNaN = std::numeric_limits<float>::quiet_NaN();
inline const mk_dtype kDtypes[] = {MK_F32, MK_BF16, MK_F16};

const char* dtype_name(mk_dtype d);
inline size_t dtype_size(mk_dtype d) { return d == MK_F32 ? 4 : 2; }
[[noreturn]] void die(const char* what, const mk_backend* be, mk_context* ctx);
std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));

std::vector<float> randn(size_t n, float scale = 1.f);
// n values repeating one block of 2^20 normal draws: for timings of large operands (~1e8
// values), whose own draws would take the host longer than the timings.
std::vector<float> tiled_randn(size_t n);
inline std::vector<float> nans(size_t n) { return std::vector<float>(n, kNaN); }

// A buffer on the GPU in `dtype`.
struct GpuBuf {
  void* p = nullptr;
  size_t n = 0;
  mk_dtype dtype = MK_F32;
  GpuBuf(const std::vector<float>& host, mk_dtype dt);
  GpuBuf(const GpuBuf&) = delete;
  ~GpuBuf();
  std::vector<float> get() const;
  float* f32() const { return static_cast<float*>(p); }
};

// A buffer on the CPU (f32).
struct CpuBuf {
  void* p = nullptr;
  size_t n = 0;
  explicit CpuBuf(const std::vector<float>& host);
  CpuBuf(const CpuBuf&) = delete;
  ~CpuBuf();
  std::vector<float> get() const { return std::vector<float>(static_cast<float*>(p), static_cast<float*>(p) + n); }
  float* f32() const { return static_cast<float*>(p); }
};

// Host values rounded to `dtype` through the GPU, so that both backends see the same numbers.
std::vector<float> rounded(const std::vector<float>& v, mk_dtype dt);
inline std::vector<float> rnd(size_t n, mk_dtype dt, float scale = 1.f) { return rounded(randn(n, scale), dt); }

extern int g_passed, g_failed;

// One output of a case: what the GPU gave, what the CPU gave, and optionally per element the
// magnitude of the terms summed into it (Σ|term|, from the host in double): the scale of the
// rounding of 16-bit intermediates, which can lie far above the result under cancellation.
struct Out {
  const char* name;
  std::vector<float> got, want;
  std::vector<double> mag = {};  // empty, or one per element
};

// |gpu − cpu| ≤ rtol·|cpu| + atol·scale for every element, scale = max |cpu| of that output, or
// max(that, mag[i]) where the output has magnitudes: f32 rtol = atol = 1e-5 (f32 arithmetic in
// another order); bf16/f16 1e-2 (16-bit storage of the results and, on tensor cores, of
// intermediates); `loose` widens both. Counts and prints the case.
void compare(const std::string& what, mk_dtype dt, const std::vector<Out>& outs, double loose = 1);

// Determinism: `again` is a second GPU run of the same call on the same inputs, `first` the
// first; every value must repeat bit for bit (no float atomics, no order that depends on how the
// blocks are scheduled). Counts and prints the check.
inline void same_bits(const std::string& what, const std::vector<const char*>& names,
                      const std::vector<std::vector<float>>& first, const std::vector<std::vector<float>>& again) {
  for (size_t o = 0; o < names.size(); ++o) {
    const size_t n = std::min(first[o].size(), again[o].size());
    size_t i = 0;
    while (i < n && !std::memcmp(&first[o][i], &again[o][i], sizeof(float))) ++i;
    if (i == n && first[o].size() == again[o].size()) continue;
    ++g_failed;
    if (i == n) std::printf("FAIL %s repeats: %s has %zu values, then %zu\n", what.c_str(), names[o], first[o].size(), again[o].size());
    else std::printf("FAIL %s repeats: not bit for bit: %s[%zu] = %.9g, then %.9g\n", what.c_str(), names[o], i, first[o][i], again[o][i]);
    return;
  }
  ++g_passed;
  std::printf("ok   %s repeats bit for bit\n", what.c_str());
}

// A backend call that failed: the case fails with the backend's message.
bool called(mk_status s, const mk_backend* be, mk_context* ctx, const std::string& what);
#define CPU(call, what) ::ops::called(::ops::g_cpu->call, ::ops::g_cpu, ::ops::g_cpu_ctx, what)
#define GPU(call, what) ::ops::called(::ops::g_gpu->call, ::ops::g_gpu, ::ops::g_gpu_ctx, what)

// Timings (a GPU only): seconds per call of f, which returns false on a failed call (NaN then);
// record() prints a row and writes it to the results file.
double time_gpu(const char* what, const std::function<bool()>& f);
void record(FILE* out, const char* op, mk_dtype dt, const std::string& name, const std::string& fields, double s, double flops);

// The registry: `MK_OP_CASES(name, {"entry", ...}, check_fn, bench_fn_or_nullptr);` in a case file.
struct Case {
  std::vector<const char*> entries;  // the table entries the case covers
  void (*check)();
  void (*bench)(FILE* out, mk_dtype dt);  // or null
};
std::vector<Case>& cases();
struct Register {
  Register(Case c) { cases().push_back(std::move(c)); }
};
#define MK_OP_CASES(name, ...) static const ::ops::Register mk_op_cases_##name(::ops::Case{__VA_ARGS__})

}  // namespace ops
