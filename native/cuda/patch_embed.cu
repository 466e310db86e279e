// patch_embed.cu: patch embedding forward and backward for f32, bf16 and f16 with f32
// accumulation (contract in mamakit.h). The forward is the tiled GEMM of matmul.cu with the
// A tile gathered from the pixels (no im2col buffer) and bias + pos added in the store.
// Backward: dW by split-K over the tokens, each split's partial stored in an f32 workspace and
// the partials added in split order (reduce.cuh), no atomics: the same bits every run; dPos and
// dBias from one reduction of dTokens over the batch. Correct first; tensor-core versions replace
// it later. Tested by native/tests/backend_ops/patch_embed.cpp.
#include "common.cuh"
#include "reduce.cuh"

namespace mk_cuda {
namespace {

constexpr int TM = 64, TN = 64, TK = 16;

struct Geo {
  int64_t B, C, H, W, p, D, T, offset, gw, np, kp;
  // Pixel offset of P(m, q): patch m = (b, n), q = (c, i, j) of the flattened kernel.
  __device__ int64_t pixel(int64_t m, int64_t q) const {
    const int64_t b = m / np, n = m % np, c = q / (p * p), r = q % (p * p);
    return ((b * C + c) * H + (n / gw) * p + r / p) * W + (n % gw) * p + r % p;
  }
  __device__ int64_t token(int64_t m) const { return (m / np * T + offset + m % np) * D; }
};

// tokens = P·Wᵀ + bias + pos: block tile 64 tokens × 64 features, 4×4 per thread.
template <class T>
__global__ void forward_kernel(T* __restrict__ tokens, const T* __restrict__ img, const T* __restrict__ w,
                               const T* __restrict__ bias, const T* __restrict__ pos, Geo g) {
  __shared__ float as[TK][TM + 1];
  __shared__ float bs[TK][TN + 1];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t M = g.B * g.np, m0 = int64_t(blockIdx.y) * TM, n0 = int64_t(blockIdx.x) * TN;
  float sum[4][4] = {};
  for (int64_t k0 = 0; k0 < g.kp; k0 += TK) {
    for (int i = threadIdx.x; i < TK * TM; i += blockDim.x) {
      const int kk = i % TK, mm = i / TK;
      const int64_t m = m0 + mm, k = k0 + kk;
      as[kk][mm] = m < M && k < g.kp ? to_f32(img[g.pixel(m, k)]) : 0.f;
    }
    for (int i = threadIdx.x; i < TK * TN; i += blockDim.x) {
      const int kk = i % TK, nn = i / TK;
      const int64_t n = n0 + nn, k = k0 + kk;
      bs[kk][nn] = n < g.D && k < g.kp ? to_f32(w[n * g.kp + k]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < TK; ++kk) {
      float av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = as[kk][ty * 4 + i], bv[i] = bs[kk][tx * 4 + i];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) sum[i][j] += av[i] * bv[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + ty * 4 + i;
    if (m >= M) continue;
    const int64_t row = g.token(m), prow = (m % g.np) * g.D;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t d = n0 + tx * 4 + j;
      if (d >= g.D) continue;
      float v = sum[i][j];
      if (bias) v += to_f32(bias[d]);
      if (pos) v += to_f32(pos[prow + d]);
      tokens[row + d] = from_f32<T>(v);
    }
  }
}

// part [splits, D, kp]: part[z] = dTᵀ·P over the token range of split z = blockIdx.z.
template <class T>
__global__ void dweight_kernel(float* __restrict__ part, const T* __restrict__ dt, const T* __restrict__ img, Geo g,
                               int64_t per_split) {
  __shared__ float as[TK][TM + 1];  // as[token][feature]
  __shared__ float bs[TK][TN + 1];  // bs[token][pixel]
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t M = g.B * g.np, d0 = int64_t(blockIdx.y) * TM, q0 = int64_t(blockIdx.x) * TN;
  const int64_t lo = int64_t(blockIdx.z) * per_split, hi = min(M, lo + per_split);
  float sum[4][4] = {};
  for (int64_t k0 = lo; k0 < hi; k0 += TK) {
    for (int i = threadIdx.x; i < TK * TM; i += blockDim.x) {
      const int dd = i % TM, kk = i / TM;
      const int64_t d = d0 + dd, m = k0 + kk;
      as[kk][dd] = d < g.D && m < hi ? to_f32(dt[g.token(m) + d]) : 0.f;
    }
    for (int i = threadIdx.x; i < TK * TN; i += blockDim.x) {
      const int qq = i % TN, kk = i / TN;
      const int64_t q = q0 + qq, m = k0 + kk;
      bs[kk][qq] = q < g.kp && m < hi ? to_f32(img[g.pixel(m, q)]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < TK; ++kk) {
      float av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = as[kk][ty * 4 + i], bv[i] = bs[kk][tx * 4 + i];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) sum[i][j] += av[i] * bv[j];
    }
    __syncthreads();
  }
  float* out = part + int64_t(blockIdx.z) * g.D * g.kp;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t d = d0 + ty * 4 + i;
    if (d >= g.D) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t q = q0 + tx * 4 + j;
      if (q < g.kp) out[d * g.kp + q] = sum[i][j];
    }
  }
}

// dp [np, D] = Σ_b dT[b, offset + n, :]
template <class T>
__global__ void dpos_kernel(float* __restrict__ dp, const T* __restrict__ dt, Geo g) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= g.np * g.D) return;
  const int64_t n = i / g.D, d = i % g.D;
  float s = 0.f;
  for (int64_t b = 0; b < g.B; ++b) s += to_f32(dt[(b * g.T + g.offset + n) * g.D + d]);
  dp[i] = s;
}

// dbias [D] += Σ_n dp[n, :]
template <class T>
__global__ void dbias_kernel(T* __restrict__ dbias, const float* __restrict__ dp, int64_t np, int64_t D) {
  const int64_t d = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (d >= D) return;
  float s = 0.f;
  for (int64_t n = 0; n < np; ++n) s += dp[n * D + d];
  dbias[d] = from_f32<T>(to_f32(dbias[d]) + s);
}

template <class T>
__global__ void accumulate_kernel(T* __restrict__ dst, const float* __restrict__ src, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = from_f32<T>(to_f32(dst[i]) + src[i]);
}

unsigned blocks(int64_t n, int t) { return unsigned((n + t - 1) / t); }

template <class T>
cudaError_t forward(cudaStream_t s, void* tokens, const void* img, const void* w, const void* bias, const void* pos,
                    const Geo& g) {
  const dim3 grid(blocks(g.D, TN), blocks(g.B * g.np, TM));
  if (grid.y > 65535) return cudaErrorInvalidConfiguration;
  return launch<forward_kernel<T>>(grid, 256, 0, s, static_cast<T*>(tokens), static_cast<const T*>(img),
                                   static_cast<const T*>(w), static_cast<const T*>(bias), static_cast<const T*>(pos), g);
}

template <class T>
cudaError_t backward(cudaStream_t s, void* dw, void* db, void* dpos, const void* dt, const void* img, const Geo& g) {
  const T* dtt = static_cast<const T*>(dt);
  // Enough token splits to give every SM a few blocks; each split reduces its own range into its
  // own partial: splits·D·kp floats, at most D·kp plus 4·132 tiles of 64×64 (8.7 MB).
  const int64_t M = g.B * g.np, tiles = int64_t(blocks(g.D, TM)) * blocks(g.kp, TN);
  const int64_t splits = std::max<int64_t>(1, std::min<int64_t>((M + 255) / 256, (4 * 132 + tiles - 1) / tiles));
  const int64_t per = ((M + splits - 1) / splits + TK - 1) / TK * TK, parts = (M + per - 1) / per;
  float* ws = nullptr;
  const int64_t nw = dw ? g.D * g.kp : 0, npd = (db || dpos) ? g.np * g.D : 0;
  cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&ws), size_t(parts * nw + npd + 1) * sizeof(float), s);
  if (e != cudaSuccess) return e;
  if (dw) {
    const dim3 grid(blocks(g.kp, TN), blocks(g.D, TM), unsigned(parts));
    e = launch<dweight_kernel<T>>(grid, 256, 0, s, ws, dtt, static_cast<const T*>(img), g, per);
    if (e == cudaSuccess) e = launch<add_partials_kernel<T>>(blocks(nw, 256), 256, 0, s, static_cast<T*>(dw), ws, parts, nw);
  }
  if (e == cudaSuccess && npd) {
    float* dp = ws + parts * nw;
    e = launch<dpos_kernel<T>>(blocks(npd, 256), 256, 0, s, dp, dtt, g);
    if (e == cudaSuccess && dpos) e = launch<accumulate_kernel<T>>(blocks(npd, 256), 256, 0, s, static_cast<T*>(dpos), dp, npd);
    if (e == cudaSuccess && db) e = launch<dbias_kernel<T>>(blocks(g.D, 256), 256, 0, s, static_cast<T*>(db), dp, g.np, g.D);
  }
  const cudaError_t f = cudaFreeAsync(ws, s);
  return e != cudaSuccess ? e : f;
}

Geo make_geo(int64_t B, int64_t C, int64_t H, int64_t W, int64_t p, int64_t D, int64_t T, int64_t offset) {
  return Geo{B, C, H, W, p, D, T, offset, W / p, (H / p) * (W / p), C * p * p};
}

}  // namespace

cudaError_t launch_patch_embed_forward(cudaStream_t s, mk_dtype dtype, void* tokens, const void* img, const void* w,
                                       const void* bias, const void* pos, int64_t B, int64_t C, int64_t H,
                                       int64_t W, int64_t p, int64_t D, int64_t T, int64_t offset) {
  const Geo g = make_geo(B, C, H, W, p, D, T, offset);
  return by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return forward<St>(s, tokens, img, w, bias, pos, g);
  });
}

cudaError_t launch_patch_embed_backward(cudaStream_t s, mk_dtype dtype, void* dw, void* db, void* dpos,
                                        const void* dt, const void* img, int64_t B, int64_t C, int64_t H,
                                        int64_t W, int64_t p, int64_t D, int64_t T, int64_t offset) {
  const Geo g = make_geo(B, C, H, W, p, D, T, offset);
  return by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return backward<St>(s, dw, db, dpos, dt, img, g);
  });
}

namespace {

mk_status cu_patch_embed_forward(mk_context* ctx, void* tokens, const void* images, const void* weight,
                                 const void* bias, const void* pos, mk_dtype dtype, int64_t B, int64_t C, int64_t H,
                                 int64_t W, int64_t p, int64_t D, int64_t T, int64_t offset) {
  return check(launch_patch_embed_forward(ctx->stream, dtype, tokens, images, weight, bias, pos, B, C, H, W, p, D, T,
                                          offset),
               "patchEmbed");
}

mk_status cu_patch_embed_backward(mk_context* ctx, void* dweight, void* dbias, void* dpos, const void* dtokens,
                                  const void* images, mk_dtype dtype, int64_t B, int64_t C, int64_t H, int64_t W,
                                  int64_t p, int64_t D, int64_t T, int64_t offset) {
  return check(launch_patch_embed_backward(ctx->stream, dtype, dweight, dbias, dpos, dtokens, images, B, C, H, W, p,
                                           D, T, offset),
               "patchEmbedBackward");
}

}  // namespace

MK_CUDA_ENTRY(patch_embed_forward, cu_patch_embed_forward);
MK_CUDA_ENTRY(patch_embed_backward, cu_patch_embed_backward);

}  // namespace mk_cuda
