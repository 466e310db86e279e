// meanpool.cu: mean over the token axis, y [B,D] = (1/L) Σ_l x [B,L,D], and its backward
// dx [B,L,D] = dy [B,D] / L (contract in mamakit.h, as native/cpu/meanpool.cpp: the sum times
// 1/L). A thread per output element, grid-stride; adjacent threads read adjacent columns.
#include "common.cuh"

namespace mk_cuda {
namespace {

unsigned blocks(int64_t n) { return unsigned(std::min<int64_t>((n + 255) / 256, 65535)); }

// y [B,D]; x [B,L,D]. Thread i walks the L tokens of y[i].
template <class T>
__global__ void forward_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t B, int64_t L, int64_t D) {
  const float inv = 1.f / float(L);
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < B * D; i += int64_t(gridDim.x) * blockDim.x) {
    const T* col = x + (i / D) * L * D + i % D;
    float s = 0.f;
    for (int64_t l = 0; l < L; ++l) s += to_f32(col[l * D]);
    y[i] = from_f32<T>(s * inv);
  }
}

// dx [B,L,D]; dy [B,D].
template <class T>
__global__ void backward_kernel(T* __restrict__ dx, const T* __restrict__ dy, int64_t B, int64_t L, int64_t D) {
  const float inv = 1.f / float(L);
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < B * L * D; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = from_f32<T>(to_f32(dy[(i / (L * D)) * D + i % D]) * inv);
}

template <class T>
cudaError_t forward(cudaStream_t s, void* y, const void* x, int64_t B, int64_t L, int64_t D) {
  return launch<forward_kernel<T>>(blocks(B * D), 256, 0, s, static_cast<T*>(y), static_cast<const T*>(x), B, L, D);
}

template <class T>
cudaError_t backward(cudaStream_t s, void* dx, const void* dy, int64_t B, int64_t L, int64_t D) {
  return launch<backward_kernel<T>>(blocks(B * L * D), 256, 0, s, static_cast<T*>(dx), static_cast<const T*>(dy), B, L, D);
}

mk_status cu_meanpool_forward(mk_context* ctx, void* y, const void* x, mk_dtype dtype, int64_t B, int64_t L, int64_t D) {
  if (B <= 0 || D <= 0) return MK_OK;
  const cudaError_t e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return forward<St>(ctx->stream, y, x, B, L, D);
  });
  return check(e, "meanPool");
}

mk_status cu_meanpool_backward(mk_context* ctx, void* dx, const void* dy, mk_dtype dtype, int64_t B, int64_t L, int64_t D) {
  if (B <= 0 || L <= 0 || D <= 0) return MK_OK;
  const cudaError_t e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return backward<St>(ctx->stream, dx, dy, B, L, D);
  });
  return check(e, "meanPoolBackward");
}

}  // namespace

MK_CUDA_ENTRY(meanpool_forward, cu_meanpool_forward);
MK_CUDA_ENTRY(meanpool_backward, cu_meanpool_backward);

}  // namespace mk_cuda
