// adamw.cu: one AdamW step over a flat f32 range, the formulas of native/cpu/adamw.cpp: with
// g = grad·grad_scale, p ← p·(1 − lr·wd) − lr/bc1 · m / (√v·(1/√bc2) + eps) after
// m ← β1·m + (1 − β1)·g and v ← β2·v + (1 − β2)·g². Elementwise, grid-stride.
#include <cmath>

#include "common.cuh"

namespace mk_cuda {
namespace {

unsigned blocks(int64_t n) { return unsigned(std::min<int64_t>((n + 255) / 256, 65535)); }

// The step's scalars, derived on the host as the CPU derives them.
struct Hyper {
  float beta1, beta2, c1, c2;   // β1, β2, 1 − β1, 1 − β2
  float decay, step, inv_sqrt_bc2, eps, grad_scale;
};

// p, g, m, v [n] (f32): p, m, v updated in place.
__global__ void adamw_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                             float* __restrict__ v, int64_t n, Hyper h) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float gi = g[i] * h.grad_scale;
    const float mi = fmaf(h.beta1, m[i], h.c1 * gi);
    const float vi = fmaf(h.beta2, v[i], h.c2 * gi * gi);
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * h.decay - h.step * mi / fmaf(sqrtf(vi), h.inv_sqrt_bc2, h.eps);
  }
}

mk_status cu_adamw(mk_context* ctx, float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
                   float beta2, float eps, float wd, float bc1, float bc2, float grad_scale) {
  if (n <= 0) return MK_OK;
  const Hyper h{beta1, beta2, 1.f - beta1, 1.f - beta2, 1.f - lr * wd, lr / bc1, 1.f / std::sqrt(bc2), eps, grad_scale};
  return check(launch<adamw_kernel>(blocks(n), 256, 0, ctx->stream, p, g, m, v, n, h), "adamw");
}

}  // namespace

MK_CUDA_ENTRY(adamw, cu_adamw);

}  // namespace mk_cuda
