// matmul_pack.h: packing of GEMM operands (matmul.h's GemmOperand) into the micro-kernel's
// layout, a template over the register tile so that each ISA file (matmul.cpp,
// matmul_avx2.cpp, matmul_avx512.cpp) instantiates it with its own MR/NR and instruction set.
// Fixed-size inner loops let the compiler vectorise the two common layouts; packing was 30 %
// of the time of the small ViT GEMMs before. Gathered operands (patches) take the general loop.
// Include inside an anonymous namespace only (each ISA compiles its own copy).

inline int64_t op_row(const GemmOperand& X, int64_t i) { return X.rows ? X.rows[i] : i * X.rs; }
inline int64_t op_col(const GemmOperand& X, int64_t k) { return X.cols ? X.cols[k] : k * X.cs; }

template <int MR>
void pack_a(float* dst, const GemmOperand& A, int64_t i0, int64_t h, int64_t pc, int64_t kc, const GemmASum& sum) {
  if (!A.rows && A.rs == 1) {
    // Rows adjacent in memory (a transposed A, or dTokensᵀ): each k is one run of MR floats.
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = A.p + op_col(A, pc + k) + i0;
      float* d = dst + k * MR;
      if (h == MR) {
        for (int r = 0; r < MR; ++r) d[r] = src[r];
      } else {
        for (int64_t r = 0; r < MR; ++r) d[r] = r < h ? src[r] : 0.f;
      }
    }
  } else if (!A.cols && A.cs == 1 && h == MR) {
    const float* rows[MR];
    for (int r = 0; r < MR; ++r) rows[r] = A.p + op_row(A, i0 + r) + pc;
    for (int64_t k = 0; k < kc; ++k)
      for (int r = 0; r < MR; ++r) dst[k * MR + r] = rows[r][k];
  } else {
    const float* rows[MR];
    for (int64_t r = 0; r < MR; ++r) rows[r] = r < h ? A.p + op_row(A, i0 + r) : nullptr;
    for (int64_t k = 0; k < kc; ++k) {
      const int64_t col = op_col(A, pc + k);
      for (int64_t r = 0; r < MR; ++r) dst[k * MR + r] = r < h ? rows[r][col] : 0.f;
    }
  }
  if (sum.sum) {
    for (int64_t k = 0; k < kc; ++k) {
      float* s = sum.sum + sum.sum_rows[pc + k] + i0;
      const float* d = dst + k * MR;
      for (int64_t r = 0; r < h; ++r) s[r] += d[r];
    }
  }
}

template <int NR>
void pack_b(float* dst, const GemmOperand& B, int64_t j0, int64_t w, int64_t pc, int64_t k0, int64_t k1) {
  if (!B.cols && B.cs == 1) {
    // Columns adjacent in memory (B [K,N], or the patch rows of an image): NR floats per k.
    for (int64_t k = k0; k < k1; ++k) {
      const float* src = B.p + op_row(B, pc + k) + j0;
      float* d = dst + k * NR;
      if (w == NR) {
        for (int j = 0; j < NR; ++j) d[j] = src[j];
      } else {
        for (int64_t j = 0; j < NR; ++j) d[j] = j < w ? src[j] : 0.f;
      }
    }
    return;
  }
  if (!B.rows && B.rs == 1 && w == NR) {
    const float* cols[NR];
    for (int j = 0; j < NR; ++j) cols[j] = B.p + op_col(B, j0 + j) + pc;
    for (int64_t k = k0; k < k1; ++k)
      for (int j = 0; j < NR; ++j) dst[k * NR + j] = cols[j][k];
    return;
  }
  int64_t cols[NR];
  for (int64_t j = 0; j < NR; ++j) cols[j] = j < w ? op_col(B, j0 + j) : 0;
  for (int64_t k = k0; k < k1; ++k) {
    const float* src = B.p + op_row(B, pc + k);
    for (int64_t j = 0; j < NR; ++j) dst[k * NR + j] = j < w ? src[cols[j]] : 0.f;
  }
}
