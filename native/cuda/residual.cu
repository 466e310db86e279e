// residual.cu: out = x + s ⊙ h, s = LayerScale gamma [D] or the scalar alpha, and its backward
// dh = s ⊙ dy, dgamma += Σ_rows h ⊙ dy (contract in mamakit.h, as native/cpu/residual.cpp); dgamma
// from per-block f32 column partials that a second kernel adds up (nothing races; rounded once).
#include "reduce.cuh"

namespace mk_cuda {
namespace {

// Blocks of the backward when dgamma is wanted: each holds a partial [D] in the workspace.
constexpr int64_t kPartialBlocks = 512;

unsigned blocks(int64_t n) { return unsigned(std::min<int64_t>((n + 255) / 256, 65535)); }

// out, x, h [R·D]; gamma [D] or null (alpha then).
template <class T>
__global__ void forward_kernel(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ h,
                               const T* __restrict__ gamma, float alpha, int64_t n, int64_t D) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float s = gamma ? to_f32(gamma[i % D]) : alpha;
    out[i] = from_f32<T>(to_f32(x[i]) + s * to_f32(h[i]));
  }
}

// dh = s ⊙ dy without dgamma. dh, dy [R·D]; gamma [D] or null (alpha then).
template <class T>
__global__ void scale_kernel(T* __restrict__ dh, const T* __restrict__ dy, const T* __restrict__ gamma, float alpha,
                             int64_t n, int64_t D) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dh[i] = from_f32<T>(to_f32(dy[i]) * (gamma ? to_f32(gamma[i % D]) : alpha));
}

// dh = s ⊙ dy and the partials part [gridDim.x, D] (f32) of Σ h ⊙ dy: block b takes rows
// b, b + gridDim.x, ...; each thread walks a column down those rows (adjacent threads, adjacent
// columns: coalesced), summing in a register. dh, dy, h [R,D]; gamma [D] or null (alpha then).
template <class T>
__global__ void backward_kernel(T* __restrict__ dh, float* __restrict__ part, const T* __restrict__ dy,
                                const T* __restrict__ h, const T* __restrict__ gamma, float alpha, int64_t R, int64_t D) {
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    const float s = gamma ? to_f32(gamma[d]) : alpha;
    float acc = 0.f;
    for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
      const float g = to_f32(dy[r * D + d]);
      dh[r * D + d] = from_f32<T>(g * s);
      acc += to_f32(h[r * D + d]) * g;
    }
    part[int64_t(blockIdx.x) * D + d] = acc;
  }
}

template <class T>
cudaError_t forward(cudaStream_t s, void* out, const void* x, const void* h, const void* gamma, float alpha, int64_t R,
                    int64_t D) {
  return launch<forward_kernel<T>>(blocks(R * D), 256, 0, s, static_cast<T*>(out), static_cast<const T*>(x),
                                   static_cast<const T*>(h), static_cast<const T*>(gamma), alpha, R * D, D);
}

template <class T>
cudaError_t backward(cudaStream_t s, void* dh, void* dgamma, const void* dy, const void* h, const void* gamma,
                     float alpha, int64_t R, int64_t D) {
  if (!dgamma)
    return launch<scale_kernel<T>>(blocks(R * D), 256, 0, s, static_cast<T*>(dh), static_cast<const T*>(dy),
                                   static_cast<const T*>(gamma), alpha, R * D, D);
  const int64_t P = std::min(R, kPartialBlocks);
  float* part = nullptr;
  cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&part), size_t(P * D) * sizeof(float), s);
  if (e != cudaSuccess) return e;
  const unsigned threads = unsigned(std::min<int64_t>((D + 31) / 32 * 32, 256));
  e = launch<backward_kernel<T>>(unsigned(P), threads, 0, s, static_cast<T*>(dh), part, static_cast<const T*>(dy),
                                 static_cast<const T*>(h), static_cast<const T*>(gamma), alpha, R, D);
  if (e == cudaSuccess) e = launch<add_partials_kernel<T>>(blocks(D), 256, 0, s, static_cast<T*>(dgamma), part, P, D);
  const cudaError_t f = cudaFreeAsync(part, s);
  return e != cudaSuccess ? e : f;
}

mk_status cu_residual_forward(mk_context* ctx, void* out, const void* x, const void* h, const void* gamma, float alpha,
                              mk_dtype dtype, int64_t R, int64_t D) {
  if (R <= 0 || D <= 0) return MK_OK;
  const cudaError_t e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return forward<St>(ctx->stream, out, x, h, gamma, alpha, R, D);
  });
  return check(e, "residual");
}

mk_status cu_residual_backward(mk_context* ctx, void* dh, void* dgamma, const void* dy, const void* h, const void* gamma,
                               float alpha, mk_dtype dtype, int64_t R, int64_t D) {
  if (R <= 0 || D <= 0) return MK_OK;
  const cudaError_t e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return backward<St>(ctx->stream, dh, dgamma, dy, h, gamma, alpha, R, D);
  });
  return check(e, "residualBackward");
}

}  // namespace

MK_CUDA_ENTRY(residual_forward, cu_residual_forward);
MK_CUDA_ENTRY(residual_backward, cu_residual_backward);

}  // namespace mk_cuda
