// patch_embed.cu: patch embedding forward and backward for f32, bf16 and f16 with f32
// accumulation (contract in mamakit.h). tokens = P·Wᵀ + bias + pos and dW += dTᵀ·P, where
// P [B·np, C·p·p] is the im2col matrix of the pixels, never stored: bf16/f16 run the tensor-core
// GEMM core (gemm.cuh) with P's tiles gathered pixel by pixel (Patches) and dT's rows found through
// the token layout (Tokens); f32 runs 64×64 FMA tiles with the same gathers. dW splits the tokens
// (the GEMM's K) over blockIdx.z, each split's partial stored in an f32 workspace and the partials
// added in split order (reduce.cuh), no atomics: the same bits every run; dPos and dBias from one
// reduction of dTokens over the batch. Tested by native/tests/backend_ops/patch_embed.cpp.
#include "gemm.cuh"
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

// GEMM sources (gemm::Operand): P(m, q), gathered (no contiguous runs); and dT's token rows,
// dT(m, d) = dt[token(m) + d], contiguous along d.
template <class T>
struct Patches {
  static constexpr bool kRows = false;
  const T* img;
  Geo g;
  __device__ T at(int64_t m, int64_t q) const { return img[g.pixel(m, q)]; }
};
template <class T>
struct Tokens {
  static constexpr bool kRows = true;
  const T* dt;
  Geo g;
  __device__ const T* row(int64_t m) const { return dt + g.token(m); }
  __device__ T at(int64_t m, int64_t d) const { return row(m)[d]; }
};

// Forward epilogue: tokens[b, offset + n, d] = v + bias[d] + pos[n, d] for patch row m = (b, n).
template <class T>
struct TokenStore {
  T* tokens;
  const T* bias;
  const T* pos;
  Geo g;
  __device__ void operator()(int64_t m, int64_t d, float v) const {
    if (bias) v += to_f32(bias[d]);
    if (pos) v += to_f32(pos[(m % g.np) * g.D + d]);
    tokens[g.token(m) + d] = from_f32<T>(v);
  }
};

// dW epilogue: part[z, d, q] = v for the token split z = blockIdx.z.
struct PartStore {
  float* part;
  int64_t D, kp;
  __device__ void operator()(int64_t d, int64_t q, float v) const { part[(int64_t(blockIdx.z) * D + d) * kp + q] = v; }
};

// f32: tokens = P·Wᵀ + bias + pos: block tile 64 tokens × 64 features, 4×4 per thread.
__global__ void forward_kernel(TokenStore<float> out, const float* __restrict__ img, const float* __restrict__ w, Geo g) {
  __shared__ float as[TK][TM + 1];
  __shared__ float bs[TK][TN + 1];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t M = g.B * g.np, m0 = int64_t(blockIdx.y) * TM, n0 = int64_t(blockIdx.x) * TN;
  float sum[4][4] = {};
  for (int64_t k0 = 0; k0 < g.kp; k0 += TK) {
    for (int i = threadIdx.x; i < TK * TM; i += blockDim.x) {
      const int kk = i % TK, mm = i / TK;
      const int64_t m = m0 + mm, k = k0 + kk;
      as[kk][mm] = m < M && k < g.kp ? img[g.pixel(m, k)] : 0.f;
    }
    for (int i = threadIdx.x; i < TK * TN; i += blockDim.x) {
      const int kk = i % TK, nn = i / TK;
      const int64_t n = n0 + nn, k = k0 + kk;
      bs[kk][nn] = n < g.D && k < g.kp ? w[n * g.kp + k] : 0.f;
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
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t m = m0 + ty * 4 + i, d = n0 + tx * 4 + j;
      if (m < M && d < g.D) out(m, d, sum[i][j]);
    }
}

// f32: part [splits, D, kp]: part[z] = dTᵀ·P over the token range of split z = blockIdx.z.
__global__ void dweight_kernel(float* __restrict__ part, const float* __restrict__ dt, const float* __restrict__ img, Geo g,
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
      as[kk][dd] = d < g.D && m < hi ? dt[g.token(m) + d] : 0.f;
    }
    for (int i = threadIdx.x; i < TK * TN; i += blockDim.x) {
      const int qq = i % TN, kk = i / TN;
      const int64_t q = q0 + qq, m = k0 + kk;
      bs[kk][qq] = q < g.kp && m < hi ? img[g.pixel(m, q)] : 0.f;
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
  const TokenStore<T> out{static_cast<T*>(tokens), static_cast<const T*>(bias), static_cast<const T*>(pos), g};
  const T *px = static_cast<const T*>(img), *wt = static_cast<const T*>(w);
  if constexpr (std::is_same_v<T, float>) {
    const dim3 grid(blocks(g.D, TN), blocks(g.B * g.np, TM));
    if (grid.y > 65535) return cudaErrorInvalidConfiguration;
    return launch<forward_kernel>(grid, 256, 0, s, out, px, wt, g);
  } else {
    // A = P [B·np, kp] gathered, B = Wᵀ (W [D, kp] is contiguous along K).
    const gemm::Operand<T, Patches<T>> pa{{px, g}, g.B * g.np, true, false};
    const gemm::Operand<T, gemm::Rows<T>> wb{{wt, g.kp}, g.D, true, gemm::vec_ok(w, g.kp)};
    return gemm::run<T>(s, pa, wb, out, g.B * g.np, g.D, g.kp);
  }
}

// part [parts, D, kp]: dTᵀ·P over each token range of `per` tokens.
template <class T>
cudaError_t dweight(cudaStream_t s, float* part, const T* dt, const T* img, const Geo& g, int64_t per, int64_t parts) {
  const int64_t M = g.B * g.np;
  if constexpr (std::is_same_v<T, float>) {
    const dim3 grid(blocks(g.kp, TN), blocks(g.D, TM), unsigned(parts));
    return launch<dweight_kernel>(grid, 256, 0, s, part, dt, img, g, per);
  } else {
    // A = dTᵀ [D, tokens] (rows of dT run along D: mn-contiguous), B = P [tokens, kp] gathered.
    const gemm::Operand<T, Tokens<T>> ta{{dt, g}, g.D, false, gemm::vec_ok(dt, g.D)};
    const gemm::Operand<T, Patches<T>> pb{{img, g}, g.kp, false, false};
    return gemm::run<T>(s, ta, pb, PartStore{part, g.D, g.kp}, g.D, g.kp, M, per);
  }
}

template <class T>
cudaError_t backward(cudaStream_t s, void* dw, void* db, void* dpos, const void* dt, const void* img, const Geo& g) {
  const T* dtt = static_cast<const T*>(dt);
  // Enough token splits to give every SM a few blocks; each split reduces its own range into its
  // own partial: splits·D·kp floats, at most D·kp plus 4·132 tiles (64×64 in f32: 8.7 MB;
  // 128×128 on tensor cores: 35 MB).
  const bool tc = !std::is_same_v<T, float>;
  const int tm = tc ? gemm::BM : TM, tn = tc ? gemm::BN : TN, tk = tc ? gemm::BK : TK;
  const int64_t M = g.B * g.np, tiles = int64_t(blocks(g.D, tm)) * blocks(g.kp, tn);
  const int64_t splits = std::max<int64_t>(1, std::min<int64_t>((M + 255) / 256, (4 * 132 + tiles - 1) / tiles));
  const int64_t per = ((M + splits - 1) / splits + tk - 1) / tk * tk, parts = (M + per - 1) / per;
  float* ws = nullptr;
  const int64_t nw = dw ? g.D * g.kp : 0, npd = (db || dpos) ? g.np * g.D : 0;
  cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&ws), size_t(parts * nw + npd + 1) * sizeof(float), s);
  if (e != cudaSuccess) return e;
  if (dw) {
    e = dweight<T>(s, ws, dtt, static_cast<const T*>(img), g, per, parts);
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
