// sgd.cpp: one SGD step with momentum over a flat range (compiled per ISA), as torch.optim.SGD
// without dampening or Nesterov: g = grad·grad_scale + wd·p;  buf ← μ·buf + g;  p ← p − lr·buf
// (with μ = 0, buf may be null and p ← p − lr·g).
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {

void sgd(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float wd, float grad_scale) {
  parallel_chunks(n, 16384, [&](int64_t i0, int64_t i1, int64_t) {
    const V vlr = V::set1(lr), vmu = V::set1(momentum), vwd = V::set1(wd), gs = V::set1(grad_scale);
    auto body = [&](int64_t i, int64_t k) {
      const V pi = load_n(p + i, k);
      V gi = V::fma(vwd, pi, load_n(g + i, k) * gs);
      if (buf) {
        gi = V::fma(vmu, load_n(buf + i, k), gi);
        store_n(gi, buf + i, k);
      }
      store_n(pi - vlr * gi, p + i, k);
    };
    int64_t i = i0;
    for (; i + V::W <= i1; i += V::W) body(i, V::W);
    if (i < i1) body(i, i1 - i);
  });
}

}  // namespace MK_ISA
}  // namespace mk
