// patch_embed.cpp: patch embedding forward and backward through the GEMM driver (matmul.h).
// The patch matrix P [B·Np, C·p·p] is never built: P(m, q) = images[patch(m) + pixel(q)], so
// packing reads the pixels directly. Forward: tokens = P·Wᵀ + bias + pos, stored at each
// token's row. Backward: dWᵀ = Pᵀ·dT, and dPos, dBias are summed while dT is packed.
#include "patch_embed.h"

#include <memory>
#include <vector>

#include "matmul.h"
#include "threadpool.h"

namespace mk {
namespace {

struct PatchIndex {
  std::vector<int64_t> patch;  // [B·Np] top-left pixel of patch m in images
  std::vector<int64_t> pixel;  // [C·p·p] (channel, row, column) of the patch, from its top-left
  std::vector<int64_t> token;  // [B·Np] start of token m's row in tokens
  std::vector<int64_t> pos;    // [B·Np] start of its position row, n·D
};

// Patch m is (b, n) = (m / Np, m % Np), or (m % B, m / B) when by_position: the backward sums
// over patches in that order, so that the B tokens of one position are added into its dPos
// row one after another while the row is in L1, and one packing task owns each row.
PatchIndex make_index(int64_t B, int64_t C, int64_t H, int64_t W, int64_t p, int64_t D, int64_t T, int64_t offset,
                      bool by_position = false) {
  const int64_t gw = W / p, np = (H / p) * gw;
  PatchIndex ix;
  ix.patch.resize(size_t(B * np)), ix.token.resize(size_t(B * np)), ix.pos.resize(size_t(B * np));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < np; ++n) {
      const int64_t m = by_position ? n * B + b : b * np + n;
      ix.patch[m] = b * C * H * W + (n / gw) * p * W + (n % gw) * p;
      ix.token[m] = (b * T + offset + n) * D;
      ix.pos[m] = n * D;
    }
  ix.pixel.resize(size_t(C * p * p));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < p; ++i)
      for (int64_t j = 0; j < p; ++j) ix.pixel[(c * p + i) * p + j] = c * H * W + i * W + j;
  return ix;
}

}  // namespace

void patch_embed_forward(float* tokens, const float* images, const float* weight, const float* bias,
                         const float* pos, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p, int64_t D,
                         int64_t T, int64_t offset) {
  const int64_t np = (H / p) * (W / p), kp = C * p * p;
  const PatchIndex ix = make_index(B, C, H, W, p, D, T, offset);
  GemmOperand a;  // P [B·Np, kp]
  a.p = images, a.rows = ix.patch.data(), a.cols = ix.pixel.data();
  GemmOperand w;  // Wᵀ [kp, D] from weight [D, kp]
  w.p = weight, w.rs = 1, w.cs = kp;
  GemmOut out;
  out.p = tokens, out.rows = ix.token.data();
  // pos + bias summed once ([Np, D], small next to the tokens), then added in the GEMM's store.
  std::unique_ptr<float[]> posb;
  if (pos) {
    posb.reset(new float[size_t(np * D)]);
    float* pb = posb.get();
    parallel_chunks(np, 16, [&](int64_t n0, int64_t n1, int64_t) {
      for (int64_t i = n0 * D; i < n1 * D; ++i) pb[i] = pos[i] + (bias ? bias[i % D] : 0.f);
    });
    out.add = pb, out.add_rows = ix.pos.data();
  } else if (bias) {
    out.add = bias, out.add_ld = 0;
  }
  gemm_f32(out, a, w, B * np, D, kp);
}

void patch_embed_backward(float* dweight, float* dbias, float* dpos, const float* dtokens, const float* images,
                          int64_t B, int64_t C, int64_t H, int64_t W, int64_t p, int64_t D, int64_t T,
                          int64_t offset) {
  const int64_t np = (H / p) * (W / p), kp = C * p * p, M = B * np;
  const PatchIndex ix = make_index(B, C, H, W, p, D, T, offset, true);
  // dp [Np, D]: this call's Σ_b dT[b, offset + n]; dPos += dp and dBias += Σ_n dp.
  std::unique_ptr<float[]> dp;
  if (dbias || dpos) dp.reset(new float[size_t(np * D)]());
  if (dweight) {
    // dWᵀ [kp, D] = Pᵀ·dT, with dT as the B operand: packing B walks whole token rows (what
    // the prefetchers follow), and its B rows of one position sum into dp while packed.
    GemmOperand pt;  // Pᵀ [kp, M]: element (q, m) = images[patch(m) + pixel(q)]
    pt.p = images, pt.rows = ix.pixel.data(), pt.cols = ix.patch.data();
    GemmOperand dt;  // dT [M, D]: row m at token(m)
    dt.p = dtokens, dt.rows = ix.token.data(), dt.cs = 1;
    std::unique_ptr<float[]> dwt(new float[size_t(kp * D)]);
    GemmOut out;
    out.p = dwt.get(), out.ld = D;
    GemmBSum sum;
    if (dp) sum.sum = dp.get(), sum.rows = ix.pos.data(), sum.granule = B;
    gemm_f32(out, pt, dt, kp, D, M, sum);
    const float* s = dwt.get();
    parallel_chunks(D, 16, [&](int64_t d0, int64_t d1, int64_t) {
      for (int64_t d = d0; d < d1; ++d)
        for (int64_t q = 0; q < kp; ++q) dweight[d * kp + q] += s[q * D + d];
    });
  } else if (dp) {
    float* s = dp.get();
    parallel_chunks(np, 8, [&](int64_t n0, int64_t n1, int64_t) {
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t b = 0; b < B; ++b) {
          const float* g = dtokens + ix.token[n * B + b];
          float* o = s + n * D;
          for (int64_t d = 0; d < D; ++d) o[d] += g[d];
        }
    });
  }
  if (dpos) {
    const float* s = dp.get();
    parallel_chunks(np * D, 16384, [&](int64_t i0, int64_t i1, int64_t) {
      for (int64_t i = i0; i < i1; ++i) dpos[i] += s[i];
    });
  }
  if (dbias) {
    const float* s = dp.get();
    parallel_chunks(D, 64, [&](int64_t d0, int64_t d1, int64_t) {
      for (int64_t n = 0; n < np; ++n)
        for (int64_t d = d0; d < d1; ++d) dbias[d] += s[n * D + d];
    });
  }
}

}  // namespace mk
