// matmul.h: the f32 GEMM of the CPU backend (GotoBLAS/BLIS structure: pack a KC-deep panel
// of B and of A, then an MR×NR register-blocked micro-kernel per ISA). matmul.cpp holds the
// driver and the scalar kernel; matmul_avx2.cpp and matmul_avx512.cpp the vector kernels.
#pragma once
#include <cstdint>

namespace mk {

// Computes one full MR×NR tile:
//   c[r*ldc + j] = (load_c ? c[r*ldc + j] : 0) + (bias ? bias[j] : 0) + Σ_k a[k*MR + r]·b[k*NR + j]
//   a [kc, MR] packed, b [kc, NR] packed, bias [NR] or null.
using GemmUkernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                             int load_c, const float* bias);

// Packing into the kernel's layout (matmul_pack.h), instantiated per ISA with its MR/NR.
using GemmPackA = void (*)(float* dst, const float* A, bool ta, int64_t M, int64_t K, int64_t i0, int64_t h,
                           int64_t pc, int64_t kc);
using GemmPackB = void (*)(float* dst, const float* B, bool tb, int64_t N, int64_t K, int64_t j0, int64_t w,
                           int64_t pc, int64_t k0, int64_t k1);

struct GemmKernel {
  GemmUkernel ukernel;
  GemmPackA pack_a;
  GemmPackB pack_b;
  int mr, nr;  // register tile
  int mc, kc;  // cache blocks: A block [mc, kc] stays in L2, a B sliver [kc, nr] in L1
  int nc;      // columns of B packed per pass (L3)
};

GemmKernel gemm_kernel_scalar();
GemmKernel gemm_kernel_avx2();
GemmKernel gemm_kernel_avx512();

// C[M,N] = op(A)·op(B) (+bias) (+C when accumulate); see mamakit.h for the layouts.
void matmul_f32(float* c, const float* a, const float* b, const float* bias, int64_t M, int64_t N,
                int64_t K, bool trans_a, bool trans_b, bool accumulate);

}  // namespace mk
