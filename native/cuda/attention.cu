// attention.cu: flash attention forward and backward for f32, bf16 and f16 with f32 math
// (contract in mamakit.h; same masks and lse as native/cpu/attention.cpp). Tiled with an
// online softmax; the Lq×Lk matrix is never stored. This is the correct-first version: one
// thread per query row (forward) or key row (backward), K/V or Q/dO tiles in shared memory,
// no tensor cores yet. dQ is accumulated with atomics in an f32 workspace.
#include "common.cuh"

namespace mk_cuda {
namespace {

constexpr int kRows = 64;   // query rows (forward) or key rows (backward) per block
constexpr int kTile = 32;   // keys (forward) or queries (backward) staged per step
constexpr int kMaxDh = 128;

struct Geo {
  int64_t B, Lq, Lk, H, Dh;
  float scale;
  bool causal;
};

// Keys j < limit(i) are visible to query i.
__device__ __forceinline__ int64_t key_limit(const Geo& g, const int* kv_lens, int64_t b, int64_t i) {
  int64_t lim = kv_lens ? kv_lens[b] : g.Lk;
  if (g.causal && i + 1 < lim) lim = i + 1;
  return lim;
}

template <class T>
__global__ void forward_kernel(T* __restrict__ out, float* __restrict__ lse, const T* __restrict__ q,
                               const T* __restrict__ k, const T* __restrict__ v, const int* __restrict__ kv_lens, Geo g) {
  __shared__ float ks[kTile][kMaxDh], vs[kTile][kMaxDh];
  const int64_t bh = blockIdx.y, b = bh / g.H, h = bh % g.H, ld = g.H * g.Dh;
  const int64_t i = int64_t(blockIdx.x) * kRows + threadIdx.x;
  const bool live = i < g.Lq;
  float qr[kMaxDh], o[kMaxDh];
  for (int d = 0; d < g.Dh; ++d) {
    qr[d] = live ? to_f32(q[(b * g.Lq + i) * ld + h * g.Dh + d]) * g.scale : 0.f;
    o[d] = 0.f;
  }
  const int64_t lim = live ? key_limit(g, kv_lens, b, i) : 0;
  // The block stops at the furthest key any of its rows sees.
  const int64_t last_row = min(g.Lq - 1, int64_t(blockIdx.x) * kRows + kRows - 1);
  const int64_t block_lim = key_limit(g, kv_lens, b, last_row);
  float m = -INFINITY, l = 0.f;
  for (int64_t j0 = 0; j0 < block_lim; j0 += kTile) {
    for (int x = threadIdx.x; x < kTile * g.Dh; x += blockDim.x) {
      const int jj = x / g.Dh, d = x % g.Dh;
      const int64_t j = j0 + jj;
      ks[jj][d] = j < g.Lk ? to_f32(k[(b * g.Lk + j) * ld + h * g.Dh + d]) : 0.f;
      vs[jj][d] = j < g.Lk ? to_f32(v[(b * g.Lk + j) * ld + h * g.Dh + d]) : 0.f;
    }
    __syncthreads();
    for (int jj = 0; jj < kTile && j0 + jj < lim; ++jj) {
      float s = 0.f;
      for (int d = 0; d < g.Dh; ++d) s += qr[d] * ks[jj][d];
      const float mnew = fmaxf(m, s);
      const float alpha = __expf(m - mnew), p = __expf(s - mnew);
      l = l * alpha + p;
      for (int d = 0; d < g.Dh; ++d) o[d] = o[d] * alpha + p * vs[jj][d];
      m = mnew;
    }
    __syncthreads();
  }
  if (!live) return;
  const float inv = l > 0.f ? 1.f / l : 0.f;
  for (int d = 0; d < g.Dh; ++d) out[(b * g.Lq + i) * ld + h * g.Dh + d] = from_f32<T>(o[d] * inv);
  lse[bh * g.Lq + i] = l > 0.f ? m + logf(l) : -INFINITY;
}

// dd [B,H,Lq] = Σ_d dO·O
template <class T>
__global__ void rowdot_kernel(float* __restrict__ dd, const T* __restrict__ dout, const T* __restrict__ out, Geo g) {
  const int64_t x = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (x >= g.B * g.H * g.Lq) return;
  const int64_t b = x / (g.H * g.Lq), h = x / g.Lq % g.H, i = x % g.Lq, base = (b * g.Lq + i) * g.H * g.Dh + h * g.Dh;
  float s = 0.f;
  for (int d = 0; d < g.Dh; ++d) s += to_f32(dout[base + d]) * to_f32(out[base + d]);
  dd[x] = s;
}

// One thread per key: dK, dV of that key over all queries; dQ by atomics into dq_ws (f32).
template <class T>
__global__ void backward_kernel(T* __restrict__ dk, T* __restrict__ dv, float* __restrict__ dq_ws,
                                const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                                const float* __restrict__ lse, const float* __restrict__ dd, const T* __restrict__ dout,
                                const int* __restrict__ kv_lens, Geo g) {
  __shared__ float qs[kTile][kMaxDh], gs[kTile][kMaxDh], ls[kTile], ds_[kTile];
  const int64_t bh = blockIdx.y, b = bh / g.H, h = bh % g.H, ld = g.H * g.Dh;
  const int64_t j = int64_t(blockIdx.x) * kRows + threadIdx.x;
  const bool live = j < g.Lk;
  float kr[kMaxDh], vr[kMaxDh], gk[kMaxDh], gv[kMaxDh];
  for (int d = 0; d < g.Dh; ++d) {
    kr[d] = live ? to_f32(k[(b * g.Lk + j) * ld + h * g.Dh + d]) : 0.f;
    vr[d] = live ? to_f32(v[(b * g.Lk + j) * ld + h * g.Dh + d]) : 0.f;
    gk[d] = gv[d] = 0.f;
  }
  const int64_t first_key = int64_t(blockIdx.x) * kRows;
  for (int64_t i0 = g.causal ? first_key / kTile * kTile : 0; i0 < g.Lq; i0 += kTile) {
    for (int x = threadIdx.x; x < kTile * g.Dh; x += blockDim.x) {
      const int ii = x / g.Dh, d = x % g.Dh;
      const int64_t i = i0 + ii;
      qs[ii][d] = i < g.Lq ? to_f32(q[(b * g.Lq + i) * ld + h * g.Dh + d]) : 0.f;
      gs[ii][d] = i < g.Lq ? to_f32(dout[(b * g.Lq + i) * ld + h * g.Dh + d]) : 0.f;
    }
    for (int ii = threadIdx.x; ii < kTile; ii += blockDim.x) {
      const int64_t i = i0 + ii;
      ls[ii] = i < g.Lq ? lse[bh * g.Lq + i] : 0.f;
      ds_[ii] = i < g.Lq ? dd[bh * g.Lq + i] : 0.f;
    }
    __syncthreads();
    for (int ii = 0; ii < kTile && i0 + ii < g.Lq; ++ii) {
      const int64_t i = i0 + ii;
      if (!live || j >= key_limit(g, kv_lens, b, i)) continue;
      float s = 0.f, dp = 0.f;
      for (int d = 0; d < g.Dh; ++d) s += qs[ii][d] * kr[d], dp += gs[ii][d] * vr[d];
      const float p = __expf(s * g.scale - ls[ii]);
      const float ds = g.scale * p * (dp - ds_[ii]);
      for (int d = 0; d < g.Dh; ++d) {
        gv[d] += p * gs[ii][d];
        gk[d] += ds * qs[ii][d];
        atomicAdd(&dq_ws[(b * g.Lq + i) * ld + h * g.Dh + d], ds * kr[d]);
      }
    }
    __syncthreads();
  }
  if (!live) return;
  for (int d = 0; d < g.Dh; ++d) {
    dk[(b * g.Lk + j) * ld + h * g.Dh + d] = from_f32<T>(gk[d]);
    dv[(b * g.Lk + j) * ld + h * g.Dh + d] = from_f32<T>(gv[d]);
  }
}

template <class T>
__global__ void convert_kernel(T* __restrict__ dst, const float* __restrict__ src, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = from_f32<T>(src[i]);
}

unsigned blocks(int64_t n, int t) { return unsigned((n + t - 1) / t); }

// kv_lens live on the host; the kernels read a device copy.
cudaError_t stage(cudaStream_t s, const int32_t* host, int64_t B, int** dev) {
  *dev = nullptr;
  if (!host) return cudaSuccess;
  cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(dev), size_t(B) * sizeof(int), s);
  if (e == cudaSuccess) e = cudaMemcpyAsync(*dev, host, size_t(B) * sizeof(int), cudaMemcpyHostToDevice, s);
  return e;
}

template <class T>
cudaError_t forward(cudaStream_t s, void* out, float* lse, const void* q, const void* k, const void* v,
                    const int32_t* kv_lens, const Geo& g) {
  int* lens = nullptr;
  cudaError_t e = stage(s, kv_lens, g.B, &lens);
  if (e == cudaSuccess) {
    const dim3 grid(blocks(g.Lq, kRows), unsigned(g.B * g.H));
    forward_kernel<T><<<grid, kRows, 0, s>>>(static_cast<T*>(out), lse, static_cast<const T*>(q),
                                             static_cast<const T*>(k), static_cast<const T*>(v), lens, g);
    e = cudaGetLastError();
  }
  if (lens) cudaFreeAsync(lens, s);
  return e;
}

template <class T>
cudaError_t backward(cudaStream_t s, void* dq, void* dk, void* dv, const void* q, const void* k, const void* v,
                     const void* out, const float* lse, const void* dout, const int32_t* kv_lens, const Geo& g) {
  const int64_t nq = g.B * g.Lq * g.H * g.Dh, rows = g.B * g.H * g.Lq;
  int* lens = nullptr;
  float* ws = nullptr;
  cudaError_t e = stage(s, kv_lens, g.B, &lens);
  if (e == cudaSuccess) e = cudaMallocAsync(reinterpret_cast<void**>(&ws), size_t(nq + rows) * sizeof(float), s);
  if (e == cudaSuccess) e = cudaMemsetAsync(ws, 0, size_t(nq) * sizeof(float), s);
  if (e == cudaSuccess) {
    float* dd = ws + nq;
    rowdot_kernel<T><<<blocks(rows, 256), 256, 0, s>>>(dd, static_cast<const T*>(dout), static_cast<const T*>(out), g);
    const dim3 grid(blocks(g.Lk, kRows), unsigned(g.B * g.H));
    backward_kernel<T><<<grid, kRows, 0, s>>>(static_cast<T*>(dk), static_cast<T*>(dv), ws, static_cast<const T*>(q),
                                              static_cast<const T*>(k), static_cast<const T*>(v), lse, dd,
                                              static_cast<const T*>(dout), lens, g);
    convert_kernel<T><<<blocks(nq, 256), 256, 0, s>>>(static_cast<T*>(dq), ws, nq);
    e = cudaGetLastError();
  }
  if (ws) cudaFreeAsync(ws, s);
  if (lens) cudaFreeAsync(lens, s);
  return e;
}

}  // namespace

cudaError_t launch_attention_forward(cudaStream_t s, mk_dtype dtype, void* out, float* lse, const void* q, const void* k,
                                     const void* v, const int32_t* kv_lens, int64_t B, int64_t Lq, int64_t Lk, int64_t H,
                                     int64_t Dh, float scale, bool causal) {
  if (Dh > kMaxDh || B * H > 65535) return cudaErrorNotSupported;
  const Geo g{B, Lq, Lk, H, Dh, scale, causal};
  switch (dtype) {
    case MK_BF16: return forward<__nv_bfloat16>(s, out, lse, q, k, v, kv_lens, g);
    case MK_F16: return forward<__half>(s, out, lse, q, k, v, kv_lens, g);
    default: return forward<float>(s, out, lse, q, k, v, kv_lens, g);
  }
}

cudaError_t launch_attention_backward(cudaStream_t s, mk_dtype dtype, void* dq, void* dk, void* dv, const void* q,
                                      const void* k, const void* v, const void* out, const float* lse, const void* dout,
                                      const int32_t* kv_lens, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t Dh,
                                      float scale, bool causal) {
  if (Dh > kMaxDh || B * H > 65535) return cudaErrorNotSupported;
  const Geo g{B, Lq, Lk, H, Dh, scale, causal};
  switch (dtype) {
    case MK_BF16: return backward<__nv_bfloat16>(s, dq, dk, dv, q, k, v, out, lse, dout, kv_lens, g);
    case MK_F16: return backward<__half>(s, dq, dk, dv, q, k, v, out, lse, dout, kv_lens, g);
    default: return backward<float>(s, dq, dk, dv, q, k, v, out, lse, dout, kv_lens, g);
  }
}

}  // namespace mk_cuda
