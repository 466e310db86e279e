// adamw.cpp: one AdamW step over a flat range of parameters (compiled per ISA), as
// torch.optim.AdamW: with g = grad·grad_scale,
//   p ← p·(1 − lr·wd);  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
//   p ← p − lr·(m / bc1) / (√(v / bc2) + eps),   bc1 = 1 − β1^t, bc2 = 1 − β2^t (from the host)
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {

void adamw(float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2, float eps,
           float wd, float bc1, float bc2, float grad_scale) {
  const float decay = 1.f - lr * wd, step = lr / bc1, inv_sqrt_bc2 = 1.f / fsqrt(bc2);
  parallel_chunks(n, 16384, [&](int64_t i0, int64_t i1, int64_t) {
    const V b1 = V::set1(beta1), b2 = V::set1(beta2), c1 = V::set1(1.f - beta1), c2 = V::set1(1.f - beta2);
    const V vdecay = V::set1(decay), vstep = V::set1(step), vib = V::set1(inv_sqrt_bc2), veps = V::set1(eps), gs = V::set1(grad_scale);
    auto body = [&](int64_t i, int64_t k) {
      const V gi = load_n(g + i, k) * gs;
      const V mi = V::fma(b1, load_n(m + i, k), c1 * gi);
      const V vi = V::fma(b2, load_n(v + i, k), c2 * gi * gi);
      const V pi = load_n(p + i, k) * vdecay - vstep * mi / V::fma(V::sqrt(vi), vib, veps);
      store_n(mi, m + i, k);
      store_n(vi, v + i, k);
      store_n(pi, p + i, k);
    };
    int64_t i = i0;
    for (; i + V::W <= i1; i += V::W) body(i, V::W);
    if (i < i1) body(i, i1 - i);
  });
}

}  // namespace MK_ISA
}  // namespace mk
