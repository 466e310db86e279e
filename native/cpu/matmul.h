// matmul.h: the f32 GEMM of the CPU backend (GotoBLAS/BLIS structure: pack a KC-deep panel
// of B and of A, then an MR×NR register-blocked micro-kernel per ISA). matmul.cpp holds the
// driver and the scalar kernel; matmul_avx2.cpp and matmul_avx512.cpp the vector kernels.
//
// Operands are described by offsets rather than a fixed layout, so that other ops run through
// the same driver without copying their operands into a matrix first: patch_embed.cpp reads
// the patches of an image straight from the pixels (no im2col buffer) and writes tokens at a
// row offset inside a larger sequence.
#pragma once
#include <cstdint>
#include <cstring>  // memcpy in matmul_pack.h, which is included inside namespaces
#if defined(__SSE2__)
#include <xmmintrin.h>  // the same: matmul_pack.h's register transposes
#endif

namespace mk {

// Element (i, k) of a logical matrix is p[row(i) + col(k)], where
//   row(i) = rows ? rows[i] : i·rs,   col(k) = cols ? cols[k] : k·cs.
// Row-major X [R,C]: rs = C, cs = 1. Its transpose: rs = 1, cs = (X's row length).
struct GemmOperand {
  const float* p = nullptr;
  const int64_t* rows = nullptr;
  int64_t rs = 0;
  const int64_t* cols = nullptr;
  int64_t cs = 0;
};

// Where the product goes: element (i, j) of C is c[crow(i) + j], crow(i) = rows ? rows[i] : i·ld.
// When add is set, add[arow(i) + j] is added (arow(i) = add_rows ? add_rows[i] : i·add_ld; a
// bias is add_ld = 0). With accumulate the previous contents of C are added too.
struct GemmOut {
  float* p = nullptr;
  const int64_t* rows = nullptr;
  int64_t ld = 0;
  const float* add = nullptr;
  const int64_t* add_rows = nullptr;
  int64_t add_ld = 0;
  bool accumulate = false;
};

// Optional: while op(B) is packed (each element exactly once), also
//   sum[rows[k] + j] += op(B)(k, j),
// the reduction a backward pass wants from the same read (patch_embed.cpp: dPos from dTokens).
// Rows k that share a sum row must lie in one aligned group of `granule` rows (k / granule
// equal): packing tasks split only between groups, so no two write one sum row.
struct GemmBSum {
  float* sum = nullptr;
  const int64_t* rows = nullptr;
  int64_t granule = 1;
};

// Computes one full MR×NR tile:
//   c[r*ldc + j] = (load_c ? c[r*ldc + j] : 0) + (add ? add[r*ldadd + j] : 0) + Σ_k a[k*MR + r]·b[k*NR + j]
//   a [kc, MR] packed, b [kc, NR] packed, add [MR rows of stride ldadd, NR] or null.
using GemmUkernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                             int load_c, const float* add, int64_t ldadd);

// Packing into the kernel's layout (matmul_pack.h), instantiated per ISA with its MR/NR.
// Rows k0 .. k1 of slivers dst + t·kc·MR, each [kc][MR], from rows i0 .. i0+h of op(A) (h ≥ 1,
// any number of slivers), columns pc+k0 .. pc+k1; the last sliver zero-padded to MR rows.
using GemmPackA = void (*)(float* dst, const GemmOperand& A, int64_t i0, int64_t h, int64_t pc, int64_t kc,
                           int64_t k0, int64_t k1);
// Rows k0 .. k1 of one B sliver dst [kc][NR]: columns j0 .. j0+w of op(B), rows pc+k0 .. pc+k1;
// adds them into sum when it is set.
using GemmPackB = void (*)(float* dst, const GemmOperand& B, int64_t j0, int64_t w, int64_t pc, int64_t k0,
                           int64_t k1, const GemmBSum& sum);

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

// C = op(A)·op(B) (+ add) (+ C), op(A) [M,K], op(B) [K,N], on the CPU pool.
void gemm_f32(const GemmOut& C, const GemmOperand& A, const GemmOperand& B, int64_t M, int64_t N, int64_t K,
              const GemmBSum& bsum = {});

// C[M,N] = op(A)·op(B) (+bias) (+C when accumulate); see mamakit.h for the layouts.
void matmul_f32(float* c, const float* a, const float* b, const float* bias, int64_t M, int64_t N,
                int64_t K, bool trans_a, bool trans_b, bool accumulate);

}  // namespace mk
