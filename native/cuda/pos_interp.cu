// pos_interp.cu: bicubic resampling of position embeddings, forward and backward (contract in
// mamakit.h, same arithmetic as native/cpu/pos_interp.cpp). The backward scatters into an f32
// workspace with atomics, then converts.
#include "common.cuh"

namespace mk_cuda {
namespace {

struct Taps {
  int64_t at[4];
  float w[4];
};

__device__ Taps taps(int64_t i, float scale, int64_t n) {
  const float real = scale * (float(i) + 0.5f) - 0.5f;
  const float fl = floorf(real), t = real - fl, A = -0.75f;
  auto cc1 = [A](float x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };
  auto cc2 = [A](float x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };
  Taps r;
  r.w[0] = cc2(t + 1), r.w[1] = cc1(t), r.w[2] = cc1(1 - t), r.w[3] = cc2(2 - t);
  for (int k = 0; k < 4; ++k) {
    const int64_t s = int64_t(fl) - 1 + k;
    r.at[k] = s < 0 ? 0 : s >= n ? n - 1 : s;
  }
  return r;
}

struct Grid {
  int64_t h0, w0, h1, w1, D;
  float sh, sw;
};

template <class T>
__global__ void forward_kernel(T* __restrict__ y, const T* __restrict__ x, Grid g) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= g.h1 * g.w1 * g.D) return;
  const int64_t o = i / g.D, d = i % g.D;
  const Taps ty = taps(o / g.w1, g.sh, g.h0), tx = taps(o % g.w1, g.sw, g.w0);
  float s = 0.f;
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 4; ++b) s += ty.w[a] * tx.w[b] * to_f32(x[(ty.at[a] * g.w0 + tx.at[b]) * g.D + d]);
  y[i] = from_f32<T>(s);
}

template <class T>
__global__ void backward_kernel(float* __restrict__ ws, const T* __restrict__ dy, Grid g) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= g.h1 * g.w1 * g.D) return;
  const int64_t o = i / g.D, d = i % g.D;
  const Taps ty = taps(o / g.w1, g.sh, g.h0), tx = taps(o % g.w1, g.sw, g.w0);
  const float v = to_f32(dy[i]);
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 4; ++b) atomicAdd(&ws[(ty.at[a] * g.w0 + tx.at[b]) * g.D + d], ty.w[a] * tx.w[b] * v);
}

template <class T>
__global__ void convert_kernel(T* __restrict__ dst, const float* __restrict__ src, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = from_f32<T>(src[i]);
}

unsigned blocks(int64_t n) { return unsigned((n + 255) / 256); }

template <class T>
cudaError_t forward(cudaStream_t s, void* y, const void* x, const Grid& g) {
  return launch<forward_kernel<T>>(blocks(g.h1 * g.w1 * g.D), 256, 0, s, static_cast<T*>(y), static_cast<const T*>(x), g);
}

template <class T>
cudaError_t backward(cudaStream_t s, void* dx, const void* dy, const Grid& g) {
  const int64_t n = g.h0 * g.w0 * g.D;
  float* ws = nullptr;
  cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&ws), size_t(n) * sizeof(float), s);
  if (e != cudaSuccess) return e;
  e = cudaMemsetAsync(ws, 0, size_t(n) * sizeof(float), s);
  if (e == cudaSuccess) {
    e = launch<backward_kernel<T>>(blocks(g.h1 * g.w1 * g.D), 256, 0, s, ws, static_cast<const T*>(dy), g);
    if (e == cudaSuccess) e = launch<convert_kernel<T>>(blocks(n), 256, 0, s, static_cast<T*>(dx), ws, n);
  }
  const cudaError_t f = cudaFreeAsync(ws, s);
  return e != cudaSuccess ? e : f;
}

}  // namespace

cudaError_t launch_pos_interp(cudaStream_t s, mk_dtype dtype, bool backward_pass, void* out, const void* in,
                              int64_t h0, int64_t w0, int64_t h1, int64_t w1, int64_t D, float sh, float sw) {
  const Grid g{h0, w0, h1, w1, D, sh, sw};
  switch (dtype) {
    case MK_BF16: return backward_pass ? backward<__nv_bfloat16>(s, out, in, g) : forward<__nv_bfloat16>(s, out, in, g);
    case MK_F16: return backward_pass ? backward<__half>(s, out, in, g) : forward<__half>(s, out, in, g);
    default: return backward_pass ? backward<float>(s, out, in, g) : forward<float>(s, out, in, g);
  }
}

namespace {

mk_status cu_pos_interp_forward(mk_context* ctx, void* y, const void* x, mk_dtype dtype, int64_t H0, int64_t W0,
                                int64_t H1, int64_t W1, int64_t D, float sh, float sw) {
  return check(launch_pos_interp(ctx->stream, dtype, false, y, x, H0, W0, H1, W1, D, sh, sw), "interpolatePos");
}

mk_status cu_pos_interp_backward(mk_context* ctx, void* dx, const void* dy, mk_dtype dtype, int64_t H0, int64_t W0,
                                 int64_t H1, int64_t W1, int64_t D, float sh, float sw) {
  return check(launch_pos_interp(ctx->stream, dtype, true, dx, dy, H0, W0, H1, W1, D, sh, sw),
               "interpolatePosBackward");
}

}  // namespace

MK_CUDA_ENTRY(pos_interp_forward, cu_pos_interp_forward);
MK_CUDA_ENTRY(pos_interp_backward, cu_pos_interp_backward);

}  // namespace mk_cuda
