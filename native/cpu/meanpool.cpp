// meanpool.cpp: mean over tokens (compiled per ISA): y[b,:] = (1/L) Σ_l x[b,l,:];
// backward dx[b,l,:] = dy[b,:] / L.
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {

void meanpool_forward(float* y, const float* x, int64_t B, int64_t L, int64_t D) {
  // Tasks: (batch, block of 256 columns); each walks its L rows.
  const int64_t blocks = (D + 255) / 256;
  parallel_chunks(B * blocks, 1, [&](int64_t t0, int64_t t1, int64_t) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / blocks, d0 = (t % blocks) * 256, d1 = d0 + 256 < D ? d0 + 256 : D;
      float* yb = y + b * D;
      for (int64_t d = d0; d < d1; ++d) yb[d] = 0.f;
      for (int64_t l = 0; l < L; ++l) {
        const float* xr = x + (b * L + l) * D;
        int64_t d = d0;
        for (; d + V::W <= d1; d += V::W) (V::load(yb + d) + V::load(xr + d)).store(yb + d);
        for (; d < d1; ++d) yb[d] += xr[d];
      }
      const float inv = 1.f / float(L);
      for (int64_t d = d0; d < d1; ++d) yb[d] *= inv;
    }
  });
}

void meanpool_backward(float* dx, const float* dy, int64_t B, int64_t L, int64_t D) {
  const float inv = 1.f / float(L);
  parallel_chunks(B * L, 1 + 16384 / D, [&](int64_t r0, int64_t r1, int64_t) {
    const V vi = V::set1(inv);
    for (int64_t r = r0; r < r1; ++r) {
      const float* g = dy + (r / L) * D;
      float* o = dx + r * D;
      int64_t d = 0;
      for (; d + V::W <= D; d += V::W) (V::load(g + d) * vi).store(o + d);
      for (; d < D; ++d) o[d] = g[d] * inv;
    }
  });
}

}  // namespace MK_ISA
}  // namespace mk
