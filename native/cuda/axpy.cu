// axpy.cu: y += alpha·x and x *= alpha (·*by) in place (gradient accumulation and scaling without a
// temporary), f32 arithmetic on any storage type.
#include "common.cuh"

namespace mk_cuda {
namespace {

unsigned blocks(int64_t n) { return unsigned(std::min<int64_t>((n + 255) / 256, 65535)); }

template <class T>
__global__ void axpy_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t n, float alpha) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = from_f32<T>(to_f32(y[i]) + alpha * to_f32(x[i]));
}

template <class T>
__global__ void scale_kernel(T* __restrict__ x, int64_t n, float alpha, const float* __restrict__ by) {
  if (by) alpha *= *by;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = from_f32<T>(alpha * to_f32(x[i]));
}

mk_status cu_axpy(mk_context* ctx, void* y, const void* x, mk_dtype dtype, int64_t n, float alpha) {
  cudaError_t e;
  switch (dtype) {
    case MK_BF16:
      e = launch<axpy_kernel<__nv_bfloat16>>(blocks(n), 256, 0, ctx->stream, static_cast<__nv_bfloat16*>(y), static_cast<const __nv_bfloat16*>(x), n, alpha);
      break;
    case MK_F16: e = launch<axpy_kernel<__half>>(blocks(n), 256, 0, ctx->stream, static_cast<__half*>(y), static_cast<const __half*>(x), n, alpha); break;
    default: e = launch<axpy_kernel<float>>(blocks(n), 256, 0, ctx->stream, static_cast<float*>(y), static_cast<const float*>(x), n, alpha);
  }
  return check(e, "axpy");
}

mk_status cu_scale(mk_context* ctx, void* x, mk_dtype dtype, int64_t n, float alpha, const float* by) {
  cudaError_t e;
  switch (dtype) {
    case MK_BF16: e = launch<scale_kernel<__nv_bfloat16>>(blocks(n), 256, 0, ctx->stream, static_cast<__nv_bfloat16*>(x), n, alpha, by); break;
    case MK_F16: e = launch<scale_kernel<__half>>(blocks(n), 256, 0, ctx->stream, static_cast<__half*>(x), n, alpha, by); break;
    default: e = launch<scale_kernel<float>>(blocks(n), 256, 0, ctx->stream, static_cast<float*>(x), n, alpha, by);
  }
  return check(e, "scale");
}

}  // namespace

MK_CUDA_ENTRY(axpy, cu_axpy);
MK_CUDA_ENTRY(scale, cu_scale);

}  // namespace mk_cuda
