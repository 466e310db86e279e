// matmul_avx2.cpp: the 6×16 AVX2+FMA GEMM micro-kernel (12 ymm accumulators). This file is
// compiled for AVX2 whatever the build flags; it runs only after isa() chose AVX2.
#include "matmul.h"

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include <immintrin.h>

namespace mk {
namespace {

constexpr int MR = 6, NR = 16;

void ukernel_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int load_c,
                  const float* bias) {
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b + k * NR), b1 = _mm256_load_ps(b + k * NR + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256 ar = _mm256_broadcast_ss(a + k * MR + r);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
  }
  __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
  if (bias) bias0 = _mm256_loadu_ps(bias), bias1 = _mm256_loadu_ps(bias + 8);
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    float* cr = c + r * ldc;
    __m256 v0 = _mm256_add_ps(acc[r][0], bias0), v1 = _mm256_add_ps(acc[r][1], bias1);
    if (load_c) v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cr)), v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cr + 8));
    _mm256_storeu_ps(cr, v0);
    _mm256_storeu_ps(cr + 8, v1);
  }
}

}  // namespace

GemmKernel gemm_kernel_avx2() { return {ukernel_avx2, MR, NR, 120, 256, 3072}; }

}  // namespace mk
#pragma GCC pop_options
#else
namespace mk {
GemmKernel gemm_kernel_avx2() { return gemm_kernel_scalar(); }
}  // namespace mk
#endif
