// gemm.cuh: the tensor-core GEMM core for bf16/f16 operands with f32 accumulation, shared by
// matmul.cu (plain matrices, every transpose) and patch_embed.cu (pixels gathered as im2col
// patches, tokens at a stride). out(m, n) = Σ_k A(m, k)·B(k, n) over one split of K per blockIdx.z;
// where the operands come from is a loader policy (Operand<T, Src>), what happens to each result
// an epilogue policy (a functor ep(m, n, v)). Tested through both ops by
// native/tests/backend_ops/{matmul,patch_embed}.cpp on the emulated library.
//
// Block tile 128×128×32, 8 warps as 2 (M) × 4 (N), each warp 64×32 = 4×4 mma.m16n8k16 tiles:
// per 16-wide K step a warp issues 6 ldmatrix.x4 (4 for A, 2 for B) for 16 mma, and a block reads
// each shared element into registers 2 (A) or 4 (B) times, 64 FLOP per shared byte. K steps of
// 32 are two mma K steps per barrier. Global → shared goes by cp.async 16 bytes (8 elements) at a
// time, in a 3-stage ring: tile kt+2 is in flight while tile kt is multiplied, which hides
// global latency on sm_80/sm_90 at 60 KB of shared memory per block (3 blocks fit an SM's 228 KB,
// registers allow 2). Shared → registers goes by ldmatrix (.trans where the operand's contiguous
// direction in memory is M or N rather than K).
//
// Shared layout of one operand tile: "k-contiguous" [128 rows (m or n)][32 + 8] when the source is
// contiguous along K, "mn-contiguous" [32 rows (k)][128 + 8] when it is contiguous along M or N.
// The 8 padding elements (16 bytes) shift consecutive rows by 4 banks (80 B rows: 20 words; 272 B
// rows: 68 words), so the 8 row addresses of one ldmatrix matrix hit 8 disjoint groups of 4
// banks: no conflicts, and every row stays 16-byte aligned for cp.async and ldmatrix.
#pragma once
#include "common.cuh"
#include "ptx.cuh"

namespace mk_cuda::gemm {

constexpr int BM = 128, BN = 128, BK = 32, STAGES = 3, WARPS = 8, THREADS = WARPS * 32;
constexpr int PAD = 8;
constexpr int KS = BK + PAD;  // row stride of a k-contiguous tile (elements)
constexpr int MS = BM + PAD;  // row stride of an mn-contiguous tile (BM == BN)
constexpr int SLAB = BM * KS > BK * MS ? BM * KS : BK * MS;  // elements of one operand tile
static_assert(BM == BN, "one slab size and one loader for both operands");

// Dynamic shared memory of one launch: STAGES × (A slab, B slab).
template <class T>
constexpr size_t smem_bytes() {
  return size_t(STAGES) * 2 * SLAB * sizeof(T);
}

// A source whose rows (the outer index of a tile: m or n when k-contiguous, k otherwise) are
// contiguous runs at `p + row·ld`: a plain row-major matrix.
template <class T>
struct Rows {
  static constexpr bool kRows = true;
  const T* p;
  int64_t ld;
  __device__ const T* row(int64_t o) const { return p + o * ld; }
  __device__ T at(int64_t o, int64_t i) const { return row(o)[i]; }
};

// One operand: its source, its extent along M (or N), and its layout. kcontig: the source is
// contiguous along K (A [M,K], Bᵀ stored [N,K]). vec: 8-element runs are 16-byte aligned and
// never straddle the source's end (the contiguous extent a multiple of 8, the pointer aligned),
// so tiles go by cp.async; otherwise element by element (plain loads and stores into the same
// stage, which the same barriers order).
template <class T, class Src>
struct Operand {
  Src src;
  int64_t mn_extent;
  bool kcontig, vec;

  // The tile of rows mn0.. and columns k0.. (k < k_end) into `slab`; zeros outside.
  __device__ void load(T* slab, int64_t mn0, int64_t k0, int64_t k_end) const {
    const int per_row = kcontig ? BK / 8 : BM / 8, stride = kcontig ? KS : MS;
    const int64_t o0 = kcontig ? mn0 : k0, i0 = kcontig ? k0 : mn0;
    const int64_t O = kcontig ? mn_extent : k_end, I = kcontig ? k_end : mn_extent;
    for (int idx = int(threadIdx.x); idx < BM * BK / 8; idx += THREADS) {
      const int r = idx / per_row, c = idx % per_row * 8;
      T* dst = slab + r * stride + c;
      const int64_t o = o0 + r, i = i0 + c;
      if constexpr (Src::kRows) {
        if (vec) {
          const bool in = o < O && i < I;
          cp_async16(dst, in ? src.row(o) + i : src.row(0), in);
          continue;
        }
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) dst[e] = o < O && i + e < I ? src.at(o, i + e) : from_f32<T>(0.f);
    }
  }
};

// The 4 registers of one ldmatrix.x4 from an operand tile: for A the 16×16 fragment at rows
// mn.., k kk.. (a0..a3: m 0-7/8-15 × k 0-7/8-15, m varying first); for B two n8 tiles' b0, b1
// (n 0-7: k 0-7, 8-15; then n 8-15). Lane l addresses row l % 8 of matrix l / 8.
template <bool IsA, class T>
__device__ __forceinline__ void fragment(uint32_t (&r)[4], const T* slab, bool kcontig, int mn, int kk, int lane) {
  const int row = lane % 8, j = lane / 8;
  const int mnsel = IsA ? (j & 1) : (j >> 1), ksel = IsA ? (j >> 1) : (j & 1);
  if (kcontig) ldmatrix<4, false>(r, slab + (mn + row + 8 * mnsel) * KS + kk + 8 * ksel);
  else ldmatrix<4, true>(r, slab + (kk + row + 8 * ksel) * MS + mn + 8 * mnsel);
}

// acc += the warp's 64×32 share of one stage's 128×128×32 product.
template <class T>
__device__ __forceinline__ void mma_stage(float (&acc)[4][4][4], const T* sa, const T* sb, bool a_kc, bool b_kc, int wm, int wn,
                                          int lane) {
#pragma unroll
  for (int kk = 0; kk < BK; kk += 16) {
    uint32_t af[4][4], bf[2][4];
#pragma unroll
    for (int i = 0; i < 4; ++i) fragment<true>(af[i], sa, a_kc, wm * 64 + i * 16, kk, lane);
#pragma unroll
    for (int j = 0; j < 2; ++j) fragment<false>(bf[j], sb, b_kc, wn * 32 + j * 16, kk, lane);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) mma16816<T>(acc[i][j], af[i], bf[j / 2][j % 2 * 2], bf[j / 2][j % 2 * 2 + 1]);
  }
}

// out[M, N] through ep(m, n, Σ_k A(m,k)·B(k,n)) for blockIdx.z's K split [z·k_split, +k_split)
// (k_split a multiple of BK). Grid (⌈N/128⌉, ⌈M/128⌉, splits), THREADS threads, smem_bytes<T>().
template <class T, class LA, class LB, class Ep>
__global__ void __launch_bounds__(THREADS) gemm_kernel(LA la, LB lb, Ep ep, int64_t M, int64_t N, int64_t K, int64_t k_split) {
  T* sm = dynamic_smem<T>();  // [STAGES][A slab, B slab]
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;
  const int64_t k_lo = int64_t(blockIdx.z) * k_split, k_hi = min(K, k_lo + k_split);
  const int tiles = int((k_hi - k_lo + BK - 1) / BK);
  auto load = [&](int kt) {
    T* s = sm + kt % STAGES * 2 * SLAB;
    la.load(s, m0, k_lo + int64_t(kt) * BK, k_hi);
    lb.load(s + SLAB, n0, k_lo + int64_t(kt) * BK, k_hi);
  };
  // The ring: STAGES - 1 tiles in flight before the first product, one group per tile (empty
  // groups past the end keep the count that cp_async_wait relies on).
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < tiles) load(s);
    cp_async_commit();
  }
  float acc[4][4][4] = {};
  for (int kt = 0; kt < tiles; ++kt) {
    // Tile kt's group is retired (at most STAGES - 2 younger ones pending), and after the
    // barrier every thread's copies of it are visible; the barrier also ends every warp's reads
    // of the stage that the next load overwrites (the one tile kt - 1 used).
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    if (kt + STAGES - 1 < tiles) load(kt + STAGES - 1);
    cp_async_commit();
    const T* s = sm + kt % STAGES * 2 * SLAB;
    mma_stage<T>(acc, s, s + SLAB, la.kcontig, lb.kcontig, warp % 2, warp / 2, lane);
  }
  // Accumulator fragment (mma16816): acc[i][j] rows g, g + 8, columns 2t, 2t + 1 of its tile.
  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t m = m0 + (warp % 2) * 64 + i * 16 + g + 8 * (e >> 1), n = n0 + (warp / 2) * 32 + j * 8 + 2 * t + (e & 1);
        if (m < M && n < N) ep(m, n, acc[i][j][e]);
      }
}

// The K range of each of about `splits` parts of K: a multiple of BK (the last part shorter).
inline int64_t k_split_for(int64_t K, int64_t splits) { return ((K + splits - 1) / splits + BK - 1) / BK * BK; }

// Launches gemm_kernel<T, LA, LB, Ep> over M×N, blockIdx.z taking K in parts of k_split (a
// multiple of BK; 0: one part).
template <class T, class LA, class LB, class Ep>
cudaError_t run(cudaStream_t s, const LA& la, const LB& lb, const Ep& ep, int64_t M, int64_t N, int64_t K, int64_t k_split = 0) {
  if (!k_split) k_split = k_split_for(K, 1);
  const int64_t parts = (K + k_split - 1) / k_split;
  const dim3 grid(unsigned((N + BN - 1) / BN), unsigned((M + BM - 1) / BM), unsigned(parts));
  if ((M + BM - 1) / BM > 65535 || parts > 65535) return cudaErrorInvalidConfiguration;
  const cudaError_t e = cudaFuncSetAttribute(gemm_kernel<T, LA, LB, Ep>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem_bytes<T>()));
  if (e != cudaSuccess) return e;
  return launch<gemm_kernel<T, LA, LB, Ep>>(grid, THREADS, smem_bytes<T>(), s, la, lb, ep, M, N, K, k_split);
}

// Is an operand of `p` with contiguous extent `ld` loadable by cp.async (Operand::vec)?
inline bool vec_ok(const void* p, int64_t ld) { return ld % 8 == 0 && reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace mk_cuda::gemm
