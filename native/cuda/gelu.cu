// gelu.cu: GELU forward and backward, exact (erf) and tanh forms (contract in mamakit.h, the same
// formulas as native/cpu/gelu.cpp), f32 arithmetic on any storage type. Elementwise, grid-stride.
#include "../common/gelu.h"
#include "common.cuh"

namespace mk_cuda {
namespace {

using namespace mk::gelu;

// 2^v with v clamped to [−126, 127] as the CPU's vexp2: 2^v stays finite, so that e·σ below is
// never ∞·0 (NaN) for large negative x.
__device__ __forceinline__ float tanh_exp(float x) {
  return exp2f(fminf(127.f, fmaxf(-126.f, x * (kTanhA + kTanhB * x * x))));
}

__device__ __forceinline__ float gelu(float x, bool tanh_form) {
  if (tanh_form) return x / (1.f + tanh_exp(x));
  // Φ(x) = ½ erfc(−x/√2): no cancellation in the left tail (1 + erf would lose it), and 0 (not
  // NaN) once erfc underflows, so that y → −0 for large negative x.
  return 0.5f * x * erfcf(-x * kInvSqrt2);
}

__device__ __forceinline__ float gelu_grad(float x, bool tanh_form) {
  if (tanh_form) {
    // y' = σ·(1 + x·2u'·(1 − σ)),  1 − σ = e·σ,  2u' = 2√(2/π)(1 + 3·0.044715x²)
    const float e = tanh_exp(x), s = 1.f / (1.f + e);
    const float du2 = 2.f * kSqrt2OverPi * (1.f + 3.f * kC * x * x);
    return s * (1.f + x * du2 * (e * s));
  }
  // Φ(x) + x·φ(x)
  return 0.5f * erfcf(-x * kInvSqrt2) + x * kInvSqrt2Pi * expf(-0.5f * x * x);
}

unsigned blocks(int64_t n) { return unsigned(std::min<int64_t>((n + 255) / 256, 65535)); }

// y, x [n]
template <class T>
__global__ void forward_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t n, bool tanh_form) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = from_f32<T>(gelu(to_f32(x[i]), tanh_form));
}

// dx, dy, x [n]
template <class T>
__global__ void backward_kernel(T* __restrict__ dx, const T* __restrict__ dy, const T* __restrict__ x, int64_t n,
                                bool tanh_form) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = from_f32<T>(to_f32(dy[i]) * gelu_grad(to_f32(x[i]), tanh_form));
}

template <class T>
cudaError_t forward(cudaStream_t s, void* y, const void* x, int64_t n, bool tanh_form) {
  return launch<forward_kernel<T>>(blocks(n), 256, 0, s, static_cast<T*>(y), static_cast<const T*>(x), n, tanh_form);
}

template <class T>
cudaError_t backward(cudaStream_t s, void* dx, const void* dy, const void* x, int64_t n, bool tanh_form) {
  return launch<backward_kernel<T>>(blocks(n), 256, 0, s, static_cast<T*>(dx), static_cast<const T*>(dy),
                                    static_cast<const T*>(x), n, tanh_form);
}

mk_status cu_gelu_forward(mk_context* ctx, void* y, const void* x, mk_dtype dtype, int64_t n, int tanh_approx) {
  if (n <= 0) return MK_OK;
  const cudaError_t e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return forward<St>(ctx->stream, y, x, n, tanh_approx != 0);
  });
  return check(e, "gelu");
}

mk_status cu_gelu_backward(mk_context* ctx, void* dx, const void* dy, const void* x, mk_dtype dtype, int64_t n,
                           int tanh_approx) {
  if (n <= 0) return MK_OK;
  const cudaError_t e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return backward<St>(ctx->stream, dx, dy, x, n, tanh_approx != 0);
  });
  return check(e, "geluBackward");
}

}  // namespace

MK_CUDA_ENTRY(gelu_forward, cu_gelu_forward);
MK_CUDA_ENTRY(gelu_backward, cu_gelu_backward);

}  // namespace mk_cuda
