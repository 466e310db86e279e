// copy.cpp: dst = src over n floats, in parallel (compiled per ISA); also the bandwidth
// yardstick of the memory-bound benches.
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {

void copy(float* dst, const float* src, int64_t n) {
  parallel_chunks(n, 65536, [&](int64_t i0, int64_t i1, int64_t) {
    int64_t i = i0;
    for (; i + 4 * V::W <= i1; i += 4 * V::W) {
      const V a = V::load(src + i), b = V::load(src + i + V::W), c = V::load(src + i + 2 * V::W), d = V::load(src + i + 3 * V::W);
      a.store(dst + i);
      b.store(dst + i + V::W);
      c.store(dst + i + 2 * V::W);
      d.store(dst + i + 3 * V::W);
    }
    for (; i < i1; ++i) dst[i] = src[i];
  });
}

}  // namespace MK_ISA
}  // namespace mk
