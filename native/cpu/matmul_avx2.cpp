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
                  const float* add, int64_t ldadd) {
  // The C tile is read (or, on the first K block, written) only after the k loop; ask for
  // it now so that its cache misses overlap the arithmetic (worth ~30 % on large GEMMs).
  {
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + NR - 1), _MM_HINT_T0);
    }
  }
  // Likewise the rows added in the store (a position embedding: far apart, in L3 at best).
  if (add) {
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(add + r * ldadd), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(add + r * ldadd + NR - 1), _MM_HINT_T0);
    }
  }
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
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    float* cr = c + r * ldc;
    __m256 v0 = acc[r][0], v1 = acc[r][1];
    if (add) v0 = _mm256_add_ps(v0, _mm256_loadu_ps(add + r * ldadd)), v1 = _mm256_add_ps(v1, _mm256_loadu_ps(add + r * ldadd + 8));
    if (load_c) v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cr)), v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cr + 8));
    _mm256_storeu_ps(cr, v0);
    _mm256_storeu_ps(cr + 8, v1);
  }
}

#include "matmul_pack.h"

}  // namespace

// MC 240 × KC 512: the A block (480 KiB) in Zen 3's 512 KiB L2, a B sliver (32 KiB) in L1;
// fewer passes over C than KC 320 (4 instead of 7 on 2048³), +2 % there alone and +5–14 %
// with the per-thread column stripes (interleaved A/B runs in one process, noisy VM).
GemmKernel gemm_kernel_avx2() { return {ukernel_avx2, pack_a<MR>, pack_b<NR>, MR, NR, 240, 512, 3072}; }

}  // namespace mk
#pragma GCC pop_options
#else
namespace mk {
GemmKernel gemm_kernel_avx2() { return gemm_kernel_scalar(); }
}  // namespace mk
#endif
