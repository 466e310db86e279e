// dropout.cpp: inverted dropout with a counter-based mask (compiled per ISA). Element i is
// kept when the top 24 bits of mix(seed, offset + i) are ≥ p·2^24; kept values are scaled by
// 1/(1 − p). The mask depends only on (seed, offset + i), so the backward (the same call on
// dy) sees the same mask, on any thread split and any device. mix is SplitMix64's finaliser
// applied to key(seed) + counter·φ, with φ = 0x9E3779B97F4A7C15.
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {
namespace {
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace

void dropout(float* y, const float* x, int64_t n, float p, uint64_t seed, uint64_t offset) {
  const uint64_t key = mix64(seed + 0x9E3779B97F4A7C15ull);
  const uint32_t threshold = uint32_t(double(p) * 16777216.0);
  const float scale = 1.f / (1.f - p);
  parallel_chunks(n, 16384, [&](int64_t i0, int64_t i1, int64_t) {
    for (int64_t i = i0; i < i1; ++i) {
      const uint32_t u = uint32_t(mix64(key + (offset + uint64_t(i)) * 0x9E3779B97F4A7C15ull) >> 40);
      y[i] = u >= threshold ? x[i] * scale : 0.f;
    }
  });
}

}  // namespace MK_ISA
}  // namespace mk
