// axpy.cu: y += alpha·x and x *= alpha (·*by) in place (gradient accumulation and scaling without a
// temporary), f32 arithmetic on any storage type.
#include "common.cuh"

namespace mk_cuda {
namespace {

unsigned blocks(int64_t n) { return unsigned(std::min<int64_t>((n + 255) / 256, 65535)); }

template <class T, class Tx>
__global__ void axpy_kernel(T* __restrict__ y, const Tx* __restrict__ x, int64_t n, float alpha) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = from_f32<T>(to_f32(y[i]) + alpha * to_f32(x[i]));
}

template <class T>
__global__ void scale_kernel(T* __restrict__ x, int64_t n, float alpha, const float* __restrict__ by) {
  if (by) alpha *= *by;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = from_f32<T>(alpha * to_f32(x[i]));
}

mk_status cu_axpy(mk_context* ctx, void* y, mk_dtype y_dtype, const void* x, mk_dtype x_dtype, int64_t n, float alpha) {
  const cudaError_t e = by_dtype(y_dtype, [&](auto st) {
    using St = decltype(st);
    return by_dtype(x_dtype, [&](auto sx) {
      using Sx = decltype(sx);
      return launch<axpy_kernel<St, Sx>>(blocks(n), 256, 0, ctx->stream, static_cast<St*>(y), static_cast<const Sx*>(x), n, alpha);
    });
  });
  return check(e, "axpy");
}

mk_status cu_scale(mk_context* ctx, void* x, mk_dtype dtype, int64_t n, float alpha, const float* by) {
  const cudaError_t e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return launch<scale_kernel<St>>(blocks(n), 256, 0, ctx->stream, static_cast<St*>(x), n, alpha, by);
  });
  return check(e, "scale");
}

}  // namespace

MK_CUDA_ENTRY(axpy, cu_axpy);
MK_CUDA_ENTRY(scale, cu_scale);

}  // namespace mk_cuda
