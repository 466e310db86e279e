// matmul_avx512.cpp: the 12×32 AVX-512 GEMM micro-kernel (24 zmm accumulators). Compiled for
// AVX-512 whatever the build flags; it runs only after isa() chose AVX-512.
#include "matmul.h"

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,fma")
#include <immintrin.h>

namespace mk {
namespace {

constexpr int MR = 12, NR = 32;

void ukernel_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int load_c,
                    const float* add, int64_t ldadd) {
  // The C tile is read (or written) only after the k loop; ask for it now so that its
  // cache misses overlap the arithmetic.
  {
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 16), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + NR - 1), _MM_HINT_T0);
    }
  }
  // Likewise the rows added in the store (a position embedding: far apart, in L3 at best).
  if (add) {
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(add + r * ldadd), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(add + r * ldadd + NR - 1), _MM_HINT_T0);
    }
  }
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b + k * NR), b1 = _mm512_load_ps(b + k * NR + 16);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(a[k * MR + r]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
    float* cr = c + r * ldc;
    __m512 v0 = acc[r][0], v1 = acc[r][1];
    if (add) v0 = _mm512_add_ps(v0, _mm512_loadu_ps(add + r * ldadd)), v1 = _mm512_add_ps(v1, _mm512_loadu_ps(add + r * ldadd + 16));
    if (load_c) v0 = _mm512_add_ps(v0, _mm512_loadu_ps(cr)), v1 = _mm512_add_ps(v1, _mm512_loadu_ps(cr + 16));
    _mm512_storeu_ps(cr, v0);
    _mm512_storeu_ps(cr + 16, v1);
  }
}

#include "matmul_pack.h"

}  // namespace

GemmKernel gemm_kernel_avx512() { return {ukernel_avx512, pack_a<MR>, pack_b<NR>, MR, NR, 144, 256, 3072}; }

}  // namespace mk
#pragma GCC pop_options
#else
namespace mk {
GemmKernel gemm_kernel_avx512() { return gemm_kernel_scalar(); }
}  // namespace mk
#endif
