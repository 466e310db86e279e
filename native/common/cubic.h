// cubic.h: the bicubic taps of PyTorch's interpolate(mode="bicubic", align_corners=False), as
// its upsample_bicubic2d computes them in float (get_cubic_upsample_coefficients), shared by the
// CPU (native/cpu/pos_interp.cpp) and CUDA (native/cuda/pos_interp.cu) position resampling.
#pragma once
#include <math.h>
#include <stdint.h>

#include "hd.h"

namespace mk {

struct CubicTaps {
  int64_t at[4];  // source indices, clamped to [0, n)
  float w[4];
};

// The cubic convolution kernel, a = −0.75: |x| ≤ 1, and 1 < |x| < 2.
MK_HD inline float cubic1(float x) { return ((-0.75f + 2) * x - (-0.75f + 3)) * x * x + 1; }
MK_HD inline float cubic2(float x) { return ((-0.75f * x - 5 * -0.75f) * x + 8 * -0.75f) * x - 4 * -0.75f; }

// Output i of an axis reads source coordinate scale·(i + 0.5) − 0.5 of an axis of n.
MK_HD inline CubicTaps cubic_taps(int64_t i, float scale, int64_t n) {
  const float real = scale * (float(i) + 0.5f) - 0.5f;
  const float fl = floorf(real), t = real - fl;
  CubicTaps r;
  r.w[0] = cubic2(t + 1), r.w[1] = cubic1(t), r.w[2] = cubic1(1 - t), r.w[3] = cubic2(2 - t);
  for (int k = 0; k < 4; ++k) {
    const int64_t s = int64_t(fl) - 1 + k;
    r.at[k] = s < 0 ? 0 : s >= n ? n - 1 : s;
  }
  return r;
}

}  // namespace mk
