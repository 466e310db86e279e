// l2norm.cu: L2 normalisation of rows, forward and backward (contract in mamakit.h, as
// native/cpu/l2norm.cpp): n = max(‖x‖, eps), y = x / n; dx = (dy − y·(y·dy)) / n, the dot taken
// as 0 where n ≤ eps. One block per row with warp-shuffle block sums; the norm is saved in f32.
#include "reduce.cuh"

namespace mk_cuda {
namespace {

// Threads per row: D rounded up to whole warps, at most 256 (wider rows loop).
unsigned row_threads(int64_t D) { return unsigned(std::min<int64_t>((D + 31) / 32 * 32, 256)); }

// Σ v over the block, in every thread (reduce.cuh).
__device__ __forceinline__ float row_sum(float v, float (&sh)[1][32]) {
  float a[1] = {v};
  block_sum(a, sh);
  return a[0];
}

// y, x [R,D]; norm [R] (f32). Block b takes rows b, b + gridDim.x, ...
template <class T>
__global__ void forward_kernel(T* __restrict__ y, float* __restrict__ norm, const T* __restrict__ x, int64_t R,
                               int64_t D, float eps) {
  __shared__ float sh[1][32];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T* xr = x + r * D;
    float ss = 0.f;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      const float v = to_f32(xr[d]);
      ss += v * v;
    }
    float n = sqrtf(row_sum(ss, sh));
    n = n > eps ? n : eps;
    if (threadIdx.x == 0) norm[r] = n;
    const float inv = 1.f / n;
    T* yr = y + r * D;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) yr[d] = from_f32<T>(to_f32(xr[d]) * inv);
  }
}

// dx, dy, y [R,D]; norm [R] (f32, as the forward saved it).
template <class T>
__global__ void backward_kernel(T* __restrict__ dx, const T* __restrict__ dy, const T* __restrict__ y,
                                const float* __restrict__ norm, int64_t R, int64_t D, float eps) {
  __shared__ float sh[1][32];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T *yr = y + r * D, *gr = dy + r * D;
    float dot = 0.f;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) dot += to_f32(yr[d]) * to_f32(gr[d]);
    dot = row_sum(dot, sh);  // every thread takes part: the branch below comes after
    const float n = norm[r];
    if (!(n > eps)) dot = 0.f;
    const float inv = 1.f / n;
    T* dr = dx + r * D;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x)
      dr[d] = from_f32<T>((to_f32(gr[d]) - to_f32(yr[d]) * dot) * inv);
  }
}

template <class T>
cudaError_t forward(cudaStream_t s, void* y, float* norm, const void* x, int64_t R, int64_t D, float eps) {
  return launch<forward_kernel<T>>(unsigned(std::min<int64_t>(R, 65535)), row_threads(D), 0, s, static_cast<T*>(y), norm,
                                   static_cast<const T*>(x), R, D, eps);
}

template <class T>
cudaError_t backward(cudaStream_t s, void* dx, const void* dy, const void* y, const float* norm, int64_t R, int64_t D,
                     float eps) {
  return launch<backward_kernel<T>>(unsigned(std::min<int64_t>(R, 65535)), row_threads(D), 0, s, static_cast<T*>(dx),
                                    static_cast<const T*>(dy), static_cast<const T*>(y), norm, R, D, eps);
}

mk_status cu_l2norm_forward(mk_context* ctx, void* y, float* norm, const void* x, mk_dtype dtype, int64_t R, int64_t D,
                            float eps) {
  if (R <= 0 || D <= 0) return MK_OK;
  const cudaError_t e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return forward<St>(ctx->stream, y, norm, x, R, D, eps);
  });
  return check(e, "l2Normalize");
}

mk_status cu_l2norm_backward(mk_context* ctx, void* dx, const void* dy, const void* y, const float* norm, mk_dtype dtype,
                             int64_t R, int64_t D, float eps) {
  if (R <= 0 || D <= 0) return MK_OK;
  const cudaError_t e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return backward<St>(ctx->stream, dx, dy, y, norm, R, D, eps);
  });
  return check(e, "l2NormalizeBackward");
}

}  // namespace

MK_CUDA_ENTRY(l2norm_forward, cu_l2norm_forward);
MK_CUDA_ENTRY(l2norm_backward, cu_l2norm_backward);

}  // namespace mk_cuda
