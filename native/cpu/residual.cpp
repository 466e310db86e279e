// residual.cpp: residual add with a scale (compiled per ISA): out = x + s ⊙ h, where s is a
// per-channel LayerScale gamma [D] or the scalar alpha. Backward: dh = s ⊙ dy (dx = dy is
// the caller's), dgamma += Σ_rows h ⊙ dy.
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {

void residual_forward(float* out, const float* x, const float* h, const float* gamma, float alpha, int64_t R, int64_t D) {
  parallel_chunks(R, 1 + 16384 / D, [&](int64_t r0, int64_t r1, int64_t) {
    const V va = V::set1(alpha);
    for (int64_t r = r0; r < r1; ++r) {
      const float *xr = x + r * D, *hr = h + r * D;
      float* o = out + r * D;
      int64_t d = 0;
      for (; d + V::W <= D; d += V::W) V::fma(gamma ? V::load(gamma + d) : va, V::load(hr + d), V::load(xr + d)).store(o + d);
      for (; d < D; ++d) o[d] = xr[d] + (gamma ? gamma[d] : alpha) * hr[d];
    }
  });
}

void residual_backward(float* dh, float* dgamma, const float* dy, const float* h, const float* gamma, float alpha,
                       int64_t R, int64_t D) {
  const int64_t grain = 1 + 16384 / D;
  const int64_t chunks = chunk_count(R, grain);
  Scratch part(dgamma ? chunks * D : 1);
  parallel_chunks(R, grain, [&](int64_t r0, int64_t r1, int64_t c) {
    const V va = V::set1(alpha);
    float* pg = part.p + c * D;
    for (int64_t r = r0; r < r1; ++r) {
      const float *gr = dy + r * D, *hr = h + r * D;
      float* o = dh + r * D;
      int64_t d = 0;
      for (; d + V::W <= D; d += V::W) {
        const V g = V::load(gr + d);
        (g * (gamma ? V::load(gamma + d) : va)).store(o + d);
        if (dgamma) V::fma(g, V::load(hr + d), V::load(pg + d)).store(pg + d);
      }
      for (; d < D; ++d) {
        o[d] = gr[d] * (gamma ? gamma[d] : alpha);
        if (dgamma) pg[d] += gr[d] * hr[d];
      }
    }
  });
  if (dgamma)
    for (int64_t c = 0; c < chunks; ++c)
      for (int64_t d = 0; d < D; ++d) dgamma[d] += part.p[c * D + d];
}

}  // namespace MK_ISA
}  // namespace mk
