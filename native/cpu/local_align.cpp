// local_align.cpp: the tile kernels of MaMA's symmetric local alignment (compiled per ISA; the
// loss around them is in local_align_loss.cpp). For caption m and image n the sentence × patch
// scores c_jk = ⟨σ_mj, p_nk⟩ exist one S×P tile at a time; what leaves a tile is
//   cV[m,n] = mean_{j < cnt_m} max_k c_jk   with argV[m,n,j] = its k (−1 for j ≥ cnt_m)
//   cT[m,n] = mean_k max_{j < cnt_m} c_jk   with argT[m,n,k] = its j,
// so the extra memory is O(Bc·Bi·(S + P)) indices, never the Bc·Bi·S·P scores.
#include <cstdlib>

#include "ops.h"
#include "simd.h"
#include "small_mm.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {
namespace {

struct Buf {
  float* p;
  explicit Buf(int64_t n) : p(static_cast<float*>(std::malloc(size_t(n > 0 ? n : 1) * sizeof(float)))) {
    if (!p) throw std::bad_alloc();
  }
  ~Buf() { std::free(p); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
};

// o[0..E) += w·x[0..E)
void axpy(float* o, const float* x, float w, int64_t E) {
  const V vw = V::set1(w);
  int64_t e = 0;
  for (; e + V::W <= E; e += V::W) V::fma(vw, V::load(x + e), V::load(o + e)).store(o + e);
  for (; e < E; ++e) o[e] += w * x[e];
}

}  // namespace

void local_align_scores(float* cv, float* ct, int32_t* argv, int32_t* argt, const float* sent, const int32_t* counts,
                        int64_t Bc, const float* patches, int64_t Bi, int64_t P, int64_t S, int64_t E) {
  // pt [Bi][E][P]: each image's patches transposed once, the B operand of every tile.
  Buf pt(Bi * E * P), tiles(int64_t(threads()) * S * P);
  parallel_for(Bi, [&](int64_t n, int) {
    const float* src = patches + n * P * E;
    float* dst = pt.p + n * E * P;
    for (int64_t k = 0; k < P; ++k)
      for (int64_t e = 0; e < E; ++e) dst[e * P + k] = src[k * E + e];
  });
  parallel_for(Bc * Bi, [&](int64_t pair, int thread) {
    const int64_t m = pair / Bi, n = pair % Bi, cnt = counts[m];
    float* c = tiles.p + int64_t(thread) * S * P;  // c [cnt, P]
    mm(c, P, sent + m * S * E, E, pt.p + n * E * P, P, cnt, P, E, false);
    int32_t* av = argv + pair * S;
    int32_t* at = argt + pair * P;
    double sv = 0;
    for (int64_t j = 0; j < cnt; ++j) {
      const float* row = c + j * P;
      int64_t best = 0;
      for (int64_t k = 1; k < P; ++k)
        if (row[k] > row[best]) best = k;
      av[j] = int32_t(best);
      sv += row[best];
    }
    for (int64_t j = cnt; j < S; ++j) av[j] = -1;
    double st = 0;
    for (int64_t k = 0; k < P; ++k) {
      int64_t best = 0;
      for (int64_t j = 1; j < cnt; ++j)
        if (c[j * P + k] > c[best * P + k]) best = j;
      at[k] = int32_t(best);
      st += c[best * P + k];
    }
    cv[pair] = float(sv / double(cnt));
    ct[pair] = float(st / double(P));
  });
}

void local_align_grads(float* dsent, float* dpatch, const float* gv, const float* gt, const int32_t* argv,
                       const int32_t* argt, const float* sent, const int32_t* counts, int64_t Bc, const float* patches,
                       int64_t Bi, int64_t P, int64_t S, int64_t E) {
  // Each max passes its gradient to its arg-max alone. Sentences first (a task per caption),
  // then patches (a task per image): every output row has one writer.
  if (dsent)
    parallel_for(Bc, [&](int64_t m, int) {
      const int64_t cnt = counts[m];
      for (int64_t n = 0; n < Bi; ++n) {
        const int64_t pair = m * Bi + n;
        const float wv = gv[pair] / float(cnt), wt = gt[pair] / float(P);
        const float* pn = patches + n * P * E;
        for (int64_t j = 0; j < cnt; ++j) axpy(dsent + (m * S + j) * E, pn + argv[pair * S + j] * E, wv, E);
        for (int64_t k = 0; k < P; ++k) axpy(dsent + (m * S + argt[pair * P + k]) * E, pn + k * E, wt, E);
      }
    });
  if (dpatch)
    parallel_for(Bi, [&](int64_t n, int) {
      for (int64_t m = 0; m < Bc; ++m) {
        const int64_t pair = m * Bi + n, cnt = counts[m];
        const float wv = gv[pair] / float(cnt), wt = gt[pair] / float(P);
        const float* sm = sent + m * S * E;
        for (int64_t j = 0; j < cnt; ++j) axpy(dpatch + (n * P + argv[pair * S + j]) * E, sm + j * E, wv, E);
        for (int64_t k = 0; k < P; ++k) axpy(dpatch + (n * P + k) * E, sm + argt[pair * P + k] * E, wt, E);
      }
    });
}

}  // namespace MK_ISA
}  // namespace mk
