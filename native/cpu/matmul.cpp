// matmul.cpp: f32 GEMM driver for the CPU backend; see matmul.h. Tested by
// test/kernels/matmul.test.ts against a float64 reference for every ISA this CPU runs.
#include "matmul.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include <sys/mman.h>

#include "isa.h"
#include "threadpool.h"

namespace mk {
namespace {

template <int MR, int NR>
void ukernel_scalar(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int load_c,
                    const float* add, int64_t ldadd) {
  float acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int r = 0; r < MR; ++r) {
      const float ar = a[k * MR + r];
      for (int j = 0; j < NR; ++j) acc[r][j] += ar * b[k * NR + j];
    }
  }
  for (int r = 0; r < MR; ++r) {
    float* cr = c + r * ldc;
    for (int j = 0; j < NR; ++j) {
      float v = acc[r][j];
      if (add) v += add[r * ldadd + j];
      if (load_c) v += cr[j];
      cr[j] = v;
    }
  }
}

// Per-thread scratch that grows and is kept: a training step calls GEMM thousands of times.
struct Scratch {
  float* p = nullptr;
  size_t n = 0;
  ~Scratch() { std::free(p); }
  float* get(size_t want) {
    if (want > n) {
      std::free(p);
      // 2 MiB-aligned and backed by transparent huge pages where the kernel allows: packed
      // panels then sit in physically contiguous memory, so how the OS happened to place
      // 4 KiB pages no longer decides the L2 conflicts (runs varied by ±20 % without it).
      const size_t huge = size_t(2) << 20;
      const size_t bytes = ((want * sizeof(float) + huge - 1) / huge) * huge;
      p = static_cast<float*>(std::aligned_alloc(huge, bytes));
      if (!p) {
        n = 0;
        throw std::bad_alloc();
      }
      madvise(p, bytes, MADV_HUGEPAGE);
      n = bytes / sizeof(float);
    }
    return p;
  }
};
thread_local Scratch t_apack, t_bpack;

inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

#include "matmul_pack.h"

}  // namespace

GemmKernel gemm_kernel_scalar() { return {ukernel_scalar<4, 8>, pack_a<4>, pack_b<8>, 4, 8, 64, 256, 2048}; }

// Offsets of MR consecutive rows (rows[i0 + r], or (i0 + r)·ld): the step between them when it
// is the same for all (then a tile can be stored in place), else -1.
static int64_t uniform_step(const int64_t* rows, int64_t ld, int64_t i0, int64_t h) {
  if (!rows) return ld;
  if (h < 2) return 0;
  const int64_t step = rows[i0 + 1] - rows[i0];
  for (int64_t r = 2; r < h; ++r)
    if (rows[i0 + r] - rows[i0 + r - 1] != step) return -1;
  return step;
}

void gemm_f32(const GemmOut& C, const GemmOperand& A, const GemmOperand& B, int64_t M, int64_t N, int64_t K,
              const GemmBSum& bsum) {
  const GemmKernel g = isa() == Isa::avx512 ? gemm_kernel_avx512()
                       : isa() == Isa::avx2 ? gemm_kernel_avx2()
                                            : gemm_kernel_scalar();
  const int MR = g.mr, NR = g.nr;
  const int64_t MC = g.mc, NC = g.nc;
  // K is cut into equal blocks of at most g.kc (rounded up to 8): 1608 = 6 × 268, not
  // 5 × 320 + 8, whose last sliver of work would pay a whole pass of packing and C traffic.
  const int64_t KC = std::min<int64_t>(K, cdiv(cdiv(K, cdiv(K, g.kc)), 8) * 8);
  const int64_t MB = 16 * MC;  // rows of A packed per pass
  const int nthreads = threads();
  const bool serial = double(M) * double(N) * double(K) < 48.0 * 48.0 * 48.0;

  const int64_t nc_max = std::min<int64_t>(N, NC), kc_max = std::min<int64_t>(K, KC);
  const int64_t mb_max = std::min<int64_t>(M, MB);
  float* bpack = t_bpack.get(size_t(cdiv(nc_max, NR) * NR * kc_max));
  float* apack = t_apack.get(size_t(cdiv(mb_max, MR) * MR * kc_max));

  auto run = [&](int64_t n, auto&& f) {
    if (serial) {
      for (int64_t i = 0; i < n; ++i) f(i, 0);
    } else {
      parallel_for(n, f);
    }
  };

  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    const int64_t nsl = cdiv(nc, NR);
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const bool first = pc == 0;
      const int load_c = (!first || C.accumulate) ? 1 : 0;
      const float* add_here = first ? C.add : nullptr;

      // bpack [nsl][kc][NR]: sliver s holds columns jc + s·NR .. +NR, zero-padded. Groups of
      // 8 rows of B are copied to every sliver in turn, so reads walk along B's rows instead
      // of jumping a page per element (that was TLB-bound: 1 GB/s). Groups are aligned to
      // absolute multiples of their size, the sum's granule when B is also summed.
      const int64_t gsz = bsum.sum ? std::max<int64_t>(1, bsum.granule) : 8;
      const int64_t g_lo = pc / gsz, kgroups = (pc + kc - 1) / gsz - g_lo + 1;
      const int64_t btasks = std::min<int64_t>(kgroups, 4 * nthreads);
      auto pack_b_task = [&](int64_t t) {
        for (int64_t kg = t * kgroups / btasks; kg < (t + 1) * kgroups / btasks; ++kg) {
          const int64_t k0 = std::max<int64_t>(pc, (g_lo + kg) * gsz) - pc;
          const int64_t k1 = std::min<int64_t>(pc + kc, (g_lo + kg + 1) * gsz) - pc;
          for (int64_t s = 0; s < nsl; ++s) {
            const int64_t j0 = jc + s * NR;
            g.pack_b(bpack + s * kc * NR, B, j0, std::min<int64_t>(NR, N - j0), pc, k0, k1, bsum);
          }
        }
      };
      // When all rows fit one pass (M ≤ MB, the usual case), A and B are packed in the same
      // parallel phase: one barrier fewer per K block.
      const bool one_pass = M <= MB;
      if (!one_pass) run(btasks, [&](int64_t t, int) { pack_b_task(t); });
      for (int64_t ic = 0; ic < M; ic += MB) {
        const int64_t mb = std::min(MB, M - ic);
        const int64_t msl = cdiv(mb, MR);
        // apack [msl][kc][MR]: sliver s holds rows ic + s·MR .. +MR, zero-padded.
        const int64_t atasks = std::min<int64_t>(msl, 4 * nthreads);
        auto pack_a_task = [&](int64_t t) {
          const int64_t s0 = t * msl / atasks, s1 = (t + 1) * msl / atasks;
          if (s1 <= s0) return;
          const int64_t i0 = ic + s0 * MR;
          g.pack_a(apack + s0 * kc * MR, A, i0, std::min<int64_t>((s1 - s0) * MR, ic + mb - i0), pc, kc);
        };
        if (one_pass) {
          run(btasks + atasks, [&](int64_t t, int) { t < btasks ? pack_b_task(t) : pack_a_task(t - btasks); });
        } else {
          run(atasks, [&](int64_t t, int) { pack_a_task(t); });
        }
        // Tasks: row blocks of MC (each an L2-sized A block) × one column stripe per thread,
        // so that the count is a multiple of the thread count whatever the rows: 7 blocks of
        // 240 rows on 2 threads had left one thread idle for a seventh of the time (1608-row
        // ViT GEMMs). Against equal row blocks only (10 × 210 rows on 2048³): +5–14 % in
        // interleaved A/B runs, with KC 512.
        // When all rows fit one block (M ≤ MC), split the columns only: each task then reuses
        // every B sliver it loads across all rows (the dW GEMMs of a small ViT).
        const int64_t ni = cdiv(mb, MC), mct = MC;
        int64_t nj = 1;
        if (!serial && mb > MC) nj = std::min<int64_t>(nthreads, nsl);
        while (!serial && ni * nj < 4 * nthreads && nj < nsl) ++nj;
        run(ni * nj, [&](int64_t t, int) {
          const int64_t bi = t % ni, bj = t / ni;
          const int64_t s_lo = bj * nsl / nj, s_hi = (bj + 1) * nsl / nj;
          const int64_t r_lo = bi * mct, r_hi = std::min(mb, r_lo + mct);
          alignas(64) float tmp[32 * 64];
          for (int64_t s = s_lo; s < s_hi; ++s) {
            const int64_t j0 = s * NR;  // within this jc block
            const int64_t w = std::min<int64_t>(NR, nc - j0);
            const float* bs = bpack + s * kc * NR;
            for (int64_t r0 = r_lo; r0 < r_hi; r0 += MR) {
              const int64_t i0 = ic + r0, h = std::min<int64_t>(MR, mb - r0);
              const float* as = apack + (r0 / MR) * kc * MR;
              if (h == MR && w == NR) {
                const int64_t ldc = uniform_step(C.rows, C.ld, i0, h);
                const int64_t ldadd = add_here ? uniform_step(C.add_rows, C.add_ld, i0, h) : 0;
                if (ldc >= 0 && ldadd >= 0) {
                  float* c = C.p + (C.rows ? C.rows[i0] : i0 * C.ld) + jc + j0;
                  const float* ad =
                      add_here ? add_here + (C.add_rows ? C.add_rows[i0] : i0 * C.add_ld) + jc + j0 : nullptr;
                  g.ukernel(kc, as, bs, c, ldc, load_c, ad, ldadd);
                  continue;
                }
              }
              // A ragged tile, or rows that are not evenly spaced (a tile that straddles two
              // images of a patch embedding): compute into tmp, then place row by row.
              g.ukernel(kc, as, bs, tmp, NR, 0, nullptr, 0);
              for (int64_t r = 0; r < h; ++r) {
                const int64_t i = i0 + r;
                float* c = C.p + (C.rows ? C.rows[i] : i * C.ld) + jc + j0;
                const float* ad = add_here ? add_here + (C.add_rows ? C.add_rows[i] : i * C.add_ld) + jc + j0 : nullptr;
                for (int64_t j = 0; j < w; ++j) {
                  float v = tmp[r * NR + j];
                  if (ad) v += ad[j];
                  if (load_c) v += c[j];
                  c[j] = v;
                }
              }
            }
          }
        });
      }
    }
  }
}

void matmul_f32(float* C, const float* A, const float* B, const float* bias, int64_t M, int64_t N,
                int64_t K, bool ta, bool tb, bool accumulate) {
  GemmOut out;
  out.p = C, out.ld = N, out.add = bias, out.add_ld = 0, out.accumulate = accumulate;
  GemmOperand a, b;
  a.p = A, a.rs = ta ? 1 : K, a.cs = ta ? M : 1;
  b.p = B, b.rs = tb ? 1 : N, b.cs = tb ? K : 1;
  gemm_f32(out, a, b, M, N, K);
}

}  // namespace mk
