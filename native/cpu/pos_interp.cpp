// pos_interp.cpp: bicubic resampling of a grid of position embeddings (compiled per ISA), as
// PyTorch's interpolate(mode="bicubic", align_corners=False) computes it and DINOv2 uses it to
// run at another resolution: output pixel i reads source coordinate (i + 0.5)·scale − 0.5,
// the 4×4 neighbours with the cubic convolution kernel of a = −0.75, indices clamped to the
// grid. x [H0·W0, D] → y [H1·W1, D]; backward scatters dy with the same weights.
#include "../common/cubic.h"
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {
namespace {

using Taps = CubicTaps;

Taps taps(int64_t i, float scale, int64_t n) { return cubic_taps(i, scale, n); }

// o[0..D) += w · s[0..D)
void axpy(float* o, const float* s, float w, int64_t D) {
  const V vw = V::set1(w);
  int64_t d = 0;
  for (; d + V::W <= D; d += V::W) V::fma(vw, V::load(s + d), V::load(o + d)).store(o + d);
  for (; d < D; ++d) o[d] += w * s[d];
}

}  // namespace

void pos_interp_forward(float* y, const float* x, int64_t H0, int64_t W0, int64_t H1, int64_t W1, int64_t D,
                        float scale_h, float scale_w) {
  parallel_chunks(H1 * W1, 1 + 4096 / D, [&](int64_t o0, int64_t o1, int64_t) {
    for (int64_t o = o0; o < o1; ++o) {
      const Taps ty = taps(o / W1, scale_h, H0), tx = taps(o % W1, scale_w, W0);
      float* yo = y + o * D;
      for (int64_t d = 0; d < D; ++d) yo[d] = 0.f;
      for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b) axpy(yo, x + (ty.at[a] * W0 + tx.at[b]) * D, ty.w[a] * tx.w[b], D);
    }
  });
}

void pos_interp_backward(float* dx, const float* dy, int64_t H0, int64_t W0, int64_t H1, int64_t W1, int64_t D,
                         float scale_h, float scale_w) {
  // Source rows receive from many outputs, so tasks own column blocks, not rows.
  const int64_t blocks = (D + 63) / 64;
  parallel_for(blocks, [&](int64_t blk, int) {
    const int64_t d0 = blk * 64, n = D - d0 < 64 ? D - d0 : 64;
    for (int64_t r = 0; r < H0 * W0; ++r)
      for (int64_t d = 0; d < n; ++d) dx[r * D + d0 + d] = 0.f;
    for (int64_t o = 0; o < H1 * W1; ++o) {
      const Taps ty = taps(o / W1, scale_h, H0), tx = taps(o % W1, scale_w, W0);
      for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b) axpy(dx + (ty.at[a] * W0 + tx.at[b]) * D + d0, dy + o * D + d0, ty.w[a] * tx.w[b], n);
    }
  });
}

}  // namespace MK_ISA
}  // namespace mk
