// dropout.cpp: inverted dropout with a counter-based mask (compiled per ISA): element i is kept
// by mk::drop::kept(key(seed), offset + i, ⌊p·2^24⌋) (native/common/dropout_mask.h) and kept
// values are scaled by 1/(1 − p). The mask depends only on (seed, offset + i), so the backward
// (the same call on dy) sees the same mask, on any thread split and any device.
#include "../common/dropout_mask.h"
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {

void dropout(float* y, const float* x, int64_t n, float p, uint64_t seed, uint64_t offset) {
  const uint64_t key = drop::key(seed);
  const uint32_t threshold = drop::threshold(p);
  const float scale = 1.f / (1.f - p);
  parallel_chunks(n, 16384, [&](int64_t i0, int64_t i1, int64_t) {
    for (int64_t i = i0; i < i1; ++i) y[i] = drop::kept(key, offset + uint64_t(i), threshold) ? x[i] * scale : 0.f;
  });
}

}  // namespace MK_ISA
}  // namespace mk
