// matmul.cu: C = op(A)·op(B) (+bias) (+C) for f32, bf16 and f16 with f32 accumulation.
// A 64×64 output tile per block of 256 threads, each thread owning a 4×4 sub-tile, K in
// steps of 16 through shared memory. Correct first; tensor-core versions replace it later.
#include "common.cuh"

namespace mk_cuda {
namespace {

constexpr int TM = 64, TN = 64, TK = 16;

template <class T>
__global__ void matmul_kernel(T* __restrict__ c, const T* __restrict__ a, const T* __restrict__ b,
                              const T* __restrict__ bias, int64_t M, int64_t N, int64_t K,
                              bool ta, bool tb, bool acc) {
  __shared__ float as[TK][TM + 1];  // as[k][m]
  __shared__ float bs[TK][TN + 1];  // bs[k][n]
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t m0 = int64_t(blockIdx.y) * TM, n0 = int64_t(blockIdx.x) * TN;
  float sum[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += TK) {
    for (int i = threadIdx.x; i < TK * TM; i += blockDim.x) {
      const int kk = i % TK, mm = i / TK;
      const int64_t m = m0 + mm, k = k0 + kk;
      float v = 0.f;
      if (m < M && k < K) v = to_f32(ta ? a[k * M + m] : a[m * K + k]);
      as[kk][mm] = v;
    }
    for (int i = threadIdx.x; i < TK * TN; i += blockDim.x) {
      const int nn = i % TN, kk = i / TN;
      const int64_t n = n0 + nn, k = k0 + kk;
      float v = 0.f;
      if (n < N && k < K) v = to_f32(tb ? b[n * K + k] : b[k * N + n]);
      bs[kk][nn] = v;
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
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t n = n0 + tx * 4 + j;
      if (n >= N) continue;
      float v = sum[i][j];
      if (bias) v += to_f32(bias[n]);
      if (acc) v += to_f32(c[m * N + n]);
      c[m * N + n] = from_f32<T>(v);
    }
  }
}

template <class T>
cudaError_t run(cudaStream_t stream, void* c, const void* a, const void* b, const void* bias,
                   int64_t M, int64_t N, int64_t K, bool ta, bool tb, bool acc) {
  const dim3 grid(unsigned((N + TN - 1) / TN), unsigned((M + TM - 1) / TM));
  if (grid.y > 65535) return cudaErrorInvalidConfiguration;
  return launch<matmul_kernel<T>>(grid, 256, 0, stream, static_cast<T*>(c), static_cast<const T*>(a),
                                  static_cast<const T*>(b), static_cast<const T*>(bias), M, N, K, ta, tb, acc);
}

}  // namespace

cudaError_t launch_matmul(cudaStream_t stream, mk_dtype dtype, void* c, const void* a,
                          const void* b, const void* bias, int64_t M, int64_t N, int64_t K,
                          bool ta, bool tb, bool acc) {
  return by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return run<St>(stream, c, a, b, bias, M, N, K, ta, tb, acc);
  });
}

namespace {

mk_status cu_matmul(mk_context* ctx, void* c, const void* a, const void* b, const void* bias,
                    mk_dtype dtype, int64_t M, int64_t N, int64_t K, int ta, int tb, int acc) {
  return check(launch_matmul(ctx->stream, dtype, c, a, b, bias, M, N, K, ta, tb, acc), "matmul");
}

}  // namespace

MK_CUDA_ENTRY(matmul, cu_matmul);

}  // namespace mk_cuda
