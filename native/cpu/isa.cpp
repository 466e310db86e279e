// isa.cpp: run-time instruction-set choice; see isa.h.
#include "isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace mk {
namespace {

Isa detect() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  // GCC's checks include the OS's XSAVE state (xgetbv), so a kernel that did not enable
  // the wide registers is not reported as supporting them.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("fma"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::scalar;
}

Isa initial() {
  Isa best = detect();
  if (const char* env = std::getenv("MAMAKIT_ISA")) {
    Isa want = best;
    if (!std::strcmp(env, "scalar")) want = Isa::scalar;
    if (!std::strcmp(env, "avx2")) want = Isa::avx2;
    if (!std::strcmp(env, "avx512")) want = Isa::avx512;
    if (want < best) return want;
  }
  return best;
}

std::atomic<int>& current() {
  static std::atomic<int> c{static_cast<int>(initial())};
  return c;
}

}  // namespace

Isa best_isa() {
  static const Isa b = detect();
  return b;
}

Isa isa() { return static_cast<Isa>(current().load(std::memory_order_relaxed)); }

bool set_isa(Isa wanted) {
  if (wanted > best_isa()) return false;
  current().store(static_cast<int>(wanted), std::memory_order_relaxed);
  return true;
}

const char* isa_name(Isa i) {
  switch (i) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "scalar";
  }
}

}  // namespace mk
