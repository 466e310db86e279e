// matmul.cu: C = op(A)·op(B) (+bias) (+C) with f32 accumulation. bf16/f16 operands run on tensor
// cores (gemm.cuh: 128×128×32 tiles, cp.async 3-stage ring, ldmatrix, mma.m16n8k16), writing C in
// the operands' dtype or in f32 (mixed-precision weight gradients); f32 runs on a 64×64 FMA tile
// kernel (256 threads, 4×4 per thread, K in steps of 16). Tested by
// native/tests/backend_ops/matmul.cpp and test/kernels/matmul.test.ts.
#include "../common/matmul_args.h"
#include "gemm.cuh"

namespace mk_cuda {
namespace {

// The epilogue both kernels share: c[m, n] = v (+ bias[n]) (+ the previous c[m, n]), in Tc.
template <class T, class Tc>
struct Store {
  Tc* c;
  const T* bias;
  int64_t N;
  bool acc;
  __device__ void operator()(int64_t m, int64_t n, float v) const {
    if (bias) v += to_f32(bias[n]);
    if (acc) v += to_f32(c[m * N + n]);
    c[m * N + n] = from_f32<Tc>(v);
  }
};

constexpr int TM = 64, TN = 64, TK = 16;

__global__ void matmul_f32_kernel(Store<float, float> out, const float* __restrict__ a, const float* __restrict__ b,
                                  int64_t M, int64_t N, int64_t K, bool ta, bool tb) {
  __shared__ float as[TK][TM + 1];  // as[k][m]
  __shared__ float bs[TK][TN + 1];  // bs[k][n]
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t m0 = int64_t(blockIdx.y) * TM, n0 = int64_t(blockIdx.x) * TN;
  float sum[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += TK) {
    for (int i = threadIdx.x; i < TK * TM; i += blockDim.x) {
      const int kk = i % TK, mm = i / TK;
      const int64_t m = m0 + mm, k = k0 + kk;
      as[kk][mm] = m < M && k < K ? (ta ? a[k * M + m] : a[m * K + k]) : 0.f;
    }
    for (int i = threadIdx.x; i < TK * TN; i += blockDim.x) {
      const int nn = i % TN, kk = i / TN;
      const int64_t n = n0 + nn, k = k0 + kk;
      bs[kk][nn] = n < N && k < K ? (tb ? b[n * K + k] : b[k * N + n]) : 0.f;
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
      const int64_t m = m0 + ty * 4 + i, n = n0 + tx * 4 + j;
      if (m < M && n < N) out(m, n, sum[i][j]);
    }
}

cudaError_t run_f32(cudaStream_t stream, const Store<float, float>& out, const void* a, const void* b, int64_t M, int64_t N,
                    int64_t K, bool ta, bool tb) {
  const dim3 grid(unsigned((N + TN - 1) / TN), unsigned((M + TM - 1) / TM));
  if (grid.y > 65535) return cudaErrorInvalidConfiguration;
  return launch<matmul_f32_kernel>(grid, 256, 0, stream, out, static_cast<const float*>(a), static_cast<const float*>(b), M, N, K,
                                   ta, tb);
}

// An operand stored row-major with `rows`·`ld` elements: kcontig when its rows run along K.
template <class T>
gemm::Operand<T, gemm::Rows<T>> plain(const void* p, int64_t ld, int64_t mn_extent, bool kcontig) {
  return {{static_cast<const T*>(p), ld}, mn_extent, kcontig, gemm::vec_ok(p, ld)};
}

// A [M,K] (ta: [K,M]) and B [K,N] (tb: [N,K]) as tensor-core operands; C in Tc.
template <class T, class Tc>
cudaError_t run_tc(cudaStream_t stream, void* c, const void* a, const void* b, const void* bias, int64_t M, int64_t N, int64_t K,
                   bool ta, bool tb, bool acc) {
  const Store<T, Tc> out{static_cast<Tc*>(c), static_cast<const T*>(bias), N, acc};
  return gemm::run<T>(stream, plain<T>(a, ta ? M : K, M, !ta), plain<T>(b, tb ? K : N, N, tb), out, M, N, K);
}

}  // namespace

cudaError_t launch_matmul(cudaStream_t stream, mk_dtype dtype, mk_dtype c_dtype, void* c, const void* a, const void* b,
                          const void* bias, int64_t M, int64_t N, int64_t K, bool ta, bool tb, bool acc) {
  return by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    if constexpr (std::is_same_v<St, float>)
      return run_f32(stream, {static_cast<float*>(c), static_cast<const float*>(bias), N, acc}, a, b, M, N, K, ta, tb);
    else if (c_dtype == MK_F32)
      return run_tc<St, float>(stream, c, a, b, bias, M, N, K, ta, tb, acc);
    else
      return run_tc<St, St>(stream, c, a, b, bias, M, N, K, ta, tb, acc);
  });
}

namespace {

mk_status cu_matmul(mk_context* ctx, void* c, const void* a, const void* b, const void* bias, mk_dtype dtype, mk_dtype c_dtype,
                    int64_t M, int64_t N, int64_t K, int ta, int tb, int acc) {
  namespace args = mk::matmul_args;
  if (const std::string why = args::problem(c, a, b, M, N, K); !why.empty()) return fail(MK_ERR_INVALID, why);
  if (!args::allowed(dtype, c_dtype))
    return fail(MK_ERR_UNSUPPORTED, args::refusal("the CUDA backend", dtype, c_dtype, "c in the operands' dtype, or f32 with bf16 or f16 operands"));
  return check(launch_matmul(ctx->stream, dtype, c_dtype, c, a, b, bias, M, N, K, ta, tb, acc), "matmul");
}

}  // namespace

MK_CUDA_ENTRY(matmul, cu_matmul);

}  // namespace mk_cuda
