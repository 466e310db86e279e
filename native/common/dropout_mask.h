// dropout_mask.h: the counter-based dropout mask that both backends draw, shared by the dropout
// kernels (native/cpu/dropout.cpp, native/cuda/dropout.cu) and attention's probability dropout
// (native/cpu/attention.cpp, native/cuda/attention.cu). Element c (a 64-bit counter) is kept when
// the top 24 bits of mix64(key + c·φ) are ≥ ⌊p·2^24⌋, with key = mix64(seed + φ), mix64
// SplitMix64's finaliser and φ = 0x9E3779B97F4A7C15 (uint64 arithmetic, wrapping); kept values
// are scaled by 1/(1 − p). The mask depends on (seed, c) alone: any thread split, any device.
#pragma once
#include <stdint.h>

#include "hd.h"

namespace mk::drop {

constexpr uint64_t kPhi = 0x9E3779B97F4A7C15ull;

MK_HD inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The per-seed key, and the threshold of the 24-bit draw (p is the f32 the kernels receive).
MK_HD inline uint64_t key(uint64_t seed) { return mix64(seed + kPhi); }
MK_HD inline uint32_t threshold(float p) { return uint32_t(double(p) * 16777216.0); }

// x = key + c·φ (callers walking a row add multiples of φ instead of multiplying per element).
MK_HD inline bool kept_at(uint64_t x, uint32_t threshold) { return uint32_t(mix64(x) >> 40) >= threshold; }
MK_HD inline bool kept(uint64_t key, uint64_t c, uint32_t threshold) { return kept_at(key + c * kPhi, threshold); }

}  // namespace mk::drop
