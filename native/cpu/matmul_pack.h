// matmul_pack.h: packing of GEMM operands (matmul.h's GemmOperand) into the micro-kernel's
// layout, a template over the register tile so that each ISA file (matmul.cpp,
// matmul_avx2.cpp, matmul_avx512.cpp) instantiates it with its own MR/NR and instruction set.
// Fixed-size inner loops let the compiler vectorise the two common layouts; packing was 30 %
// of the time of the small ViT GEMMs before. Gathered operands (patches) take the general loop.
// Include inside an anonymous namespace only (each ISA compiles its own copy).

inline int64_t op_row(const GemmOperand& X, int64_t i) { return X.rows ? X.rows[i] : i * X.rs; }
inline int64_t op_col(const GemmOperand& X, int64_t k) { return X.cols ? X.cols[k] : k * X.cs; }

// Rows i0 .. i0+h of op(A) (h may span several slivers), columns pc .. pc+kc, into slivers
// dst + t·kc·MR, each [kc][MR], the last zero-padded to MR rows.
template <int MR>
void pack_a(float* dst, const GemmOperand& A, int64_t i0, int64_t h, int64_t pc, int64_t kc) {
  const int64_t nsl = (h + MR - 1) / MR;
  if (!A.rows && A.rs == 1) {
    // Rows adjacent in memory (a transposed A, or dTokensᵀ): walk k outermost and copy the
    // whole run of h floats of each k into all slivers. Sliver by sliver, every k would touch
    // a new line of a distant row for 6 floats (dW GEMMs spent 30 % of their time here).
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = A.p + op_col(A, pc + k) + i0;
      // Each k is a distant row that no hardware prefetcher predicts; ask for the one 8 ahead.
      if (k + 8 < kc) {
        const char* ahead = reinterpret_cast<const char*>(A.p + op_col(A, pc + k + 8) + i0);
        for (int64_t b = 0; b < h * int64_t(sizeof(float)); b += 64) __builtin_prefetch(ahead + b);
      }
      float* d = dst + k * MR;
      int64_t t = 0;
      for (; t + 1 < nsl || (t < nsl && h % MR == 0); ++t) std::memcpy(d + t * kc * MR, src + t * MR, MR * sizeof(float));
      if (t < nsl) {
        const int64_t left = h - t * MR;
        for (int64_t r = 0; r < MR; ++r) d[t * kc * MR + r] = r < left ? src[t * MR + r] : 0.f;
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
      for (int64_t k = 0; k < kc; ++k)
        for (int r = 0; r < MR; ++r) ds[k * MR + r] = rows[r][k];
    } else {
      const float* rows[MR];
      for (int64_t r = 0; r < MR; ++r) rows[r] = r < hb ? A.p + op_row(A, ib + r) : nullptr;
      for (int64_t k = 0; k < kc; ++k) {
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
    for (int64_t k = k0; k < k1; ++k) {
      const float* src = B.p + op_row(B, pc + k) + j0;
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
