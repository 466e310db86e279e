// layernorm.cu: LayerNorm over the last dimension, forward and backward (contract in mamakit.h, the
// formulas of native/cpu/layernorm.cpp): a block per row with warp-shuffle sums; dw and db from
// per-block f32 partials that a second kernel adds up (nothing races; 16-bit gradients rounded once).
#include "reduce.cuh"

namespace mk_cuda {
namespace {

// Blocks of the backward when dw or db is wanted: each holds a partial [D] of each in the
// workspace, and the finishing kernel reads them all.
constexpr int64_t kPartialBlocks = 512;

// Threads per row: D rounded up to whole warps, at most 256 (wider rows loop).
unsigned row_threads(int64_t D) { return unsigned(std::min<int64_t>((D + 31) / 32 * 32, 256)); }

// y, x [R,D]; mean, rstd [R] (f32); w, b [D] or null. Block b takes rows b, b + gridDim.x, ...
// Two passes over the row for the variance (Σ(x − mean)², as the CPU), a third writes y.
template <class T>
__global__ void forward_kernel(T* __restrict__ y, float* __restrict__ mean, float* __restrict__ rstd,
                               const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, int64_t R,
                               int64_t D, float eps) {
  __shared__ float sh[1][32];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T* xr = x + r * D;
    float s[1] = {0.f};
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) s[0] += to_f32(xr[d]);
    block_sum(s, sh);
    const float mu = s[0] / float(D);
    float q[1] = {0.f};
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      const float t = to_f32(xr[d]) - mu;
      q[0] += t * t;
    }
    block_sum(q, sh);
    const float rs = 1.f / sqrtf(q[0] / float(D) + eps);
    if (threadIdx.x == 0) mean[r] = mu, rstd[r] = rs;
    T* yr = y + r * D;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      float t = (to_f32(xr[d]) - mu) * rs;
      if (w) t *= to_f32(w[d]);
      if (b) t += to_f32(b[d]);
      yr[d] = from_f32<T>(t);
    }
  }
}

// dx, dy, x [R,D]; mean, rstd [R]; w [D] or null; pw, pb [gridDim.x, D] f32 partials of dw and db
// (null: not wanted), row gridDim.x·k + b of block b. dx = rstd·(g − mean(g) − x̂·mean(g·x̂)),
// g = dy·w. Each thread owns columns threadIdx.x + k·blockDim.x of its block's partial rows:
// written at the block's first row, added to at the later ones.
template <class T>
__global__ void backward_kernel(T* __restrict__ dx, float* __restrict__ pw, float* __restrict__ pb,
                                const T* __restrict__ dy, const T* __restrict__ x, const float* __restrict__ mean,
                                const float* __restrict__ rstd, const T* __restrict__ w, int64_t R, int64_t D) {
  __shared__ float sh[2][32];
  float* const bw = pw ? pw + int64_t(blockIdx.x) * D : nullptr;
  float* const bb = pb ? pb + int64_t(blockIdx.x) * D : nullptr;
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const bool first = r == int64_t(blockIdx.x);
    const T *xr = x + r * D, *gr = dy + r * D;
    const float mu = mean[r], rs = rstd[r];
    float s[2] = {0.f, 0.f};  // Σ g, Σ g·x̂
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      const float xh = (to_f32(xr[d]) - mu) * rs, dyv = to_f32(gr[d]);
      const float g = w ? dyv * to_f32(w[d]) : dyv;
      s[0] += g;
      s[1] += g * xh;
      if (bw) bw[d] = (first ? 0.f : bw[d]) + dyv * xh;
      if (bb) bb[d] = (first ? 0.f : bb[d]) + dyv;
    }
    block_sum(s, sh);
    const float mg = s[0] / float(D), mgx = s[1] / float(D);
    T* dxr = dx + r * D;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      const float xh = (to_f32(xr[d]) - mu) * rs, dyv = to_f32(gr[d]);
      const float g = w ? dyv * to_f32(w[d]) : dyv;
      dxr[d] = from_f32<T>(rs * (g - mg - xh * mgx));
    }
  }
}

unsigned blocks(int64_t n) { return unsigned(std::min<int64_t>((n + 255) / 256, 65535)); }

template <class T>
cudaError_t forward(cudaStream_t s, void* y, float* mean, float* rstd, const void* x, const void* w, const void* b,
                    int64_t R, int64_t D, float eps) {
  const unsigned grid = unsigned(std::min<int64_t>(R, 65535));
  return launch<forward_kernel<T>>(grid, row_threads(D), 0, s, static_cast<T*>(y), mean, rstd, static_cast<const T*>(x),
                                   static_cast<const T*>(w), static_cast<const T*>(b), R, D, eps);
}

template <class T>
cudaError_t backward(cudaStream_t s, void* dx, void* dw, void* db, const void* dy, const void* x, const float* mean,
                     const float* rstd, const void* w, int64_t R, int64_t D) {
  if (!dw && !db)
    return launch<backward_kernel<T>>(unsigned(std::min<int64_t>(R, 65535)), row_threads(D), 0, s, static_cast<T*>(dx),
                                      nullptr, nullptr, static_cast<const T*>(dy), static_cast<const T*>(x), mean, rstd,
                                      static_cast<const T*>(w), R, D);
  const int64_t P = std::min(R, kPartialBlocks);
  float* ws = nullptr;
  cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&ws), size_t((dw ? P * D : 0) + (db ? P * D : 0)) * sizeof(float), s);
  if (e != cudaSuccess) return e;
  float* pw = dw ? ws : nullptr;
  float* pb = db ? ws + (dw ? P * D : 0) : nullptr;
  e = launch<backward_kernel<T>>(unsigned(P), row_threads(D), 0, s, static_cast<T*>(dx), pw, pb, static_cast<const T*>(dy),
                                 static_cast<const T*>(x), mean, rstd, static_cast<const T*>(w), R, D);
  if (e == cudaSuccess && dw) e = launch<add_partials_kernel<T>>(blocks(D), 256, 0, s, static_cast<T*>(dw), pw, P, D);
  if (e == cudaSuccess && db) e = launch<add_partials_kernel<T>>(blocks(D), 256, 0, s, static_cast<T*>(db), pb, P, D);
  const cudaError_t f = cudaFreeAsync(ws, s);
  return e != cudaSuccess ? e : f;
}

mk_status cu_layernorm_forward(mk_context* ctx, void* y, float* mean, float* rstd, const void* x, const void* w,
                               const void* b, mk_dtype dtype, int64_t R, int64_t D, float eps) {
  if (R <= 0 || D <= 0) return MK_OK;
  const cudaError_t e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return forward<St>(ctx->stream, y, mean, rstd, x, w, b, R, D, eps);
  });
  return check(e, "layerNorm");
}

mk_status cu_layernorm_backward(mk_context* ctx, void* dx, void* dw, void* db, const void* dy, const void* x,
                                const float* mean, const float* rstd, const void* w, mk_dtype dtype, int64_t R,
                                int64_t D) {
  if (R <= 0 || D <= 0) return MK_OK;
  const cudaError_t e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return backward<St>(ctx->stream, dx, dw, db, dy, x, mean, rstd, w, R, D);
  });
  return check(e, "layerNormBackward");
}

}  // namespace

MK_CUDA_ENTRY(layernorm_forward, cu_layernorm_forward);
MK_CUDA_ENTRY(layernorm_backward, cu_layernorm_backward);

}  // namespace mk_cuda
