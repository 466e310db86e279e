// reduce.cuh: block-wide sums and the fixed-order addition of per-block partials, the pieces of
// the CUDA backend's deterministic reductions (no float atomics: the same bits every run).
#pragma once
#include "common.cuh"

namespace mk_cuda {

// Sums each v[k] over the block (blockDim.x a multiple of 32, at most 1024); every thread gets
// the totals, the same bits in each (the xor butterfly adds the same pairs in every lane).
// sh: the caller's static shared memory. The barrier at entry keeps the readers of a previous
// call ahead of this call's writers.
template <class F, int N>
__device__ __forceinline__ void block_sum(F (&v)[N], F (&sh)[N][32]) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  for (int k = 0; k < N; ++k)
    for (int o = 16; o > 0; o >>= 1) v[k] += __shfl_xor_sync(0xffffffffu, v[k], o);
  __syncthreads();
  if (lane == 0)
    for (int k = 0; k < N; ++k) sh[k][warp] = v[k];
  __syncthreads();
  for (int k = 0; k < N; ++k) {
    v[k] = lane < warps ? sh[k][lane] : F(0);
    for (int o = 16; o > 0; o >>= 1) v[k] += __shfl_xor_sync(0xffffffffu, v[k], o);
  }
}

// out [D] += Σ_p part [P, D], summed in f32 in the order of p and rounded once.
template <class T>
__global__ void add_partials_kernel(T* __restrict__ out, const float* __restrict__ part, int64_t P, int64_t D) {
  for (int64_t d = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; d < D; d += int64_t(gridDim.x) * blockDim.x) {
    float s = 0.f;
    for (int64_t p = 0; p < P; ++p) s += part[p * D + d];
    out[d] = from_f32<T>(to_f32(out[d]) + s);
  }
}

}  // namespace mk_cuda
