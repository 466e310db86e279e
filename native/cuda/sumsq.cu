// sumsq.cu: Σ x² over x [n] in double (native/cpu/sumsq.cpp), for the global gradient norm. Each
// block sums its grid-stride share in double (squares in double: exact, and no f32 overflow) and
// reduces it by warp shuffles and shared memory to one partial; one block then adds the partials
// in a fixed order (deterministic: no atomics), and the single result is copied to the host.
#include "reduce.cuh"

namespace mk_cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 1024;  // partials the final block adds

// Σ v over the block (reduce.cuh), in every thread.
__device__ __forceinline__ double sum_of(double v) {
  __shared__ double sh[1][32];
  double a[1] = {v};
  block_sum(a, sh);
  return a[0];
}

// partial [gridDim.x] (double) = Σ x² over this block's grid-stride share of x [n].
template <class T>
__global__ void partial_kernel(double* __restrict__ partial, const T* __restrict__ x, int64_t n) {
  double acc = 0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = to_f32(x[i]);
    acc += double(v) * double(v);
  }
  const double s = sum_of(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// out [1] (double) = Σ partial [count], one block.
__global__ void final_kernel(double* __restrict__ out, const double* __restrict__ partial, int count) {
  double acc = 0;
  for (int i = int(threadIdx.x); i < count; i += int(blockDim.x)) acc += partial[i];
  const double s = sum_of(acc);
  if (threadIdx.x == 0) *out = s;
}

template <class T>
cudaError_t partials(cudaStream_t s, double* ws, const void* x, int64_t n, int count) {
  return launch<partial_kernel<T>>(unsigned(count), kThreads, 0, s, ws, static_cast<const T*>(x), n);
}

mk_status cu_sumsq(mk_context* ctx, double* out, const void* x, mk_dtype dtype, int64_t n) {
  if (n <= 0) {
    *out = 0;
    return MK_OK;
  }
  const int count = int(std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks));
  double* ws = nullptr;  // [count] partials, then the total at ws[count]
  cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&ws), size_t(count + 1) * sizeof(double), ctx->stream);
  if (e != cudaSuccess) return check(e, "sumSquares");
  e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return partials<St>(ctx->stream, ws, x, n, count);
  });
  if (e == cudaSuccess) e = launch<final_kernel>(1, kThreads, 0, ctx->stream, ws + count, ws, count);
  if (e == cudaSuccess) e = to_host(out, ws + count, sizeof(double), ctx->stream);
  const cudaError_t f = cudaFreeAsync(ws, ctx->stream);
  return check(e != cudaSuccess ? e : f, "sumSquares");
}

}  // namespace

MK_CUDA_ENTRY(sumsq, cu_sumsq);

}  // namespace mk_cuda
