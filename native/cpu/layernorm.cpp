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
// Rows go in pairs (row_stats2, the backward's pairs) only while a tensor fits in cache: there the
// short rows are latency-bound and two interleaved chains help (1608×192: fwd +6 %, bwd +13 %);
// streamed from memory, one row at a time is faster (8192×384: fwd +32 %, bwd +42 %; 16384×1024
// bwd +16 %), paired in-process rounds. Results are the same either way.
inline bool paired_rows(int64_t R, int64_t D) { return R * D * 4 < (int64_t(4) << 20); }

// Mean and rstd of two rows at once. Each row's sums are vsum's and vsumsq_centered's, in the
// same order (bit-identical), but the two rows' dependency chains interleave: a row of 192
// is too short for four accumulators to hide the add latency and the horizontal sums.
void row_stats2(const float* a, const float* b, int64_t D, float eps, float* mu, float* rs) {
  V a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
  V b0 = V::zero(), b1 = V::zero(), b2 = V::zero(), b3 = V::zero();
  int64_t i = 0;
  for (; i + 4 * V::W <= D; i += 4 * V::W) {
    a0 = a0 + V::load(a + i), b0 = b0 + V::load(b + i);
    a1 = a1 + V::load(a + i + V::W), b1 = b1 + V::load(b + i + V::W);
    a2 = a2 + V::load(a + i + 2 * V::W), b2 = b2 + V::load(b + i + 2 * V::W);
    a3 = a3 + V::load(a + i + 3 * V::W), b3 = b3 + V::load(b + i + 3 * V::W);
  }
  for (; i + V::W <= D; i += V::W) a0 = a0 + V::load(a + i), b0 = b0 + V::load(b + i);
  float sa = ((a0 + a1) + (a2 + a3)).sum(), sb = ((b0 + b1) + (b2 + b3)).sum();
  for (; i < D; ++i) sa += a[i], sb += b[i];
  mu[0] = sa / float(D), mu[1] = sb / float(D);
  const V ca = V::set1(mu[0]), cb = V::set1(mu[1]);
  a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = V::zero();
  i = 0;
  for (; i + 4 * V::W <= D; i += 4 * V::W) {
    const V ta0 = V::load(a + i) - ca, ta1 = V::load(a + i + V::W) - ca;
    const V ta2 = V::load(a + i + 2 * V::W) - ca, ta3 = V::load(a + i + 3 * V::W) - ca;
    const V tb0 = V::load(b + i) - cb, tb1 = V::load(b + i + V::W) - cb;
    const V tb2 = V::load(b + i + 2 * V::W) - cb, tb3 = V::load(b + i + 3 * V::W) - cb;
    a0 = V::fma(ta0, ta0, a0), b0 = V::fma(tb0, tb0, b0);
    a1 = V::fma(ta1, ta1, a1), b1 = V::fma(tb1, tb1, b1);
    a2 = V::fma(ta2, ta2, a2), b2 = V::fma(tb2, tb2, b2);
    a3 = V::fma(ta3, ta3, a3), b3 = V::fma(tb3, tb3, b3);
  }
  for (; i + V::W <= D; i += V::W) {
    const V ta = V::load(a + i) - ca, tb = V::load(b + i) - cb;
    a0 = V::fma(ta, ta, a0), b0 = V::fma(tb, tb, b0);
  }
  float qa = ((a0 + a1) + (a2 + a3)).sum(), qb = ((b0 + b1) + (b2 + b3)).sum();
  for (; i < D; ++i) qa += (a[i] - mu[0]) * (a[i] - mu[0]), qb += (b[i] - mu[1]) * (b[i] - mu[1]);
  rs[0] = 1.f / fsqrt(qa / float(D) + eps);
  rs[1] = 1.f / fsqrt(qb / float(D) + eps);
}

// Rows [r0, r1); pointers by value (see gelu.cpp: a by-reference capture reloads them).
void layernorm_rows(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int64_t r0,
                    int64_t r1, int64_t D, float eps, bool streaming, bool paired) {
  const int64_t Dv = D - D % V::W;
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * D;
    float* yr = y + r * D;
    // Statistics for rows r and r + 1 together, on even offsets within the chunk (paired).
    if (!paired || (r - r0) % 2 == 0) {
      if (paired && r + 1 < r1) {
        row_stats2(xr, xr + D, D, eps, mean + r, rstd + r);
      } else {
        mean[r] = vsum(xr, D) / float(D);
        rstd[r] = 1.f / fsqrt(vsumsq_centered(xr, mean[r], D) / float(D) + eps);
      }
    }
    const float mu = mean[r], rs = rstd[r];
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
    layernorm_rows(y, mean, rstd, x, w, b, r0, r1, D, eps, streaming, paired_rows(R, D));
  });
  if (streaming) stream_fence();
}

namespace {
// Rows [r0, r1) of the backward; dw/db partials into pdw/pdb [D]. When `paired` (paired_rows),
// rows go in pairs whose reduction chains interleave (a row of 192 is too short to hide the add
// latency); each row's sums, and the order in which rows add into pdw/pdb, are as row by row
// (bit-identical).
void layernorm_grad_rows(float* dx, float* pdw, float* pdb, const float* dy, const float* x, const float* mean,
                         const float* rstd, const float* w, int64_t r0, int64_t r1, int64_t D, bool streaming,
                         bool paired) {
  const int64_t Dv = D - D % V::W;
  for (int64_t r = r0; r < r1;) {
    const int n = paired && r + 1 < r1 ? 2 : 1;
    const float *xa = x + r * D, *ga = dy + r * D, *xb = xa + (n - 1) * D, *gb = ga + (n - 1) * D;
    const V mua = V::set1(mean[r]), rsa = V::set1(rstd[r]);
    const V mub = V::set1(mean[r + n - 1]), rsb = V::set1(rstd[r + n - 1]);
    // Σ g and Σ g·x̂ per row; dw and db partials on the way.
    V sga = V::zero(), sgxa = V::zero(), sgb = V::zero(), sgxb = V::zero();
    for (int64_t d = 0; d < Dv; d += V::W) {
      const V xh = (V::load(xa + d) - mua) * rsa, dyv = V::load(ga + d);
      const V g = w ? dyv * V::load(w + d) : dyv;
      sga = sga + g;
      sgxa = V::fma(g, xh, sgxa);
      V pw = V::fma(dyv, xh, V::load(pdw + d)), pb = V::load(pdb + d) + dyv;
      if (n == 2) {
        const V xh1 = (V::load(xb + d) - mub) * rsb, dyv1 = V::load(gb + d);
        const V g1 = w ? dyv1 * V::load(w + d) : dyv1;
        sgb = sgb + g1;
        sgxb = V::fma(g1, xh1, sgxb);
        pw = V::fma(dyv1, xh1, pw), pb = pb + dyv1;
      }
      pw.store(pdw + d);
      pb.store(pdb + d);
    }
    const float sums[2][2] = {{sga.sum(), sgxa.sum()}, {sgb.sum(), sgxb.sum()}};
    for (int k = 0; k < n; ++k) {
      const int64_t rr = r + k;
      const float* xr = x + rr * D;
      const float* gr = dy + rr * D;
      float* dxr = dx + rr * D;
      float s_g = sums[k][0], s_gx = sums[k][1];
      for (int64_t d = Dv; d < D; ++d) {
        const float xh = (xr[d] - mean[rr]) * rstd[rr], g = w ? gr[d] * w[d] : gr[d];
        s_g += g;
        s_gx += g * xh;
        pdw[d] += gr[d] * xh;
        pdb[d] += gr[d];
      }
      const V vmu = V::set1(mean[rr]), vrs = V::set1(rstd[rr]);
      const V mg = V::set1(s_g / float(D)), mgx = V::set1(s_gx / float(D));
      for (int64_t d = 0; d < Dv; d += V::W) {
        const V xh = (V::load(xr + d) - vmu) * vrs, dyv = V::load(gr + d);
        const V g = w ? dyv * V::load(w + d) : dyv;
        store_out(vrs * (g - mg - xh * mgx), dxr + d, streaming);
      }
      for (int64_t d = Dv; d < D; ++d) {
        const float xh = (xr[d] - mean[rr]) * rstd[rr], g = w ? gr[d] * w[d] : gr[d];
        dxr[d] = rstd[rr] * (g - s_g / float(D) - xh * (s_gx / float(D)));
      }
    }
    r += n;
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
    layernorm_grad_rows(dx, parts + c * 2 * D, parts + c * 2 * D + D, dy, x, mean, rstd, w, r0, r1, D, streaming,
                        paired_rows(R, D));
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
