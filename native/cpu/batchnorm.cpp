// batchnorm.cpp: BatchNorm1d over x [R, C] (statistics per column), forward and backward
// (compiled per ISA). Training: batch mean and biased variance normalise; the running
// statistics move by `momentum` toward the batch mean and the UNBIASED variance (PyTorch).
// Evaluation: the running statistics normalise. Either way mean and rstd are written out for
// the backward.
//   y = (x − mean)·rstd·w + b
//   training: dx = w·rstd/R·(R·dy − Σdy − x̂·Σ(dy·x̂));  evaluation: dx = w·rstd·dy
//   dw += Σ dy·x̂,  db += Σ dy
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {
namespace {
// Columns per task: wide enough for whole vectors, narrow enough to spread over threads.
constexpr int64_t kCols = 64;
}  // namespace

void batchnorm_forward(float* y, float* mean, float* rstd, float* running_mean, float* running_var, const float* x,
                       const float* w, const float* b, int64_t R, int64_t C, float eps, float momentum, int training) {
  parallel_chunks((C + kCols - 1) / kCols, 1, [&](int64_t k0, int64_t k1, int64_t) {
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t c0 = k * kCols, c1 = c0 + kCols < C ? c0 + kCols : C;
      float sum[kCols], sq[kCols];
      for (int64_t c = c0; c < c1; ++c) sum[c - c0] = sq[c - c0] = 0.f;
      if (training) {
        for (int64_t r = 0; r < R; ++r)
          for (int64_t c = c0; c < c1; ++c) sum[c - c0] += x[r * C + c];
        for (int64_t c = c0; c < c1; ++c) sum[c - c0] /= float(R);
        for (int64_t r = 0; r < R; ++r)
          for (int64_t c = c0; c < c1; ++c) {
            const float t = x[r * C + c] - sum[c - c0];
            sq[c - c0] += t * t;
          }
        for (int64_t c = c0; c < c1; ++c) {
          const float mu = sum[c - c0], var = sq[c - c0] / float(R);
          mean[c] = mu;
          rstd[c] = 1.f / fsqrt(var + eps);
          if (running_mean) running_mean[c] = (1.f - momentum) * running_mean[c] + momentum * mu;
          if (running_var) running_var[c] = (1.f - momentum) * running_var[c] + momentum * (R > 1 ? sq[c - c0] / float(R - 1) : var);
        }
      } else {
        for (int64_t c = c0; c < c1; ++c) {
          mean[c] = running_mean[c];
          rstd[c] = 1.f / fsqrt(running_var[c] + eps);
        }
      }
      for (int64_t r = 0; r < R; ++r) {
        const float* xr = x + r * C;
        float* yr = y + r * C;
        for (int64_t c = c0; c < c1; ++c) {
          float t = (xr[c] - mean[c]) * rstd[c];
          if (w) t *= w[c];
          if (b) t += b[c];
          yr[c] = t;
        }
      }
    }
  });
}

void batchnorm_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* mean,
                        const float* rstd, const float* w, int64_t R, int64_t C, int training) {
  parallel_chunks((C + kCols - 1) / kCols, 1, [&](int64_t k0, int64_t k1, int64_t) {
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t c0 = k * kCols, c1 = c0 + kCols < C ? c0 + kCols : C;
      float sdy[kCols], sdyx[kCols];
      for (int64_t c = c0; c < c1; ++c) sdy[c - c0] = sdyx[c - c0] = 0.f;
      for (int64_t r = 0; r < R; ++r)
        for (int64_t c = c0; c < c1; ++c) {
          const float g = dy[r * C + c];
          sdy[c - c0] += g;
          sdyx[c - c0] += g * (x[r * C + c] - mean[c]) * rstd[c];
        }
      for (int64_t r = 0; r < R; ++r)
        for (int64_t c = c0; c < c1; ++c) {
          const float scale = (w ? w[c] : 1.f) * rstd[c];
          const float g = dy[r * C + c];
          if (training) {
            const float xh = (x[r * C + c] - mean[c]) * rstd[c];
            dx[r * C + c] = scale * (g - sdy[c - c0] / float(R) - xh * sdyx[c - c0] / float(R));
          } else {
            dx[r * C + c] = scale * g;
          }
        }
      for (int64_t c = c0; c < c1; ++c) {
        if (dw) dw[c] += sdyx[c - c0];
        if (db) db[c] += sdy[c - c0];
      }
    }
  });
}

}  // namespace MK_ISA
}  // namespace mk
