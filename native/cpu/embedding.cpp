// embedding.cpp: row lookup y[n,:] = table[ids[n],:] and its scatter-add backward
// dtable[ids[n],:] += dy[n,:] (compiled per ISA). ids were range-checked by the addon.
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {

void embedding_forward(float* y, const float* table, const int32_t* ids, int64_t N, int64_t D) {
  parallel_chunks(N, 1 + 16384 / D, [&](int64_t n0, int64_t n1, int64_t) {
    for (int64_t n = n0; n < n1; ++n) {
      const float* src = table + int64_t(ids[n]) * D;
      float* dst = y + n * D;
      int64_t d = 0;
      for (; d + V::W <= D; d += V::W) V::load(src + d).store(dst + d);
      for (; d < D; ++d) dst[d] = src[d];
    }
  });
}

void embedding_backward(float* dtable, const float* dy, const int32_t* ids, int64_t N, int64_t D) {
  // Columns are split between threads, so two threads never add into the same element even
  // when ids repeat.
  const int64_t grain = D < 64 ? D : 64;
  parallel_chunks(D, grain, [&](int64_t d0, int64_t d1, int64_t) {
    for (int64_t n = 0; n < N; ++n) {
      const float* g = dy + n * D;
      float* t = dtable + int64_t(ids[n]) * D;
      int64_t d = d0;
      for (; d + V::W <= d1; d += V::W) (V::load(t + d) + V::load(g + d)).store(t + d);
      for (; d < d1; ++d) t[d] += g[d];
    }
  });
}

}  // namespace MK_ISA
}  // namespace mk
