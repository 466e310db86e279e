// small_mm.h: a register-tiled C (+)= A·B for the small dense blocks inside fused ops
// (attention.cpp's tiles, local_align.cpp's sentence × patch scores), written against V.
// Include after simd.h in an op file; like simd.h it defines everything in mk::MK_ISA's
// anonymous namespace, so each ISA's copy stays its own.
#pragma once

namespace mk {
namespace MK_ISA {
namespace {

constexpr int MR = 6, NR = 2 * V::W;  // register tile of mm()

// C[r][0..n) (+)= Σ_k A(r, k)·B[k·ldb + 0..n) for r < R, n ≤ NR, where A(r, k) is
// A[r·lda + k], or A[k·lda + r] when TA (Aᵀ stored: the backward's Pᵀ·dO and dSᵀ·Q need no
// transposed copy).
template <int R, bool TA>
void mm_tile(float* c, int64_t ldc, const float* a, int64_t lda, const float* b, int64_t ldb, int64_t K, int64_t n,
             bool acc) {
  V c0[R], c1[R];
  for (int r = 0; r < R; ++r) c0[r] = c1[r] = V::zero();
  if (n == NR) {
    for (int64_t k = 0; k < K; ++k) {
      const V b0 = V::load(b + k * ldb), b1 = V::load(b + k * ldb + V::W);
      for (int r = 0; r < R; ++r) {
        const V ar = V::set1(TA ? a[k * lda + r] : a[r * lda + k]);
        c0[r] = V::fma(ar, b0, c0[r]);
        c1[r] = V::fma(ar, b1, c1[r]);
      }
    }
    for (int r = 0; r < R; ++r) {
      float* cr = c + r * ldc;
      if (acc) c0[r] = c0[r] + V::load(cr), c1[r] = c1[r] + V::load(cr + V::W);
      c0[r].store(cr);
      c1[r].store(cr + V::W);
    }
    return;
  }
  const int64_t n0 = n < V::W ? n : V::W, n1 = n - n0;
  for (int64_t k = 0; k < K; ++k) {
    const V b0 = load_n(b + k * ldb, n0), b1 = n1 > 0 ? load_n(b + k * ldb + V::W, n1) : V::zero();
    for (int r = 0; r < R; ++r) {
      const V ar = V::set1(TA ? a[k * lda + r] : a[r * lda + k]);
      c0[r] = V::fma(ar, b0, c0[r]);
      c1[r] = V::fma(ar, b1, c1[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
    if (acc) {
      c0[r] = c0[r] + load_n(cr, n0);
      if (n1 > 0) c1[r] = c1[r] + load_n(cr + V::W, n1);
    }
    store_n(c0[r], cr, n0);
    if (n1 > 0) store_n(c1[r], cr + V::W, n1);
  }
}

// C [M, N] (+)= A [M, K] · B [K, N], all row-major with leading dimensions lda, ldb, ldc; with
// TA, A is stored transposed ([K, M], leading dimension lda).
template <bool TA = false>
void mm(float* c, int64_t ldc, const float* a, int64_t lda, const float* b, int64_t ldb, int64_t M, int64_t N,
        int64_t K, bool acc) {
  for (int64_t j = 0; j < N; j += NR) {
    const int64_t n = N - j < NR ? N - j : NR;
    int64_t i = 0;
    auto rows = [&](int64_t r) { return TA ? a + r : a + r * lda; };
    for (; i + MR <= M; i += MR) mm_tile<MR, TA>(c + i * ldc + j, ldc, rows(i), lda, b + j, ldb, K, n, acc);
    switch (M - i) {
      case 5: mm_tile<5, TA>(c + i * ldc + j, ldc, rows(i), lda, b + j, ldb, K, n, acc); break;
      case 4: mm_tile<4, TA>(c + i * ldc + j, ldc, rows(i), lda, b + j, ldb, K, n, acc); break;
      case 3: mm_tile<3, TA>(c + i * ldc + j, ldc, rows(i), lda, b + j, ldb, K, n, acc); break;
      case 2: mm_tile<2, TA>(c + i * ldc + j, ldc, rows(i), lda, b + j, ldb, K, n, acc); break;
      case 1: mm_tile<1, TA>(c + i * ldc + j, ldc, rows(i), lda, b + j, ldb, K, n, acc); break;
      default: break;
    }
  }
}

}  // namespace
}  // namespace MK_ISA
}  // namespace mk
