// matmul_pack.h: packing of GEMM operands into the micro-kernel's layout, a template over the
// register tile so that each ISA file (matmul.cpp, matmul_avx2.cpp, matmul_avx512.cpp)
// instantiates it with its own MR/NR and instruction set. Fixed-size inner loops let the
// compiler vectorise them; packing was 30 % of the time of the small ViT GEMMs before.
// Include inside an anonymous namespace only (each ISA compiles its own copy).

// dst [kc][MR] = rows i0 .. i0+h of op(A), columns pc .. pc+kc; rows h .. MR are zero.
// A is [M,K], or [K,M] when ta.
template <int MR>
void pack_a(float* dst, const float* A, bool ta, int64_t M, int64_t K, int64_t i0, int64_t h, int64_t pc, int64_t kc) {
  if (ta) {
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = A + (pc + k) * M + i0;
      float* d = dst + k * MR;
      if (h == MR) {
        for (int r = 0; r < MR; ++r) d[r] = src[r];
      } else {
        for (int64_t r = 0; r < MR; ++r) d[r] = r < h ? src[r] : 0.f;
      }
    }
    return;
  }
  if (h == MR) {
    const float* rows[MR];
    for (int r = 0; r < MR; ++r) rows[r] = A + (i0 + r) * K + pc;
    for (int64_t k = 0; k < kc; ++k)
      for (int r = 0; r < MR; ++r) dst[k * MR + r] = rows[r][k];
    return;
  }
  for (int64_t k = 0; k < kc; ++k)
    for (int64_t r = 0; r < MR; ++r) dst[k * MR + r] = r < h ? A[(i0 + r) * K + pc + k] : 0.f;
}

// Rows k0 .. k1 of one B sliver: dst [kc][NR] (the sliver base), columns j0 .. j0+w of op(B),
// rows pc+k0 .. pc+k1; columns w .. NR are zero. B is [K,N], or [N,K] when tb.
template <int NR>
void pack_b(float* dst, const float* B, bool tb, int64_t N, int64_t K, int64_t j0, int64_t w, int64_t pc, int64_t k0, int64_t k1) {
  if (!tb) {
    for (int64_t k = k0; k < k1; ++k) {
      const float* src = B + (pc + k) * N + j0;
      float* d = dst + k * NR;
      if (w == NR) {
        for (int j = 0; j < NR; ++j) d[j] = src[j];
      } else {
        for (int64_t j = 0; j < NR; ++j) d[j] = j < w ? src[j] : 0.f;
      }
    }
    return;
  }
  if (w == NR) {
    const float* rows[NR];
    for (int j = 0; j < NR; ++j) rows[j] = B + (j0 + j) * K + pc;
    for (int64_t k = k0; k < k1; ++k)
      for (int j = 0; j < NR; ++j) dst[k * NR + j] = rows[j][k];
    return;
  }
  for (int64_t k = k0; k < k1; ++k)
    for (int64_t j = 0; j < NR; ++j) dst[k * NR + j] = j < w ? B[(j0 + j) * K + pc + k] : 0.f;
}
