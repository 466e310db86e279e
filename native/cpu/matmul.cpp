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

// One step of the blocked product: columns jc .. jc+nc of C, K block pc .. pc+kc, rows ic .. ic+mb.
struct GemmStep {
  int64_t jc, nc, pc, kc, ic, mb;
  bool packs_b;     // first step of its (jc, pc): B's panel is packed for it
  float *ap, *bp;   // its packed panels
};

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
  const int64_t MB = 16 * MC;  // rows of A packed per step
  const int nthreads = threads();
  const bool serial = double(M) * double(N) * double(K) < 48.0 * 48.0 * 48.0;

  // Steps run in order (jc, then pc, then ic), each packing its panels in one parallel phase
  // and computing in the next. When a step's panels are small, a phase instead computes one
  // step while it packs the next into the other half of double-buffered panels: the packing
  // fills the time that threads would otherwise wait at the end of the step, and there is
  // one barrier per step instead of two. Larger panels lose more than that by going cold
  // (through the caches) between packing and use. Paired in-process rounds, pipelined over
  // not: the ViT's dW GEMMs (1.25-1.6 MB of panels) +0 to +5 %, its forward and dX GEMMs
  // (2.1-2.8 MB) -4 to -6 %, 2048³ (8 MiB) ±1 %; hence the bound of 1.75 MiB.
  const int64_t njc = cdiv(N, NC), npc = cdiv(K, KC), nic = cdiv(M, MB), nsteps = njc * npc * nic;
  const int64_t nc_max = std::min<int64_t>(N, NC), kc_max = std::min<int64_t>(K, KC);
  const int64_t mb_max = std::min<int64_t>(M, MB);
  const size_t bsize = size_t(cdiv(nc_max, NR) * NR * kc_max), asize = size_t(cdiv(mb_max, MR) * MR * kc_max);
  const bool pipelined = nsteps > 1 && (asize + bsize) * sizeof(float) <= (size_t(7) << 18);
  float* bpack = t_bpack.get(pipelined && npc * njc > 1 ? 2 * bsize : bsize);
  float* apack = t_apack.get(pipelined ? 2 * asize : asize);
  auto step_at = [&](int64_t i) {
    const int64_t ii = i % nic, pi = (i / nic) % npc, ji = i / (nic * npc);
    GemmStep st;
    st.jc = ji * NC, st.nc = std::min(NC, N - st.jc);
    st.pc = pi * KC, st.kc = std::min(KC, K - st.pc);
    st.ic = ii * MB, st.mb = std::min(MB, M - st.ic);
    st.packs_b = ii == 0;
    st.ap = apack + (pipelined ? i % 2 : 0) * asize;
    st.bp = bpack + (pipelined ? (ji * npc + pi) % 2 : 0) * bsize;
    return st;
  };

  // Packing tasks of a step: B's panel first (when the step packs it), then A's.
  //   bpack [nsl][kc][NR]: sliver s holds columns jc + s·NR .. +NR, zero-padded. Groups of 8
  // rows of B are copied to every sliver in turn, so reads walk along B's rows instead of
  // jumping a page per element (that was TLB-bound: 1 GB/s). Groups are aligned to absolute
  // multiples of their size, the sum's granule when B is also summed.
  //   apack [msl][kc][MR]: sliver s holds rows ic + s·MR .. +MR, zero-padded. When op(A)'s
  // rows are adjacent in memory (a transposed A), tasks split k, each packing whole runs of
  // mb floats; else they split the slivers, each reading whole rows of A.
  const int64_t gsz = bsum.sum ? std::max<int64_t>(1, bsum.granule) : 8;
  const bool a_by_k = !A.rows && A.rs == 1;
  struct PackPlan { int64_t g_lo, kgroups, btasks, aunits, atasks; };
  auto pack_plan = [&](const GemmStep& st) {
    PackPlan pp;
    pp.g_lo = st.pc / gsz;
    pp.kgroups = (st.pc + st.kc - 1) / gsz - pp.g_lo + 1;
    pp.btasks = st.packs_b ? std::min<int64_t>(pp.kgroups, 4 * nthreads) : 0;
    pp.aunits = a_by_k ? cdiv(st.kc, 8) : cdiv(st.mb, MR);
    pp.atasks = std::min<int64_t>(pp.aunits, 4 * nthreads);
    return pp;
  };
  auto pack_task = [&](const GemmStep& st, const PackPlan& pp, int64_t t) {
    if (t < pp.btasks) {
      const int64_t nsl = cdiv(st.nc, NR);
      for (int64_t kg = t * pp.kgroups / pp.btasks; kg < (t + 1) * pp.kgroups / pp.btasks; ++kg) {
        const int64_t k0 = std::max<int64_t>(st.pc, (pp.g_lo + kg) * gsz) - st.pc;
        const int64_t k1 = std::min<int64_t>(st.pc + st.kc, (pp.g_lo + kg + 1) * gsz) - st.pc;
        for (int64_t s = 0; s < nsl; ++s) {
          const int64_t j0 = st.jc + s * NR;
          g.pack_b(st.bp + s * st.kc * NR, B, j0, std::min<int64_t>(NR, N - j0), st.pc, k0, k1, bsum);
        }
      }
      return;
    }
    t -= pp.btasks;
    const int64_t u0 = t * pp.aunits / pp.atasks, u1 = (t + 1) * pp.aunits / pp.atasks;
    if (u1 <= u0) return;
    if (a_by_k) {
      g.pack_a(st.ap, A, st.ic, st.mb, st.pc, st.kc, u0 * 8, std::min<int64_t>(st.kc, u1 * 8));
    } else {
      const int64_t i0 = st.ic + u0 * MR;
      g.pack_a(st.ap + u0 * st.kc * MR, A, i0, std::min<int64_t>((u1 - u0) * MR, st.ic + st.mb - i0), st.pc, st.kc, 0,
               st.kc);
    }
  };

  // Compute tasks of a step: row blocks of MC (each an L2-sized A block) × one column stripe
  // per thread, so that the count is a multiple of the thread count whatever the rows: 7
  // blocks of 240 rows on 2 threads had left one thread idle for a seventh of the time
  // (1608-row ViT GEMMs). Against equal row blocks only (10 × 210 rows on 2048³): +5–14 % in
  // interleaved A/B runs, with KC 512. When all rows fit one block (M ≤ MC), split the
  // columns only: each task then reuses every B sliver it loads across all rows (the dW
  // GEMMs of a small ViT).
  struct ComputePlan { int64_t ni, nj, nsl; };
  auto compute_plan = [&](const GemmStep& st) {
    ComputePlan cp;
    cp.nsl = cdiv(st.nc, NR);
    cp.ni = cdiv(st.mb, MC);
    cp.nj = 1;
    if (!serial && st.mb > MC) cp.nj = std::min<int64_t>(nthreads, cp.nsl);
    while (!serial && cp.ni * cp.nj < 4 * nthreads && cp.nj < cp.nsl) ++cp.nj;
    return cp;
  };
  auto compute_task = [&](const GemmStep& st, const ComputePlan& cp, int64_t t) {
    const bool first = st.pc == 0;
    const int load_c = (!first || C.accumulate) ? 1 : 0;
    const float* add_here = first ? C.add : nullptr;
    const int64_t bi = t % cp.ni, bj = t / cp.ni;
    const int64_t s_lo = bj * cp.nsl / cp.nj, s_hi = (bj + 1) * cp.nsl / cp.nj;
    const int64_t r_lo = bi * MC, r_hi = std::min(st.mb, r_lo + MC);
    const int64_t jc = st.jc, ic = st.ic, kc = st.kc;
    alignas(64) float tmp[32 * 64];
    for (int64_t s = s_lo; s < s_hi; ++s) {
      const int64_t j0 = s * NR;  // within this jc block
      const int64_t w = std::min<int64_t>(NR, st.nc - j0);
      const float* bs = st.bp + s * kc * NR;
      for (int64_t r0 = r_lo; r0 < r_hi; r0 += MR) {
        const int64_t i0 = ic + r0, h = std::min<int64_t>(MR, st.mb - r0);
        const float* as = st.ap + (r0 / MR) * kc * MR;
        if (h == MR && w == NR) {
          const int64_t ldc = uniform_step(C.rows, C.ld, i0, h);
          const int64_t ldadd = add_here ? uniform_step(C.add_rows, C.add_ld, i0, h) : 0;
          if (ldc >= 0 && ldadd >= 0) {
            float* c = C.p + (C.rows ? C.rows[i0] : i0 * C.ld) + jc + j0;
            const float* ad = add_here ? add_here + (C.add_rows ? C.add_rows[i0] : i0 * C.add_ld) + jc + j0 : nullptr;
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
  };

  // One parallel phase: the compute tasks of step `comp` (first: they are the larger), then
  // the packing tasks of step `pack`; either may be absent.
  auto phase = [&](const GemmStep* comp, const GemmStep* pack) {
    ComputePlan cp{0, 0, 0};
    PackPlan pp{0, 0, 0, 0, 0};
    const int64_t ncomp = comp ? (cp = compute_plan(*comp), cp.ni * cp.nj) : 0;
    const int64_t npack = pack ? (pp = pack_plan(*pack), pp.btasks + pp.atasks) : 0;
    auto task = [&](int64_t t, int) { t < ncomp ? compute_task(*comp, cp, t) : pack_task(*pack, pp, t - ncomp); };
    if (serial) {
      for (int64_t t = 0; t < ncomp + npack; ++t) task(t, 0);
    } else {
      parallel_for(ncomp + npack, task);
    }
  };
  if (pipelined) {
    // Phase p computes step p-1 and packs step p.
    for (int64_t p = 0; p <= nsteps; ++p) {
      const GemmStep cs = p > 0 ? step_at(p - 1) : GemmStep{}, ps = p < nsteps ? step_at(p) : GemmStep{};
      phase(p > 0 ? &cs : nullptr, p < nsteps ? &ps : nullptr);
    }
  } else {
    for (int64_t p = 0; p < nsteps; ++p) {
      const GemmStep st = step_at(p);
      phase(nullptr, &st);
      phase(&st, nullptr);
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
