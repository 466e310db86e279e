// sgd.cu: one SGD step with momentum over a flat f32 range, the formulas of native/cpu/sgd.cpp
// (torch.optim.SGD without dampening or Nesterov): g = grad·grad_scale + wd·p;
// buf ← μ·buf + g;  p ← p − lr·buf  (no buffer: p ← p − lr·g). Elementwise, grid-stride.
#include "common.cuh"

namespace mk_cuda {
namespace {

unsigned blocks(int64_t n) { return unsigned(std::min<int64_t>((n + 255) / 256, 65535)); }

// p, g [n] (f32); buf [n] (f32) or null (then μ is 0 and p ← p − lr·g).
__global__ void sgd_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ buf, int64_t n,
                           float lr, float momentum, float wd, float grad_scale) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float pi = p[i];
    float gi = fmaf(wd, pi, g[i] * grad_scale);
    if (buf) {
      gi = fmaf(momentum, buf[i], gi);
      buf[i] = gi;
    }
    p[i] = pi - lr * gi;
  }
}

mk_status cu_sgd(mk_context* ctx, float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float wd,
                 float grad_scale) {
  if (n <= 0) return MK_OK;
  return check(launch<sgd_kernel>(blocks(n), 256, 0, ctx->stream, p, g, buf, n, lr, momentum, wd, grad_scale), "sgd");
}

}  // namespace

MK_CUDA_ENTRY(sgd, cu_sgd);

}  // namespace mk_cuda
