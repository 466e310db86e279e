// dropout.cu: inverted dropout with the CPU's counter-based mask (native/common/dropout_mask.h),
// bit for bit: element i is kept by mk::drop::kept(key(seed), offset + i, ⌊p·2^24⌋), and kept
// values are scaled by 1/(1 − p). The backward is the same call.
#include "../common/dropout_mask.h"
#include "common.cuh"

namespace mk_cuda {
namespace {

unsigned blocks(int64_t n) { return unsigned(std::min<int64_t>((n + 255) / 256, 65535)); }

// y [n] = x [n]·scale where kept, else 0. Grid-stride over n; key, threshold and scale come from
// the host, computed there exactly as the CPU computes them.
template <class T>
__global__ void dropout_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t n, uint64_t key, uint64_t offset,
                               uint32_t threshold, float scale) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = from_f32<T>(mk::drop::kept(key, offset + uint64_t(i), threshold) ? to_f32(x[i]) * scale : 0.f);
}

template <class T>
cudaError_t run(cudaStream_t s, void* y, const void* x, int64_t n, uint64_t key, uint64_t offset, uint32_t threshold,
                float scale) {
  return launch<dropout_kernel<T>>(blocks(n), 256, 0, s, static_cast<T*>(y), static_cast<const T*>(x), n, key, offset,
                                   threshold, scale);
}

mk_status cu_dropout(mk_context* ctx, void* y, const void* x, mk_dtype dtype, int64_t n, float p, uint64_t seed,
                     uint64_t offset) {
  if (n <= 0) return MK_OK;
  const uint64_t key = mk::drop::key(seed);
  const uint32_t threshold = mk::drop::threshold(p);
  const float scale = 1.f / (1.f - p);
  const cudaError_t e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return run<St>(ctx->stream, y, x, n, key, offset, threshold, scale);
  });
  return check(e, "dropout");
}

}  // namespace

MK_CUDA_ENTRY(dropout, cu_dropout);

}  // namespace mk_cuda
