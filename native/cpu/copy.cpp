// copy.cpp: dst = src over n floats, in parallel (compiled per ISA); also the bandwidth
// yardstick of the memory-bound benches. Copies larger than the last-level cache use
// non-temporal stores: the destination is not read first (no read-for-ownership) and does
// not evict the working set.
#include <cstdint>

#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {

void copy(float* dst, const float* src, int64_t n) {
  const bool streaming = n * 4 >= (int64_t(32) << 20);
  parallel_chunks(n, 65536, [&](int64_t i0, int64_t i1, int64_t) {
    int64_t i = i0;
    if (streaming && V::W > 1) {
      // Scalar head up to the vector alignment that streaming stores need.
      for (; i < i1 && (reinterpret_cast<uintptr_t>(dst + i) % (4 * V::W)) != 0; ++i) dst[i] = src[i];
      for (; i + 4 * V::W <= i1; i += 4 * V::W) {
        const V a = V::load(src + i), b = V::load(src + i + V::W), c = V::load(src + i + 2 * V::W), d = V::load(src + i + 3 * V::W);
        a.stream(dst + i);
        b.stream(dst + i + V::W);
        c.stream(dst + i + 2 * V::W);
        d.stream(dst + i + 3 * V::W);
      }
    } else {
      for (; i + 4 * V::W <= i1; i += 4 * V::W) {
        const V a = V::load(src + i), b = V::load(src + i + V::W), c = V::load(src + i + 2 * V::W), d = V::load(src + i + 3 * V::W);
        a.store(dst + i);
        b.store(dst + i + V::W);
        c.store(dst + i + 2 * V::W);
        d.store(dst + i + 3 * V::W);
      }
    }
    for (; i < i1; ++i) dst[i] = src[i];
  });
#if MK_ISA_LEVEL >= 1
  if (streaming) _mm_sfence();  // streaming stores are weakly ordered
#endif
}

}  // namespace MK_ISA
}  // namespace mk
