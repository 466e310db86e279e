// attention.cu: flash attention forward and backward for f32, bf16 and f16 with f32 math
// (contract in mamakit.h; same masks and lse as native/cpu/attention.cpp). Tiled with an
// online softmax; the Lq×Lk matrix is never stored. bf16/f16 with a head dim of 32, 64, 80 or
// 128 run on tensor cores (forward_tc_kernel, backward_tc_kernel, backward_dq_tc_kernel; sm_80+).
// The rest is the correct-first version: one thread per query row (forward, dQ) or key row (dK,
// dV), K/V or Q/dO tiles in shared memory. The backward adds no floats with atomics: dK and dV
// come from a pass over the keys, dQ from a pass of its own over the queries that recomputes P
// from the saved lse, so every gradient is summed in a fixed order (the same bits every run).
//
// Dropout of the probabilities (contract in mamakit.h; the CPU's mask, native/common/dropout_mask.h),
// as FlashAttention-2 applies it, in registers: the row sums (and lse) are the undropped P's,
// dropped entries are zeroed before P·V and the output is scaled by 1/(1 − p); the backward
// redraws the mask, dV = (P ⊙ Z)ᵀ·dO/(1 − p), and dS = P ⊙ (dP ⊙ Z/(1 − p) − D). Without
// dropout (g.drop false) no draw is made and the scale is exactly 1: the same bits as before. The
// tensor-core kernels take it as a template argument (DROP), so that their version without
// dropout is compiled as it was (the same registers); the f32 kernels test g.drop.
// Tested by native/tests/backend_ops/attention.cpp.
#include <initializer_list>
#include <type_traits>

#include "../common/dropout_mask.h"
#include "common.cuh"
#include "ptx.cuh"

namespace mk_cuda {
namespace {

constexpr int kRows = 64;   // query rows (forward, dQ) or key rows (dK, dV) per block
constexpr int kTile = 32;   // keys (forward, dQ) or queries (dK, dV) staged per step
constexpr int kMaxDh = 128;

struct Geo {
  int64_t B, Lq, Lk, H, Dh;
  float scale;
  bool causal;
  // Dropout: drop = p > 0; key = key(seed); rkeep = 1/(1 − p) (1 without dropout).
  bool drop;
  uint32_t threshold;
  float rkeep;
  uint64_t key, offset;
};

using mk::drop::kPhi;
using mk::drop::kept_at;

// key + c·φ for the dropout counter c of (query i, key j) of head bh: offset + (bh·Lq + i)·Lk + j.
__device__ __forceinline__ uint64_t drop_at(const Geo& g, int64_t bh, int64_t i, int64_t j) {
  return g.key + (g.offset + uint64_t((bh * g.Lq + i) * g.Lk + j)) * kPhi;
}

unsigned blocks(int64_t n, int t) { return unsigned((n + t - 1) / t); }

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
      const float pz = g.drop && !kept_at(drop_at(g, bh, i, j0 + jj), g.threshold) ? 0.f : p;
      for (int d = 0; d < g.Dh; ++d) o[d] = o[d] * alpha + pz * vs[jj][d];
      m = mnew;
    }
    __syncthreads();
  }
  if (!live) return;
  const float inv = (l > 0.f ? 1.f / l : 0.f) * g.rkeep;
  for (int d = 0; d < g.Dh; ++d) out[(b * g.Lq + i) * ld + h * g.Dh + d] = from_f32<T>(o[d] * inv);
  lse[bh * g.Lq + i] = l > 0.f ? m + logf(l) : -INFINITY;
}

// ---- Tensor-core forward (bf16/f16 storage, sm_80+): FlashAttention-2's forward with
// mma.sync.m16n8k16 (f32 accumulators). A block of 4 warps owns 64 query rows, 16 per warp; K
// and V tiles of 64 keys are staged in shared memory (V transposed, so that the B operand of
// P·V is two adjacent keys of one column). S = Q·Kᵀ stays in registers, and its accumulator
// fragments are re-packed as the A operand of P·V without touching shared memory. Row
// statistics live in the log2 domain (scale·log2 e folded into the scores) as exp2f is one
// instruction. Fragment layouts: PTX ISA, "Matrix Fragments for mma.m16n8k16" (g = lane / 4,
// t = lane % 4): A regs a0..a3 hold (row g, cols 2t..2t+1), (g+8, 2t..), (g, 2t+8..), (g+8, 2t+8..);
// B regs b0, b1 hold (rows 2t..2t+1, col g), (rows 2t+8.., col g); C holds (g, 2t..2t+1) and
// (g+8, 2t..2t+1).

constexpr int kTcRows = 64, kTcKeys = 64, kTcWarps = 4;

// Two floats as a pair of 16-bit values (lo in the low half: the lower column of a fragment).
template <class T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, __half>) {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
}

// The accumulators of two adjacent n-tiles (columns 0..7 and 8..15) as the A fragment of a
// 16-wide k step: their layouts line up, so no data moves between lanes.
template <class T>
__device__ __forceinline__ void a_frag(uint32_t (&a)[4], const float (&lo)[4], const float (&hi)[4]) {
  a[0] = pack2<T>(lo[0], lo[1]), a[1] = pack2<T>(lo[2], lo[3]);
  a[2] = pack2<T>(hi[0], hi[1]), a[3] = pack2<T>(hi[2], hi[3]);
}

// Two adjacent elements (an even column of a row whose length is even: 4-byte aligned).
template <class T>
__device__ __forceinline__ uint32_t ld2(const T* p) { return *reinterpret_cast<const uint32_t*>(p); }

// The A fragments [DH/16][4] of rows {rows[0], rows[1]} (this lane's g and g + 8) of one head
// of one batch entry, x0 = &x[b, 0, h, 0] of x [B, L, H, Dh] (row stride ld); rows ≥ L are zero.
template <class T, int DH>
__device__ __forceinline__ void load_a(uint32_t (&a)[DH / 16][4], const T* x0, int64_t L, const int64_t (&rows)[2],
                                       int64_t ld, int tq) {
#pragma unroll
  for (int kk = 0; kk < DH / 16; ++kk)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int64_t i = rows[r & 1];
      a[kk][r] = i < L ? ld2(x0 + i * ld + kk * 16 + (r >> 1) * 8 + 2 * tq) : 0u;
    }
}

template <class T, int DH, bool DROP>
__global__ void __launch_bounds__(kTcWarps * 32) forward_tc_kernel(T* __restrict__ out, float* __restrict__ lse,
                                                                   const T* __restrict__ q, const T* __restrict__ k,
                                                                   const T* __restrict__ v, const int* __restrict__ kv_lens,
                                                                   Geo g) {
  static_assert(DH % 16 == 0 && DH <= kMaxDh, "head dim: a multiple of 16 up to 128");
  constexpr int KS = DH + 8, VS = kTcKeys + 8;  // padded rows: the fragment reads hit 32 distinct banks
  __shared__ __align__(16) T ks[kTcKeys * KS];
  __shared__ __align__(16) T vt[DH * VS];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gr = lane / 4, tq = lane % 4;
  const int64_t bh = blockIdx.y, b = bh / g.H, h = bh % g.H, ld = g.H * g.Dh;
  const int64_t row0 = int64_t(blockIdx.x) * kTcRows + warp * 16;
  const int64_t rows[2] = {row0 + gr, row0 + gr + 8};
  const float sl2 = g.scale * 1.4426950408889634f;  // scores in log2 units

  uint32_t qa[DH / 16][4];
  load_a<T, DH>(qa, q + b * g.Lq * ld + h * g.Dh, g.Lq, rows, ld, tq);
  int64_t lim[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) lim[r] = rows[r] < g.Lq ? key_limit(g, kv_lens, b, rows[r]) : 0;
  const int64_t last_row = min(g.Lq - 1, int64_t(blockIdx.x) * kTcRows + kTcRows - 1);
  const int64_t block_lim = key_limit(g, kv_lens, b, last_row);
  // Dropout: key + c·φ at key 2·tq of rows g and g + 8; a fragment's keys follow at multiples of φ.
  uint64_t zx[2] = {0u, 0u};
  if constexpr (DROP)
#pragma unroll
    for (int r = 0; r < 2; ++r) zx[r] = drop_at(g, bh, rows[r], 2 * tq);

  float o[DH / 8][4];
#pragma unroll
  for (int n = 0; n < DH / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

  for (int64_t j0 = 0; j0 < block_lim; j0 += kTcKeys) {
    __syncthreads();  // the previous tile is no longer read
    for (int x = threadIdx.x; x < kTcKeys * DH / 2; x += blockDim.x) {
      const int jj = x / (DH / 2), d = 2 * (x % (DH / 2));
      const int64_t j = j0 + jj;
      uint32_t kw = 0u, vw = 0u;
      if (j < g.Lk) {
        kw = ld2(k + (b * g.Lk + j) * ld + h * g.Dh + d);
        vw = ld2(v + (b * g.Lk + j) * ld + h * g.Dh + d);
      }
      *reinterpret_cast<uint32_t*>(&ks[jj * KS + d]) = kw;
      const T* v2 = reinterpret_cast<const T*>(&vw);
      vt[d * VS + jj] = v2[0];
      vt[(d + 1) * VS + jj] = v2[1];
    }
    __syncthreads();

    // S = Q·Kᵀ for this warp's 16 rows × 64 keys: [8 key tiles][4]
    float s[kTcKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kTcKeys / 8; ++n) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < DH / 16; ++kk) {
        const T* kr = &ks[(n * 8 + gr) * KS + kk * 16 + 2 * tq];
        mma16816<T>(s[n], qa[kk], ld2(kr), ld2(kr + 8));
      }
    }
    // Scale, mask, and the online softmax of rows g and g+8 (each spread over the 4 lanes of a quad).
    float tmax[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < kTcKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1;
        const int64_t j = j0 + n * 8 + 2 * tq + (e & 1);
        s[n][e] = j < lim[r] ? s[n][e] * sl2 : -INFINITY;
        tmax[r] = fmaxf(tmax[r], s[n][e]);
      }
    float alpha[2], base[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 1));
      tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 2));
      const float mnew = fmaxf(m[r], tmax[r]);
      base[r] = mnew == -INFINITY ? 0.f : mnew;  // a row with nothing visible yet: all p = 0
      alpha[r] = exp2f(m[r] - base[r]);
      m[r] = mnew;
      l[r] *= alpha[r];
    }
#pragma unroll
    for (int n = 0; n < kTcKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[n][e] = exp2f(s[n][e] - base[e >> 1]);
        l[e >> 1] += s[n][e];
      }
    // Dropout after the row sums: P·V takes P ⊙ Z (the 1/(1 − p) is applied to the output).
    if constexpr (DROP) {
      const uint64_t zt[2] = {zx[0] + uint64_t(j0) * kPhi, zx[1] + uint64_t(j0) * kPhi};
#pragma unroll
      for (int n = 0; n < kTcKeys / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (!kept_at(zt[e >> 1] + uint64_t(n * 8 + (e & 1)) * kPhi, g.threshold)) s[n][e] = 0.f;
    }
#pragma unroll
    for (int n = 0; n < DH / 8; ++n) o[n][0] *= alpha[0], o[n][1] *= alpha[0], o[n][2] *= alpha[1], o[n][3] *= alpha[1];
    // O += P·V: P's accumulator fragments of key tiles 2c and 2c+1 are the A fragment of keys 16c..16c+15.
#pragma unroll
    for (int c = 0; c < kTcKeys / 16; ++c) {
      uint32_t pa[4];
      a_frag<T>(pa, s[2 * c], s[2 * c + 1]);
#pragma unroll
      for (int n = 0; n < DH / 8; ++n) {
        const T* vr = &vt[(n * 8 + gr) * VS + c * 16 + 2 * tq];
        mma16816<T>(o[n], pa, ld2(vr), ld2(vr + 8));
      }
    }
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    if (rows[r] >= g.Lq) continue;
    const float inv = (l[r] > 0.f ? 1.f / l[r] : 0.f) * (DROP ? g.rkeep : 1.f);
    T* orow = out + (b * g.Lq + rows[r]) * ld + h * g.Dh;
#pragma unroll
    for (int n = 0; n < DH / 8; ++n)
      *reinterpret_cast<uint32_t*>(orow + n * 8 + 2 * tq) = pack2<T>(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);
    if (tq == 0) lse[bh * g.Lq + rows[r]] = l[r] > 0.f ? (m[r] + log2f(l[r])) * 0.6931471805599453f : -INFINITY;
  }
}

// The tensor-core kernels apply to 16-bit storage, head dims 32/64/80/128, operands at even
// element offsets (pairs move as one 32-bit word; a view may start anywhere) and devices of
// compute capability 8.0 or more (mma.sync with bf16).
bool tensor_cores() {
  static const bool ok = [] {
    int dev = 0, major = 0;
    return cudaGetDevice(&dev) == cudaSuccess &&
           cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 8;
  }();
  return ok;
}

// Calls f(std::integral_constant<int, Dh>) when the tensor-core kernels apply; false otherwise.
template <class T, class F>
bool with_tensor_cores(const Geo& g, std::initializer_list<const void*> operands, F&& f) {
  if constexpr (std::is_same_v<T, float>) {
    return false;
  } else {
    if (!tensor_cores()) return false;
    for (const void* p : operands)
      if (reinterpret_cast<uintptr_t>(p) % 4 != 0) return false;
    switch (g.Dh) {
      case 32: f(std::integral_constant<int, 32>{}); return true;
      case 64: f(std::integral_constant<int, 64>{}); return true;
      case 80: f(std::integral_constant<int, 80>{}); return true;
      case 128: f(std::integral_constant<int, 128>{}); return true;
      default: return false;
    }
  }
}

template <class T, int DH, bool DROP>
cudaError_t launch_forward_tc(cudaStream_t s, T* out, float* lse, const T* q, const T* k, const T* v, const int* lens, const Geo& g) {
  const dim3 grid(blocks(g.Lq, kTcRows), unsigned(g.B * g.H));
  return launch<forward_tc_kernel<T, DH, DROP>>(grid, kTcWarps * 32, 0, s, out, lse, q, k, v, lens, g);
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

// One thread per key: dK, dV of that key over all queries, in order.
template <class T>
__global__ void backward_kernel(T* __restrict__ dk, T* __restrict__ dv, const T* __restrict__ q, const T* __restrict__ k,
                                const T* __restrict__ v, const float* __restrict__ lse, const float* __restrict__ dd,
                                const T* __restrict__ dout, const int* __restrict__ kv_lens, Geo g) {
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
      float pz = p;  // p ⊙ Z/(1 − p) for dV; dP ⊙ Z/(1 − p) for dS
      if (g.drop) {
        const bool z = kept_at(drop_at(g, bh, i, j), g.threshold);
        dp = z ? dp * g.rkeep : 0.f, pz = z ? p * g.rkeep : 0.f;
      }
      const float ds = g.scale * p * (dp - ds_[ii]);
      for (int d = 0; d < g.Dh; ++d) {
        gv[d] += pz * gs[ii][d];
        gk[d] += ds * qs[ii][d];
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

// One thread per query: dQ of that query over its visible keys in order (K and V tiles in shared
// memory, as the forward), with P = exp(scale·q·k − lse) and dS = scale·P·(dO·v − D) recomputed.
template <class T>
__global__ void backward_dq_kernel(T* __restrict__ dq, const T* __restrict__ q, const T* __restrict__ k,
                                   const T* __restrict__ v, const float* __restrict__ lse, const float* __restrict__ dd,
                                   const T* __restrict__ dout, const int* __restrict__ kv_lens, Geo g) {
  __shared__ float ks[kTile][kMaxDh], vs[kTile][kMaxDh];
  const int64_t bh = blockIdx.y, b = bh / g.H, h = bh % g.H, ld = g.H * g.Dh;
  const int64_t i = int64_t(blockIdx.x) * kRows + threadIdx.x;
  const bool live = i < g.Lq;
  float qr[kMaxDh], gr[kMaxDh], gq[kMaxDh];
  for (int d = 0; d < g.Dh; ++d) {
    qr[d] = live ? to_f32(q[(b * g.Lq + i) * ld + h * g.Dh + d]) : 0.f;
    gr[d] = live ? to_f32(dout[(b * g.Lq + i) * ld + h * g.Dh + d]) : 0.f;
    gq[d] = 0.f;
  }
  const float li = live ? lse[bh * g.Lq + i] : 0.f, di = live ? dd[bh * g.Lq + i] : 0.f;
  const int64_t lim = live ? key_limit(g, kv_lens, b, i) : 0;
  const int64_t last_row = min(g.Lq - 1, int64_t(blockIdx.x) * kRows + kRows - 1);
  const int64_t block_lim = key_limit(g, kv_lens, b, last_row);
  for (int64_t j0 = 0; j0 < block_lim; j0 += kTile) {
    for (int x = threadIdx.x; x < kTile * g.Dh; x += blockDim.x) {
      const int jj = x / g.Dh, d = x % g.Dh;
      const int64_t j = j0 + jj;
      ks[jj][d] = j < g.Lk ? to_f32(k[(b * g.Lk + j) * ld + h * g.Dh + d]) : 0.f;
      vs[jj][d] = j < g.Lk ? to_f32(v[(b * g.Lk + j) * ld + h * g.Dh + d]) : 0.f;
    }
    __syncthreads();
    for (int jj = 0; jj < kTile && j0 + jj < lim; ++jj) {
      float s = 0.f, dp = 0.f;
      for (int d = 0; d < g.Dh; ++d) s += qr[d] * ks[jj][d], dp += gr[d] * vs[jj][d];
      const float p = __expf(s * g.scale - li);
      if (g.drop) dp = kept_at(drop_at(g, bh, i, j0 + jj), g.threshold) ? dp * g.rkeep : 0.f;
      const float ds = g.scale * p * (dp - di);
      for (int d = 0; d < g.Dh; ++d) gq[d] += ds * ks[jj][d];
    }
    __syncthreads();
  }
  if (!live) return;
  for (int d = 0; d < g.Dh; ++d) dq[(b * g.Lq + i) * ld + h * g.Dh + d] = from_f32<T>(gq[d]);
}

// ---- Tensor-core backward (bf16/f16, sm_80+): FlashAttention-2's backward, with dQ in a pass
// of its own (backward_dq_tc_kernel) instead of atomics. A block of 4 warps owns 64 keys (16 per
// warp: their K and V rows are the warp's A fragments) and walks the query tiles of 32 that can
// see them, in order. Per tile, in registers: Sᵀ = K·Qᵀ, Pᵀ = exp(Sᵀ − lse), dV += Pᵀ·dO,
// dPᵀ = V·dOᵀ, dSᵀ = Pᵀ ⊙ (dPᵀ − D)·scale, dK += dSᵀ·Q. Q and dO are staged both row-major (B
// operand over d) and transposed (B operand over queries). Same fragment layouts as
// forward_tc_kernel.
constexpr int kTcBwdKeys = 64, kTcBwdQueries = 32;

// The two products of a backward tile, each 16 rows (the warp's A fragments a1, a2 over DH)
// × N columns (rows of b1, b2 in shared memory, row stride RS): x = a1·b1ᵀ, y = a2·b2ᵀ, as
// [N/8 column tiles][4] accumulator fragments. Sᵀ and dPᵀ for the dK/dV pass, S and dP for dQ.
template <class T, int DH, int N, int RS>
__device__ __forceinline__ void two_products(float (&x)[N / 8][4], float (&y)[N / 8][4], const uint32_t (&a1)[DH / 16][4],
                                             const uint32_t (&a2)[DH / 16][4], const T* b1, const T* b2, int gr, int tq) {
#pragma unroll
  for (int n = 0; n < N / 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) x[n][e] = y[n][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < DH / 16; ++kk) {
      const T* r1 = &b1[(n * 8 + gr) * RS + kk * 16 + 2 * tq];
      mma16816<T>(x[n], a1[kk], ld2(r1), ld2(r1 + 8));
      const T* r2 = &b2[(n * 8 + gr) * RS + kk * 16 + 2 * tq];
      mma16816<T>(y[n], a2[kk], ld2(r2), ld2(r2 + 8));
    }
  }
}

template <int DH>
struct BwdSmem {
  static constexpr int RS = DH + 8, TS = kTcBwdQueries + 8;
  static constexpr int q = 0, qt = q + kTcBwdQueries * RS, dout = qt + DH * TS, doutt = dout + kTcBwdQueries * RS;
  static constexpr int elems = doutt + DH * TS;  // 16-bit elements
  static constexpr size_t bytes = size_t(elems) * 2 + 2 * kTcBwdQueries * sizeof(float);  // + lse2, D
};

template <class T, int DH, bool DROP>
__global__ void __launch_bounds__(kTcWarps * 32) backward_tc_kernel(T* __restrict__ dk, T* __restrict__ dv,
                                                                    const T* __restrict__ q, const T* __restrict__ k,
                                                                    const T* __restrict__ v, const float* __restrict__ lse,
                                                                    const float* __restrict__ dd, const T* __restrict__ dout,
                                                                    const int* __restrict__ kv_lens, Geo g) {
  using L = BwdSmem<DH>;
  constexpr int QT = kTcBwdQueries;
  T* sm = dynamic_smem<T>();
  T *qs = sm + L::q, *qts = sm + L::qt, *gs = sm + L::dout, *gts = sm + L::doutt;
  float* lse2s = reinterpret_cast<float*>(sm + L::elems);
  float* dds = lse2s + QT;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gr = lane / 4, tq = lane % 4;
  const int64_t bh = blockIdx.y, b = bh / g.H, h = bh % g.H, ld = g.H * g.Dh;
  const int64_t kb = int64_t(blockIdx.x) * kTcBwdKeys, key0 = kb + warp * 16;
  const int64_t keys[2] = {key0 + gr, key0 + gr + 8};
  const float sl2 = g.scale * 1.4426950408889634f;

  // This warp's K and V rows as A fragments.
  uint32_t ka[DH / 16][4], va[DH / 16][4];
  load_a<T, DH>(ka, k + b * g.Lk * ld + h * g.Dh, g.Lk, keys, ld, tq);
  load_a<T, DH>(va, v + b * g.Lk * ld + h * g.Dh, g.Lk, keys, ld, tq);

  float gk[DH / 8][4], gv[DH / 8][4];
#pragma unroll
  for (int n = 0; n < DH / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) gk[n][e] = gv[n][e] = 0.f;

  // Queries that can see a key of this block: all, or from the block's first key on (causal);
  // none when every key of the block lies past kvLens[b].
  const int64_t kv_len = kv_lens ? kv_lens[b] : g.Lk;
  const int64_t i_first = g.causal ? kb / QT * QT : 0;
  // Dropout: key + c·φ at query 0 of keys g and g + 8; each query further adds Lk·φ.
  uint64_t zx[2] = {0u, 0u}, zstep = 0u;
  if constexpr (DROP) {
#pragma unroll
    for (int r = 0; r < 2; ++r) zx[r] = drop_at(g, bh, 0, keys[r]);
    zstep = uint64_t(g.Lk) * kPhi;
  }
  const int64_t i_end = kb < kv_len ? g.Lq : 0;
  for (int64_t i0 = i_first; i0 < i_end; i0 += QT) {
    __syncthreads();  // the previous tile is no longer read
    for (int x = threadIdx.x; x < QT * DH / 2; x += blockDim.x) {
      const int ii = x / (DH / 2), d = 2 * (x % (DH / 2));
      const int64_t i = i0 + ii;
      uint32_t qw = 0u, gw = 0u;
      if (i < g.Lq) {
        qw = ld2(q + (b * g.Lq + i) * ld + h * g.Dh + d);
        gw = ld2(dout + (b * g.Lq + i) * ld + h * g.Dh + d);
      }
      *reinterpret_cast<uint32_t*>(&qs[ii * L::RS + d]) = qw;
      *reinterpret_cast<uint32_t*>(&gs[ii * L::RS + d]) = gw;
      const T *q2 = reinterpret_cast<const T*>(&qw), *g2 = reinterpret_cast<const T*>(&gw);
      qts[d * L::TS + ii] = q2[0], qts[(d + 1) * L::TS + ii] = q2[1];
      gts[d * L::TS + ii] = g2[0], gts[(d + 1) * L::TS + ii] = g2[1];
    }
    for (int ii = threadIdx.x; ii < QT; ii += blockDim.x) {
      const int64_t i = i0 + ii;
      lse2s[ii] = i < g.Lq ? lse[bh * g.Lq + i] * 1.4426950408889634f : 0.f;
      dds[ii] = i < g.Lq ? dd[bh * g.Lq + i] : 0.f;
    }
    __syncthreads();

    // Sᵀ and dPᵀ: 16 keys × 32 queries, [4 query tiles][4].
    float p[QT / 8][4], dp[QT / 8][4];
    two_products<T, DH, QT, L::RS>(p, dp, ka, va, qs, gs, gr, tq);
    // Pᵀ = exp(Sᵀ·scale − lse) where the key is visible to the query, else 0; dSᵀ = Pᵀ(dPᵀ − D)·scale.
    // With dropout dPᵀ ⊙ Zᵀ/(1 − p) in dSᵀ, and Pᵀ ⊙ Zᵀ for dV (its 1/(1 − p) applied at the end).
    const uint64_t zt[2] = {zx[0] + uint64_t(i0 + 2 * tq) * zstep, zx[1] + uint64_t(i0 + 2 * tq) * zstep};
#pragma unroll
    for (int n = 0; n < QT / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int iq = n * 8 + 2 * tq + (e & 1);
        const int64_t i = i0 + iq, j = keys[e >> 1];
        const bool vis = i < g.Lq && j < key_limit(g, kv_lens, b, i);
        p[n][e] = vis ? exp2f(p[n][e] * sl2 - lse2s[iq]) : 0.f;
        if constexpr (!DROP) {
          dp[n][e] = p[n][e] * (dp[n][e] - dds[iq]) * g.scale;
        } else {
          const bool z = kept_at(zt[e >> 1] + uint64_t(n * 8 + (e & 1)) * zstep, g.threshold);
          dp[n][e] = p[n][e] * ((z ? dp[n][e] * g.rkeep : 0.f) - dds[iq]) * g.scale;
          if (!z) p[n][e] = 0.f;
        }
      }
    // dV += Pᵀ·dO and dK += dSᵀ·Q: Pᵀ and dSᵀ fragments of query tiles 2c, 2c+1 are A fragments.
#pragma unroll
    for (int c = 0; c < QT / 16; ++c) {
      uint32_t pa[4], sa[4];
      a_frag<T>(pa, p[2 * c], p[2 * c + 1]);
      a_frag<T>(sa, dp[2 * c], dp[2 * c + 1]);
#pragma unroll
      for (int n = 0; n < DH / 8; ++n) {
        const T* gt = &gts[(n * 8 + gr) * L::TS + c * 16 + 2 * tq];
        mma16816<T>(gv[n], pa, ld2(gt), ld2(gt + 8));
        const T* qt = &qts[(n * 8 + gr) * L::TS + c * 16 + 2 * tq];
        mma16816<T>(gk[n], sa, ld2(qt), ld2(qt + 8));
      }
    }
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (keys[r] >= g.Lk) continue;
    T *krow = dk + (b * g.Lk + keys[r]) * ld + h * g.Dh, *vrow = dv + (b * g.Lk + keys[r]) * ld + h * g.Dh;
#pragma unroll
    for (int n = 0; n < DH / 8; ++n) {
      *reinterpret_cast<uint32_t*>(krow + n * 8 + 2 * tq) = pack2<T>(gk[n][2 * r], gk[n][2 * r + 1]);
      *reinterpret_cast<uint32_t*>(vrow + n * 8 + 2 * tq) = pack2<T>(gv[n][2 * r] * (DROP ? g.rkeep : 1.f), gv[n][2 * r + 1] * (DROP ? g.rkeep : 1.f));
    }
  }
}

// ---- Tensor-core dQ (bf16/f16, sm_80+): the dQ pass of FlashAttention-2's backward in a
// fixed order (its fused version adds dQ with atomics). Laid out as forward_tc_kernel: a block of
// 4 warps owns 64 queries (16 per warp: their Q and dO rows are A fragments) and walks the key
// tiles of 64 they can see, in order. Per tile, in registers: S = Q·Kᵀ, dP = dO·Vᵀ,
// P = exp(S·scale − lse), dS = P ⊙ (dP − D)·scale, and dQ += dS·K with dS's accumulator
// fragments re-packed as A fragments (rounded to 16 bits, as in the fused version). K and V are
// staged row-major (B operand over d), K also transposed (B operand over keys). Recomputing S
// and dP makes the backward 7 products of Dh per query-key pair instead of 5; in exchange there
// is no f32 dQ workspace [B,Lq,H,Dh] and no atomics.
constexpr int kTcDqKeys = 64;

template <int DH>
struct DqSmem {
  static constexpr int RS = DH + 8, KTS = kTcDqKeys + 8;
  static constexpr int k = 0, v = k + kTcDqKeys * RS, kt = v + kTcDqKeys * RS, elems = kt + DH * KTS;  // 16-bit elements
  static constexpr size_t bytes = size_t(elems) * 2;
};

template <class T, int DH, bool DROP>
__global__ void __launch_bounds__(kTcWarps * 32) backward_dq_tc_kernel(T* __restrict__ dq, const T* __restrict__ q,
                                                                       const T* __restrict__ k, const T* __restrict__ v,
                                                                       const float* __restrict__ lse, const float* __restrict__ dd,
                                                                       const T* __restrict__ dout, const int* __restrict__ kv_lens,
                                                                       Geo g) {
  using L = DqSmem<DH>;
  T* sm = dynamic_smem<T>();
  T *ks = sm + L::k, *vs = sm + L::v, *kts = sm + L::kt;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gr = lane / 4, tq = lane % 4;
  const int64_t bh = blockIdx.y, b = bh / g.H, h = bh % g.H, ld = g.H * g.Dh;
  const int64_t row0 = int64_t(blockIdx.x) * kTcRows + warp * 16;
  const int64_t rows[2] = {row0 + gr, row0 + gr + 8};
  const float sl2 = g.scale * 1.4426950408889634f;

  uint32_t qa[DH / 16][4], ga[DH / 16][4];
  load_a<T, DH>(qa, q + b * g.Lq * ld + h * g.Dh, g.Lq, rows, ld, tq);
  load_a<T, DH>(ga, dout + b * g.Lq * ld + h * g.Dh, g.Lq, rows, ld, tq);
  int64_t lim[2];
  float lse2[2], di[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const bool live = rows[r] < g.Lq;
    lim[r] = live ? key_limit(g, kv_lens, b, rows[r]) : 0;
    lse2[r] = live ? lse[bh * g.Lq + rows[r]] * 1.4426950408889634f : 0.f;
    di[r] = live ? dd[bh * g.Lq + rows[r]] : 0.f;
  }
  const int64_t last_row = min(g.Lq - 1, int64_t(blockIdx.x) * kTcRows + kTcRows - 1);
  const int64_t block_lim = key_limit(g, kv_lens, b, last_row);
  // Dropout: key + c·φ at key 2·tq of rows g and g + 8, as in forward_tc_kernel.
  uint64_t zx[2] = {0u, 0u};
  if constexpr (DROP)
#pragma unroll
    for (int r = 0; r < 2; ++r) zx[r] = drop_at(g, bh, rows[r], 2 * tq);

  float gq[DH / 8][4];
#pragma unroll
  for (int n = 0; n < DH / 8; ++n) gq[n][0] = gq[n][1] = gq[n][2] = gq[n][3] = 0.f;

  for (int64_t j0 = 0; j0 < block_lim; j0 += kTcDqKeys) {
    __syncthreads();  // the previous tile is no longer read
    for (int x = threadIdx.x; x < kTcDqKeys * DH / 2; x += blockDim.x) {
      const int jj = x / (DH / 2), d = 2 * (x % (DH / 2));
      const int64_t j = j0 + jj;
      uint32_t kw = 0u, vw = 0u;
      if (j < g.Lk) {
        kw = ld2(k + (b * g.Lk + j) * ld + h * g.Dh + d);
        vw = ld2(v + (b * g.Lk + j) * ld + h * g.Dh + d);
      }
      *reinterpret_cast<uint32_t*>(&ks[jj * L::RS + d]) = kw;
      *reinterpret_cast<uint32_t*>(&vs[jj * L::RS + d]) = vw;
      const T* k2 = reinterpret_cast<const T*>(&kw);
      kts[d * L::KTS + jj] = k2[0];
      kts[(d + 1) * L::KTS + jj] = k2[1];
    }
    __syncthreads();

    // S and dP for this warp's 16 queries × 64 keys: [8 key tiles][4].
    float p[kTcDqKeys / 8][4], dp[kTcDqKeys / 8][4];
    two_products<T, DH, kTcDqKeys, L::RS>(p, dp, qa, ga, ks, vs, gr, tq);
    // P = exp(S·scale − lse) where the key is visible to the query, else 0; dS = P(dP − D)·scale,
    // with dP ⊙ Z/(1 − p) under dropout.
    const uint64_t zt[2] = {zx[0] + uint64_t(j0) * kPhi, zx[1] + uint64_t(j0) * kPhi};
#pragma unroll
    for (int n = 0; n < kTcDqKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1;
        const int64_t j = j0 + n * 8 + 2 * tq + (e & 1);
        const float pe = j < lim[r] ? exp2f(p[n][e] * sl2 - lse2[r]) : 0.f;
        float dpe = dp[n][e];
        if constexpr (DROP) dpe = kept_at(zt[r] + uint64_t(n * 8 + (e & 1)) * kPhi, g.threshold) ? dpe * g.rkeep : 0.f;
        dp[n][e] = pe * (dpe - di[r]) * g.scale;
      }
    // dQ += dS·K: dS fragments of key tiles 2c, 2c+1 are the A fragment of keys 16c..16c+15.
#pragma unroll
    for (int c = 0; c < kTcDqKeys / 16; ++c) {
      uint32_t sa[4];
      a_frag<T>(sa, dp[2 * c], dp[2 * c + 1]);
#pragma unroll
      for (int n = 0; n < DH / 8; ++n) {
        const T* kt = &kts[(n * 8 + gr) * L::KTS + c * 16 + 2 * tq];
        mma16816<T>(gq[n], sa, ld2(kt), ld2(kt + 8));
      }
    }
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (rows[r] >= g.Lq) continue;
    T* qrow = dq + (b * g.Lq + rows[r]) * ld + h * g.Dh;
#pragma unroll
    for (int n = 0; n < DH / 8; ++n)
      *reinterpret_cast<uint32_t*>(qrow + n * 8 + 2 * tq) = pack2<T>(gq[n][2 * r], gq[n][2 * r + 1]);
  }
}

template <class T, int DH, bool DROP>
cudaError_t launch_backward_tc(cudaStream_t s, T* dq, T* dk, T* dv, const T* q, const T* k, const T* v,
                               const float* lse, const float* dd, const T* dout, const int* lens, const Geo& g) {
  const size_t bytes = BwdSmem<DH>::bytes, dq_bytes = DqSmem<DH>::bytes;
  cudaError_t e = cudaFuncSetAttribute(backward_tc_kernel<T, DH, DROP>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
  if (e == cudaSuccess)
    e = cudaFuncSetAttribute(backward_dq_tc_kernel<T, DH, DROP>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(dq_bytes));
  if (e != cudaSuccess) return e;
  e = launch<backward_tc_kernel<T, DH, DROP>>(dim3(blocks(g.Lk, kTcBwdKeys), unsigned(g.B * g.H)), kTcWarps * 32, bytes, s, dk, dv,
                                        q, k, v, lse, dd, dout, lens, g);
  if (e != cudaSuccess) return e;
  return launch<backward_dq_tc_kernel<T, DH, DROP>>(dim3(blocks(g.Lq, kTcRows), unsigned(g.B * g.H)), kTcWarps * 32, dq_bytes, s,
                                              dq, q, k, v, lse, dd, dout, lens, g);
}

template <class T>
cudaError_t forward(cudaStream_t s, void* out, float* lse, const void* q, const void* k, const void* v,
                    const int32_t* kv_lens, const Geo& g) {
  return with_ints(kv_lens, g.B, s, [&](const int* lens) {
    T* o = static_cast<T*>(out);
    const T *qt = static_cast<const T*>(q), *kt = static_cast<const T*>(k), *vt = static_cast<const T*>(v);
    cudaError_t e = cudaSuccess;
    const bool tc = with_tensor_cores<T>(g, {o, qt, kt, vt}, [&](auto dh) {
      constexpr int DH = decltype(dh)::value;
      e = g.drop ? launch_forward_tc<T, DH, true>(s, o, lse, qt, kt, vt, lens, g)
                 : launch_forward_tc<T, DH, false>(s, o, lse, qt, kt, vt, lens, g);
    });
    return tc ? e : launch<forward_kernel<T>>(dim3(blocks(g.Lq, kRows), unsigned(g.B * g.H)), kRows, 0, s, o, lse, qt, kt, vt, lens, g);
  });
}

template <class T>
cudaError_t backward(cudaStream_t s, void* dq, void* dk, void* dv, const void* q, const void* k, const void* v,
                     const void* out, const float* lse, const void* dout, const int32_t* kv_lens, const Geo& g) {
  const int64_t rows = g.B * g.H * g.Lq;
  int* lens = nullptr;
  float* dd = nullptr;  // D [B,H,Lq] = Σ_d dO·O
  cudaError_t e = stage_ints(kv_lens, g.B, &lens, s);
  if (e == cudaSuccess) e = cudaMallocAsync(reinterpret_cast<void**>(&dd), size_t(rows) * sizeof(float), s);
  if (e == cudaSuccess) e = launch<rowdot_kernel<T>>(blocks(rows, 256), 256, 0, s, dd, static_cast<const T*>(dout), static_cast<const T*>(out), g);
  if (e == cudaSuccess) {
    T *dqt = static_cast<T*>(dq), *dkt = static_cast<T*>(dk), *dvt = static_cast<T*>(dv);
    const T *qt = static_cast<const T*>(q), *kt = static_cast<const T*>(k), *vt = static_cast<const T*>(v);
    const T* gt = static_cast<const T*>(dout);
    const bool tc = with_tensor_cores<T>(g, {dqt, dkt, dvt, qt, kt, vt, gt}, [&](auto dh) {
      constexpr int DH = decltype(dh)::value;
      e = g.drop ? launch_backward_tc<T, DH, true>(s, dqt, dkt, dvt, qt, kt, vt, lse, dd, gt, lens, g)
                 : launch_backward_tc<T, DH, false>(s, dqt, dkt, dvt, qt, kt, vt, lse, dd, gt, lens, g);
    });
    if (!tc) {
      const unsigned bh = unsigned(g.B * g.H);
      e = launch<backward_kernel<T>>(dim3(blocks(g.Lk, kRows), bh), kRows, 0, s, dkt, dvt, qt, kt, vt, lse, dd, gt, lens, g);
      if (e == cudaSuccess)
        e = launch<backward_dq_kernel<T>>(dim3(blocks(g.Lq, kRows), bh), kRows, 0, s, dqt, qt, kt, vt, lse, dd, gt, lens, g);
    }
  }
  if (dd) cudaFreeAsync(dd, s);
  if (lens) cudaFreeAsync(lens, s);
  return e;
}

// The geometry of a call, its dropout included (p = 0: none, scale 1).
Geo geo(int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t Dh, float scale, bool causal, float p, uint64_t seed,
        uint64_t offset) {
  return Geo{B, Lq, Lk, H, Dh, scale, causal, p > 0.f, mk::drop::threshold(p), 1.f / (1.f - p), mk::drop::key(seed), offset};
}

}  // namespace

cudaError_t launch_attention_forward(cudaStream_t s, mk_dtype dtype, void* out, float* lse, const void* q, const void* k,
                                     const void* v, const int32_t* kv_lens, int64_t B, int64_t Lq, int64_t Lk, int64_t H,
                                     int64_t Dh, float scale, bool causal, float p, uint64_t seed, uint64_t offset) {
  if (Dh > kMaxDh || B * H > 65535) return cudaErrorNotSupported;
  const Geo g = geo(B, Lq, Lk, H, Dh, scale, causal, p, seed, offset);
  return by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return forward<St>(s, out, lse, q, k, v, kv_lens, g);
  });
}

cudaError_t launch_attention_backward(cudaStream_t s, mk_dtype dtype, void* dq, void* dk, void* dv, const void* q,
                                      const void* k, const void* v, const void* out, const float* lse, const void* dout,
                                      const int32_t* kv_lens, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t Dh,
                                      float scale, bool causal, float p, uint64_t seed, uint64_t offset) {
  if (Dh > kMaxDh || B * H > 65535) return cudaErrorNotSupported;
  const Geo g = geo(B, Lq, Lk, H, Dh, scale, causal, p, seed, offset);
  return by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return backward<St>(s, dq, dk, dv, q, k, v, out, lse, dout, kv_lens, g);
  });
}

namespace {

mk_status cu_attention_forward(mk_context* ctx, void* out, float* lse, const void* q, const void* k, const void* v,
                               const int32_t* kv_lens, mk_dtype dtype, int64_t B, int64_t Lq, int64_t Lk, int64_t H,
                               int64_t Dh, float scale, int causal, float p, uint64_t seed, uint64_t offset) {
  return check(launch_attention_forward(ctx->stream, dtype, out, lse, q, k, v, kv_lens, B, Lq, Lk, H, Dh, scale,
                                        causal != 0, p, seed, offset),
               "flashAttention");
}

mk_status cu_attention_backward(mk_context* ctx, void* dq, void* dk, void* dv, const void* q, const void* k,
                                const void* v, const void* out, const float* lse, const void* dout,
                                const int32_t* kv_lens, mk_dtype dtype, int64_t B, int64_t Lq, int64_t Lk, int64_t H,
                                int64_t Dh, float scale, int causal, float p, uint64_t seed, uint64_t offset) {
  return check(launch_attention_backward(ctx->stream, dtype, dq, dk, dv, q, k, v, out, lse, dout, kv_lens, B, Lq, Lk,
                                         H, Dh, scale, causal != 0, p, seed, offset),
               "flashAttentionBackward");
}

}  // namespace

MK_CUDA_ENTRY(attention_forward, cu_attention_forward);
MK_CUDA_ENTRY(attention_backward, cu_attention_backward);

}  // namespace mk_cuda
