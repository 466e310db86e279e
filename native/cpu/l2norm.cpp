// l2norm.cpp: L2 normalisation of rows (compiled per ISA), as torch.nn.functional.normalize:
//   n_r = max(‖x_r‖, eps),  y = x / n_r
//   dx = (dy − y·(y·dy)) / n_r  where ‖x_r‖ > eps, else dy / eps
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {

void l2norm_forward(float* y, float* norm, const float* x, int64_t R, int64_t D, float eps) {
  parallel_chunks(R, 1 + 16384 / D, [&](int64_t r0, int64_t r1, int64_t) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * D;
      float* yr = y + r * D;
      float n = fsqrt(vdot(xr, xr, D));
      n = n > eps ? n : eps;
      norm[r] = n;
      const V inv = V::set1(1.f / n);
      int64_t d = 0;
      for (; d + V::W <= D; d += V::W) (V::load(xr + d) * inv).store(yr + d);
      if (d < D) (V::load(xr + d, D - d) * inv).store(yr + d, D - d);
    }
  });
}

void l2norm_backward(float* dx, const float* dy, const float* y, const float* norm, int64_t R, int64_t D, float eps) {
  parallel_chunks(R, 1 + 16384 / D, [&](int64_t r0, int64_t r1, int64_t) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* yr = y + r * D;
      const float* gr = dy + r * D;
      float* dr = dx + r * D;
      const float dot = norm[r] > eps ? vdot(yr, gr, D) : 0.f;
      const V inv = V::set1(1.f / norm[r]), vd = V::set1(dot);
      int64_t d = 0;
      for (; d + V::W <= D; d += V::W) ((V::load(gr + d) - V::load(yr + d) * vd) * inv).store(dr + d);
      if (d < D) ((V::load(gr + d, D - d) - V::load(yr + d, D - d) * vd) * inv).store(dr + d, D - d);
    }
  });
}

}  // namespace MK_ISA
}  // namespace mk
