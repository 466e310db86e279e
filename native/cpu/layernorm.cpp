// layernorm.cpp: LayerNorm over the last dimension, forward and backward (compiled per ISA,
// see simd.h). Forward saves mean and rstd = 1/sqrt(var + eps) (biased variance, two passes).
//   y = (x − mean)·rstd·w + b
//   dx = rstd·(g − mean(g) − x̂·mean(g·x̂)),  g = dy·w,  x̂ = (x − mean)·rstd
//   dw += Σ_rows dy·x̂,  db += Σ_rows dy
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {

namespace {
// Rows [r0, r1); pointers by value (see gelu.cpp: a by-reference capture reloads them).
void layernorm_rows(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int64_t r0,
                    int64_t r1, int64_t D, float eps, bool streaming) {
  const int64_t Dv = D - D % V::W;
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * D;
    float* yr = y + r * D;
    if (r + 1 < r1) prefetch_span(xr + D, D);
    const float mu = vsum(xr, D) / float(D);
    const float rs = 1.f / fsqrt(vsumsq_centered(xr, mu, D) / float(D) + eps);
    mean[r] = mu;
    rstd[r] = rs;
    const V vmu = V::set1(mu), vrs = V::set1(rs);
    if (w && b) {
      for (int64_t d = 0; d < Dv; d += V::W)
        store_out(V::fma((V::load(xr + d) - vmu) * vrs, V::load(w + d), V::load(b + d)), yr + d, streaming);
    } else {
      for (int64_t d = 0; d < Dv; d += V::W) {
        V t = (V::load(xr + d) - vmu) * vrs;
        if (w) t = t * V::load(w + d);
        if (b) t = t + V::load(b + d);
        store_out(t, yr + d, streaming);
      }
    }
    for (int64_t d = Dv; d < D; ++d) {
      float t = (xr[d] - mu) * rs;
      if (w) t *= w[d];
      if (b) t += b[d];
      yr[d] = t;
    }
  }
}
}  // namespace

void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       int64_t R, int64_t D, float eps) {
  const bool streaming = R * D * 4 >= kStreamBytes;
  parallel_chunks(R, 1 + 16384 / D, [=](int64_t r0, int64_t r1, int64_t) {
    layernorm_rows(y, mean, rstd, x, w, b, r0, r1, D, eps, streaming);
  });
  if (streaming) stream_fence();
}

namespace {
// Rows [r0, r1) of the backward; dw/db partials into pdw/pdb [D].
void layernorm_grad_rows(float* dx, float* pdw, float* pdb, const float* dy, const float* x, const float* mean,
                         const float* rstd, const float* w, int64_t r0, int64_t r1, int64_t D, bool streaming) {
  const int64_t Dv = D - D % V::W;
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * D;
    const float* gr = dy + r * D;
    float* dxr = dx + r * D;
    if (r + 1 < r1) prefetch_span(xr + D, D), prefetch_span(gr + D, D);
    const V vmu = V::set1(mean[r]), vrs = V::set1(rstd[r]);
    // Σ g and Σ g·x̂ for this row; dw and db partials on the way.
    V sg = V::zero(), sgx = V::zero();
    for (int64_t d = 0; d < Dv; d += V::W) {
      const V xh = (V::load(xr + d) - vmu) * vrs, dyv = V::load(gr + d);
      const V g = w ? dyv * V::load(w + d) : dyv;
      sg = sg + g;
      sgx = V::fma(g, xh, sgx);
      V::fma(dyv, xh, V::load(pdw + d)).store(pdw + d);
      (V::load(pdb + d) + dyv).store(pdb + d);
    }
    float s_g = sg.sum(), s_gx = sgx.sum();
    for (int64_t d = Dv; d < D; ++d) {
      const float xh = (xr[d] - mean[r]) * rstd[r], g = w ? gr[d] * w[d] : gr[d];
      s_g += g;
      s_gx += g * xh;
      pdw[d] += gr[d] * xh;
      pdb[d] += gr[d];
    }
    const V mg = V::set1(s_g / float(D)), mgx = V::set1(s_gx / float(D));
    for (int64_t d = 0; d < Dv; d += V::W) {
      const V xh = (V::load(xr + d) - vmu) * vrs, dyv = V::load(gr + d);
      const V g = w ? dyv * V::load(w + d) : dyv;
      store_out(vrs * (g - mg - xh * mgx), dxr + d, streaming);
    }
    for (int64_t d = Dv; d < D; ++d) {
      const float xh = (xr[d] - mean[r]) * rstd[r], g = w ? gr[d] * w[d] : gr[d];
      dxr[d] = rstd[r] * (g - s_g / float(D) - xh * (s_gx / float(D)));
    }
  }
}
}  // namespace

void layernorm_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* mean,
                        const float* rstd, const float* w, int64_t R, int64_t D) {
  const bool streaming = R * D * 4 >= kStreamBytes;
  const int64_t grain = 1 + 16384 / D;
  const int64_t chunks = chunk_count(R, grain);
  // Per-chunk partial sums of dw and db, added up after the parallel part.
  Scratch part(chunks * 2 * D);
  float* parts = part.p;
  parallel_chunks(R, grain, [=](int64_t r0, int64_t r1, int64_t c) {
    layernorm_grad_rows(dx, parts + c * 2 * D, parts + c * 2 * D + D, dy, x, mean, rstd, w, r0, r1, D, streaming);
  });
  if (streaming) stream_fence();
  for (int64_t c = 0; c < chunks; ++c) {
    const float* pdw = parts + c * 2 * D;
    for (int64_t d = 0; d < D; ++d) {
      if (dw) dw[d] += pdw[d];
      if (db) db[d] += pdw[D + d];
    }
  }
}

}  // namespace MK_ISA
}  // namespace mk
