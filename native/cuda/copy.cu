// copy.cu: moving values on the device: copy and copy2d (stream-ordered device copies), fill
// (x = value), and cast (between f32, bf16 and f16; to 16 bits rounded to nearest even).
#include "common.cuh"

namespace mk_cuda {
namespace {

unsigned blocks(int64_t n) { return unsigned(std::min<int64_t>((n + 255) / 256, 65535)); }

template <class T>
__global__ void fill_kernel(T* __restrict__ x, int64_t n, float value) {
  const T v = from_f32<T>(value);
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) x[i] = v;
}

template <class D, class S>
__global__ void cast_kernel(D* __restrict__ dst, const S* __restrict__ src, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = from_f32<D>(to_f32(src[i]));
}

template <class D>
cudaError_t cast_from(cudaStream_t s, D* dst, const void* src, mk_dtype src_dtype, int64_t n) {
  return by_dtype(src_dtype, [&](auto st) {
    using St = decltype(st);
    return launch<cast_kernel<D, St>>(blocks(n), 256, 0, s, dst, static_cast<const St*>(src), n);
  });
}

size_t size_of(mk_dtype d) { return d == MK_F32 ? 4 : 2; }

mk_status cu_copy(mk_context* ctx, void* dst, const void* src, mk_dtype dtype, int64_t n) {
  return check(cudaMemcpyAsync(dst, src, size_t(n) * size_of(dtype), cudaMemcpyDeviceToDevice, ctx->stream), "copy");
}

mk_status cu_copy2d(mk_context* ctx, void* dst, int64_t dst_stride, const void* src, int64_t src_stride, mk_dtype dtype,
                     int64_t rows, int64_t cols) {
  const size_t es = size_of(dtype);
  return check(cudaMemcpy2DAsync(dst, size_t(dst_stride) * es, src, size_t(src_stride) * es, size_t(cols) * es, size_t(rows),
                                 cudaMemcpyDeviceToDevice, ctx->stream),
               "copy2d");
}

mk_status cu_fill(mk_context* ctx, void* x, mk_dtype dtype, int64_t n, float value) {
  const cudaError_t e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return launch<fill_kernel<St>>(blocks(n), 256, 0, ctx->stream, static_cast<St*>(x), n, value);
  });
  return check(e, "fill");
}

mk_status cu_cast(mk_context* ctx, void* dst, mk_dtype dst_dtype, const void* src, mk_dtype src_dtype, int64_t n) {
  const cudaError_t e = by_dtype(dst_dtype, [&](auto st) {
    using St = decltype(st);
    return cast_from(ctx->stream, static_cast<St*>(dst), src, src_dtype, n);
  });
  return check(e, "cast");
}

}  // namespace

MK_CUDA_ENTRY(copy, cu_copy);
MK_CUDA_ENTRY(copy2d, cu_copy2d);
MK_CUDA_ENTRY(fill, cu_fill);
MK_CUDA_ENTRY(cast, cu_cast);

}  // namespace mk_cuda
