// relu.cu: y = max(x, 0) and its gradient dx = dy·[x > 0] (contract in mamakit.h, as
// native/cpu/relu.cpp: a NaN input gives 0 and passes no gradient). Elementwise, grid-stride.
#include "common.cuh"

namespace mk_cuda {
namespace {

unsigned blocks(int64_t n) { return unsigned(std::min<int64_t>((n + 255) / 256, 65535)); }

// y, x [n]
template <class T>
__global__ void forward_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = to_f32(x[i]);
    y[i] = from_f32<T>(v > 0.f ? v : 0.f);
  }
}

// dx, dy, x [n]
template <class T>
__global__ void backward_kernel(T* __restrict__ dx, const T* __restrict__ dy, const T* __restrict__ x, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = from_f32<T>(to_f32(x[i]) > 0.f ? to_f32(dy[i]) : 0.f);
}

template <class T>
cudaError_t forward(cudaStream_t s, void* y, const void* x, int64_t n) {
  return launch<forward_kernel<T>>(blocks(n), 256, 0, s, static_cast<T*>(y), static_cast<const T*>(x), n);
}

template <class T>
cudaError_t backward(cudaStream_t s, void* dx, const void* dy, const void* x, int64_t n) {
  return launch<backward_kernel<T>>(blocks(n), 256, 0, s, static_cast<T*>(dx), static_cast<const T*>(dy),
                                    static_cast<const T*>(x), n);
}

mk_status cu_relu_forward(mk_context* ctx, void* y, const void* x, mk_dtype dtype, int64_t n) {
  if (n <= 0) return MK_OK;
  const cudaError_t e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return forward<St>(ctx->stream, y, x, n);
  });
  return check(e, "relu");
}

mk_status cu_relu_backward(mk_context* ctx, void* dx, const void* dy, const void* x, mk_dtype dtype, int64_t n) {
  if (n <= 0) return MK_OK;
  const cudaError_t e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return backward<St>(ctx->stream, dx, dy, x, n);
  });
  return check(e, "reluBackward");
}

}  // namespace

MK_CUDA_ENTRY(relu_forward, cu_relu_forward);
MK_CUDA_ENTRY(relu_backward, cu_relu_backward);

}  // namespace mk_cuda
