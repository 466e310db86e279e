// matmul_pack.h: packing of GEMM operands (matmul.h's GemmOperand) into the micro-kernel's
// layout, a template over the register tile so that each ISA file (matmul.cpp,
// matmul_avx2.cpp, matmul_avx512.cpp) instantiates it with its own MR/NR and instruction set.
// Fixed-size inner loops let the compiler vectorise the two common layouts; packing was 30 %
// of the time of the small ViT GEMMs before. Gathered operands (patches) take the general loop.
// Include inside an anonymous namespace only (each ISA compiles its own copy).

inline int64_t op_row(const GemmOperand& X, int64_t i) { return X.rows ? X.rows[i] : i * X.rs; }
inline int64_t op_col(const GemmOperand& X, int64_t k) { return X.cols ? X.cols[k] : k * X.cs; }

// Rows i0 .. i0+h of op(A) (h may span several slivers), columns pc+k0 .. pc+k1, into rows
// k0 .. k1 of slivers dst + t·kc·MR, each [kc][MR], the last zero-padded to MR rows.
template <int MR>
void pack_a(float* dst, const GemmOperand& A, int64_t i0, int64_t h, int64_t pc, int64_t kc, int64_t k0, int64_t k1) {
  static_assert(MR % 4 == 0 || MR % 4 == 2, "the register transposes below take rows in fours and one pair");
  const int64_t nsl = (h + MR - 1) / MR;
  if (!A.rows && A.rs == 1) {
    // Rows adjacent in memory (a transposed A, or dTokensᵀ): take 8 k at a time (8 source
    // runs of h floats, in L1 together) and fill each sliver's 8·MR floats contiguously, so
    // that the stores write whole lines instead of MR floats of a distant line per k.
    constexpr int64_t KB = 8;
    for (int64_t kb0 = k0; kb0 < k1; kb0 += KB) {
      const int64_t kb = k1 - kb0 < KB ? k1 - kb0 : KB;
      const float* src[KB];
      for (int64_t u = 0; u < kb; ++u) src[u] = A.p + op_col(A, pc + kb0 + u) + i0;
      // The next block's runs are distant and no hardware prefetcher predicts them.
      for (int64_t u = kb0 + KB; u < kb0 + 2 * KB && u < k1; ++u) {
        const char* ahead = reinterpret_cast<const char*>(A.p + op_col(A, pc + u) + i0);
        for (int64_t b = 0; b < h * int64_t(sizeof(float)); b += 64) __builtin_prefetch(ahead + b);
      }
      for (int64_t t = 0; t < nsl; ++t) {
        float* d = dst + t * kc * MR + kb0 * MR;
        const int64_t left = h - t * MR;
        if (left >= MR) {
          for (int64_t u = 0; u < kb; ++u) std::memcpy(d + u * MR, src[u] + t * MR, MR * sizeof(float));
        } else {
          for (int64_t u = 0; u < kb; ++u)
            for (int64_t r = 0; r < MR; ++r) d[u * MR + r] = r < left ? src[u][t * MR + r] : 0.f;
        }
      }
    }
    return;
  }
  for (int64_t t = 0; t < nsl; ++t) {
    const int64_t ib = i0 + t * MR, hb = h - t * MR < MR ? h - t * MR : MR;
    float* ds = dst + t * kc * MR;
    if (!A.cols && A.cs == 1 && hb == MR) {
      const float* rows[MR];
      for (int r = 0; r < MR; ++r) rows[r] = A.p + op_row(A, ib + r) + pc;
      // The next sliver's rows are short runs (kc floats each) that the hardware prefetchers
      // pick up late: ask for them a line at a time while this sliver is copied.
      const float* next[MR] = {};
      const bool ahead = t + 1 < nsl && h - (t + 1) * MR >= MR;
      if (ahead)
        for (int r = 0; r < MR; ++r) next[r] = A.p + op_row(A, ib + MR + r) + pc;
      int64_t k = k0;
#if defined(__SSE2__)
      // 4 k at a time: 4×4 transposes of rows in fours (and the last two rows as pairs when
      // MR is 6). Element by element this copy ran at ~4 GB/s from L2 and was 14-21 % of the
      // ViT's forward and dX GEMMs; transposed in registers it is ~4× faster (6 rows × 288 k).
      for (; k + 4 <= k1; k += 4) {
        if (ahead && k % 16 == 0)
          for (int r = 0; r < MR; ++r) __builtin_prefetch(next[r] + k);
        float* d = ds + k * MR;
        for (int g = 0; g + 4 <= MR; g += 4) {
          __m128 r0 = _mm_loadu_ps(rows[g] + k), r1 = _mm_loadu_ps(rows[g + 1] + k);
          __m128 r2 = _mm_loadu_ps(rows[g + 2] + k), r3 = _mm_loadu_ps(rows[g + 3] + k);
          _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
          _mm_storeu_ps(d + g, r0);
          _mm_storeu_ps(d + MR + g, r1);
          _mm_storeu_ps(d + 2 * MR + g, r2);
          _mm_storeu_ps(d + 3 * MR + g, r3);
        }
        if constexpr (MR % 4 == 2) {
          constexpr int g = MR - 2;
          const __m128 a = _mm_loadu_ps(rows[g] + k), b = _mm_loadu_ps(rows[g + 1] + k);
          const __m128 lo = _mm_unpacklo_ps(a, b), hi = _mm_unpackhi_ps(a, b);  // (k, k+1), (k+2, k+3)
          _mm_storel_pi(reinterpret_cast<__m64*>(d + g), lo);
          _mm_storeh_pi(reinterpret_cast<__m64*>(d + MR + g), lo);
          _mm_storel_pi(reinterpret_cast<__m64*>(d + 2 * MR + g), hi);
          _mm_storeh_pi(reinterpret_cast<__m64*>(d + 3 * MR + g), hi);
        }
      }
#endif
      for (; k < k1; ++k) {
        if (ahead && k % 16 == 0)
          for (int r = 0; r < MR; ++r) __builtin_prefetch(next[r] + k);
        for (int r = 0; r < MR; ++r) ds[k * MR + r] = rows[r][k];
      }
    } else {
      const float* rows[MR];
      for (int64_t r = 0; r < MR; ++r) rows[r] = r < hb ? A.p + op_row(A, ib + r) : nullptr;
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t col = op_col(A, pc + k);
        for (int64_t r = 0; r < MR; ++r) ds[k * MR + r] = r < hb ? rows[r][col] : 0.f;
      }
    }
  }
}

template <int NR>
void pack_b(float* dst, const GemmOperand& B, int64_t j0, int64_t w, int64_t pc, int64_t k0, int64_t k1, const GemmBSum& sum) {
  if (!B.cols && B.cs == 1) {
    // Columns adjacent in memory (B [K,N], or token rows of dTokens): NR floats per k.
    // Evenly spaced rows: ask for the same columns 8 rows on, in the next group (+1 to +5 %
    // on the 192-row dW GEMMs of a small ViT, whose packing is 15-20 % of their time). The
    // address is formed as an integer: past the last row it points outside B, which a
    // prefetch may do but a pointer may not.
    const uintptr_t ahead = B.rows ? 0 : uintptr_t(8 * B.rs * int64_t(sizeof(float)));
    for (int64_t k = k0; k < k1; ++k) {
      const float* src = B.p + op_row(B, pc + k) + j0;
      if (ahead) __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(src) + ahead));
      float* d = dst + k * NR;
      if (w == NR) {
        std::memcpy(d, src, NR * sizeof(float));  // a loop here stayed scalar (may-alias)
      } else {
        for (int64_t j = 0; j < NR; ++j) d[j] = j < w ? src[j] : 0.f;
      }
    }
  } else if (!B.rows && B.rs == 1 && w == NR) {
    const float* cols[NR];
    for (int j = 0; j < NR; ++j) cols[j] = B.p + op_col(B, j0 + j) + pc;
    for (int64_t k = k0; k < k1; ++k)
      for (int j = 0; j < NR; ++j) dst[k * NR + j] = cols[j][k];
  } else {
    int64_t cols[NR];
    for (int64_t j = 0; j < NR; ++j) cols[j] = j < w ? op_col(B, j0 + j) : 0;
    for (int64_t k = k0; k < k1; ++k) {
      const float* src = B.p + op_row(B, pc + k);
      for (int64_t j = 0; j < NR; ++j) dst[k * NR + j] = j < w ? src[cols[j]] : 0.f;
    }
  }
  if (sum.sum) {
    for (int64_t k = k0; k < k1; ++k) {
      float* o = sum.sum + sum.rows[pc + k] + j0;
      const float* d = dst + k * NR;
      for (int64_t j = 0; j < w; ++j) o[j] += d[j];
    }
  }
}
