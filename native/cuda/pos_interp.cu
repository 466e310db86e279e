// pos_interp.cu: bicubic resampling of position embeddings, forward and backward (contract in
// mamakit.h, same arithmetic as native/cpu/pos_interp.cpp). The backward gathers instead of
// scattering, so that each gradient is summed by one thread in a fixed order (no atomics: the
// same bits every run): the taps are separable, so columns first into an f32 workspace
// [H1, W0, D], then rows. Tested by native/tests/backend_ops/pos_interp.cpp.
#include "../common/cubic.h"
#include "common.cuh"

namespace mk_cuda {
namespace {

using Taps = mk::CubicTaps;

__device__ __forceinline__ Taps taps(int64_t i, float scale, int64_t n) { return mk::cubic_taps(i, scale, n); }

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

// The outputs [lo, hi) of an axis of n1 whose taps reach source index s of an axis of n0. For a
// scale > 0, an output's first tap clamp(floor(real) − 1) and last tap clamp(floor(real) + 2)
// never decrease along the axis, so they are the outputs with first ≤ s ≤ last: found by
// bisection over the same taps() as the forward. Any other scale: all outputs (each tested).
__device__ void reach(int64_t s, float scale, int64_t n0, int64_t n1, int64_t& lo, int64_t& hi) {
  lo = 0, hi = n1;
  if (!(scale > 0.f)) return;
  for (int64_t b = n1; lo < b;) {  // the first output whose last tap is ≥ s
    const int64_t m = lo + (b - lo) / 2;
    if (taps(m, scale, n0).at[3] >= s) b = m;
    else lo = m + 1;
  }
  for (int64_t a = lo; a < hi;) {  // the first output whose first tap is > s
    const int64_t m = a + (hi - a) / 2;
    if (taps(m, scale, n0).at[0] > s) hi = m;
    else a = m + 1;
  }
}

// The weight with which output i's taps (of the axis) reach source s: its taps at s added in
// order (several when clamped at an edge), 0 when none does.
__device__ __forceinline__ float weight_at(const Taps& t, int64_t s) {
  float w = 0.f;
  for (int k = 0; k < 4; ++k)
    if (t.at[k] == s) w += t.w[k];
  return w;
}

// Columns: cs [H1, W0, D], cs[oy, sx] = Σ_ox wx(ox → sx)·dy[oy, ox], ox ascending.
template <class T>
__global__ void backward_cols_kernel(float* __restrict__ cs, const T* __restrict__ dy, Grid g) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= g.h1 * g.w0 * g.D) return;
  const int64_t d = i % g.D, sx = i / g.D % g.w0, oy = i / (g.D * g.w0);
  int64_t lo, hi;
  reach(sx, g.sw, g.w0, g.w1, lo, hi);
  float s = 0.f;
  for (int64_t ox = lo; ox < hi; ++ox) s += weight_at(taps(ox, g.sw, g.w0), sx) * to_f32(dy[(oy * g.w1 + ox) * g.D + d]);
  cs[i] = s;
}

// Rows: dx [H0, W0, D], dx[sy, sx] = Σ_oy wy(oy → sy)·cs[oy, sx], oy ascending.
template <class T>
__global__ void backward_rows_kernel(T* __restrict__ dx, const float* __restrict__ cs, Grid g) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= g.h0 * g.w0 * g.D) return;
  const int64_t d = i % g.D, sx = i / g.D % g.w0, sy = i / (g.D * g.w0);
  int64_t lo, hi;
  reach(sy, g.sh, g.h0, g.h1, lo, hi);
  float s = 0.f;
  for (int64_t oy = lo; oy < hi; ++oy) s += weight_at(taps(oy, g.sh, g.h0), sy) * cs[(oy * g.w0 + sx) * g.D + d];
  dx[i] = from_f32<T>(s);
}

unsigned blocks(int64_t n) { return unsigned((n + 255) / 256); }

template <class T>
cudaError_t forward(cudaStream_t s, void* y, const void* x, const Grid& g) {
  return launch<forward_kernel<T>>(blocks(g.h1 * g.w1 * g.D), 256, 0, s, static_cast<T*>(y), static_cast<const T*>(x), g);
}

template <class T>
cudaError_t backward(cudaStream_t s, void* dx, const void* dy, const Grid& g) {
  const int64_t nc = g.h1 * g.w0 * g.D, n = g.h0 * g.w0 * g.D;
  float* cs = nullptr;
  cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&cs), size_t(std::max<int64_t>(nc, 1)) * sizeof(float), s);
  if (e != cudaSuccess) return e;
  e = launch<backward_cols_kernel<T>>(blocks(nc), 256, 0, s, cs, static_cast<const T*>(dy), g);
  if (e == cudaSuccess) e = launch<backward_rows_kernel<T>>(blocks(n), 256, 0, s, static_cast<T*>(dx), cs, g);
  const cudaError_t f = cudaFreeAsync(cs, s);
  return e != cudaSuccess ? e : f;
}

}  // namespace

cudaError_t launch_pos_interp(cudaStream_t s, mk_dtype dtype, bool backward_pass, void* out, const void* in,
                              int64_t h0, int64_t w0, int64_t h1, int64_t w1, int64_t D, float sh, float sw) {
  const Grid g{h0, w0, h1, w1, D, sh, sw};
  return by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return backward_pass ? backward<St>(s, out, in, g) : forward<St>(s, out, in, g);
  });
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
