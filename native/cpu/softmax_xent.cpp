// softmax_xent.cpp: softmax cross-entropy over the last dimension (compiled per ISA).
//   lse_r = log Σ_c exp(x_rc),  loss_r = lse_r − x_r,t  (0 where t < 0: ignored row)
//   dx_rc = scale·(exp(x_rc − lse_r) − [c = t])     (0 on ignored rows)
#include <cmath>

#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {

void softmax_xent_forward(float* loss, float* lse, const float* logits, const int32_t* targets, int64_t R, int64_t C) {
  const int64_t Cv = C - C % V::W;
  parallel_chunks(R, 1 + 8192 / C, [&](int64_t r0, int64_t r1, int64_t) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = logits + r * C;
      V vm = V::set1(-INFINITY);
      for (int64_t c = 0; c < Cv; c += V::W) vm = V::max(vm, V::load(xr + c));
      float m = vm.hmax();
      for (int64_t c = Cv; c < C; ++c) m = xr[c] > m ? xr[c] : m;
      const V mv = V::set1(m);
      V s = V::zero();
      for (int64_t c = 0; c < Cv; c += V::W) s = s + vexp(V::load(xr + c) - mv);
      float sum = s.sum();
      for (int64_t c = Cv; c < C; ++c) sum += vexp(V::set1(xr[c] - m)).hmax();  // all lanes equal
      const float l = m + std::log(sum);
      lse[r] = l;
      loss[r] = targets[r] < 0 ? 0.f : l - xr[targets[r]];
    }
  });
}

void softmax_xent_backward(float* dlogits, const float* logits, const float* lse, const int32_t* targets, float scale,
                           int64_t R, int64_t C) {
  parallel_chunks(R, 1 + 8192 / C, [&](int64_t r0, int64_t r1, int64_t) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = logits + r * C;
      float* dr = dlogits + r * C;
      if (targets[r] < 0) {
        for (int64_t c = 0; c < C; ++c) dr[c] = 0.f;
        continue;
      }
      const V l = V::set1(lse[r]), s = V::set1(scale);
      int64_t c = 0;
      for (; c + V::W <= C; c += V::W) (s * vexp(V::load(xr + c) - l)).store(dr + c);
      if (c < C) (s * vexp(V::load(xr + c, C - c) - l)).store(dr + c, C - c);
      dr[targets[r]] -= scale;
    }
  });
}

}  // namespace MK_ISA
}  // namespace mk
