// attention.cpp: flash attention forward and backward (compiled per ISA), FlashAttention-2's
// algorithm on the CPU: the Lq×Lk logits exist only a Br×Bc tile at a time, the forward keeps a
// running max and sum per query (online softmax) and saves lse, and the backward recomputes
// each tile's probabilities from lse. q, out, dout [B,Lq,H,Dh], k, v [B,Lk,H,Dh] (a head's rows
// are H·Dh apart); lse [B,H,Lq].
//
// Masks: query i sees key j when j < kv_len[b] (all keys without kv_lens) and, when causal,
// j ≤ i; both make the visible keys of a row a prefix of every key block, so masked
// probabilities are exactly 0 (not exp of a large negative number) and so are their gradients.
//
// Dropout of the probabilities (FlashAttention-2's, in the tile as it is computed): Z[b,h,i,j]
// from the dropout mask (native/common/dropout_mask.h) at counter offset + ((b·H + h)·Lq + i)·Lk
// + j. Forward: the row sums l stay those of the undropped P (lse is not dropped), dropped
// entries of the tile are zeroed before P·V, and the output is scaled by 1/(1 − p). Backward,
// with P̂ = P ⊙ Z/(1 − p): dV = P̂ᵀ·dO, dP = (dO·vᵀ) ⊙ Z/(1 − p), dS = P ⊙ (dP − D) with
// D_i = Σ_d dO·O (= Σ_j P̂·(dO·v), so still the row term), dQ = scale·dS·k, dK = scale·dSᵀ·q.
#include <cmath>
#include <cstdlib>

#include "../common/dropout_mask.h"
#include "ops.h"
#include "simd.h"
#include "small_mm.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {
namespace {

constexpr int64_t kBr = 64, kBc = 64;  // query rows, keys per tile
// dst [cols, rows] = src [rows, cols]ᵀ (src row stride lds, dst row stride ldd).
void transpose(float* dst, int64_t ldd, const float* src, int64_t lds, int64_t rows, int64_t cols) {
  for (int64_t i0 = 0; i0 < rows; i0 += 8)
    for (int64_t j = 0; j < cols; ++j)
      for (int64_t i = i0; i < i0 + 8 && i < rows; ++i) dst[j * ldd + i] = src[i * lds + j];
}

// Keys visible to query i in the block starting at key j0 of width bc: a prefix of length
// clamp(min(kv_len, i + 1 if causal) − j0, 0, bc).
inline int64_t visible(int64_t i, int64_t j0, int64_t bc, int64_t kv_len, bool causal) {
  int64_t lim = kv_len;
  if (causal && i + 1 < lim) lim = i + 1;
  const int64_t n = lim - j0;
  return n < 0 ? 0 : n > bc ? bc : n;
}

// P[0..n) = exp(s·scale − m) for the n visible keys, 0 for the rest of the bc; returns Σ P.
float exp_row(float* p, const float* s, int64_t n, int64_t bc, float scale, float m) {
  const V vs = V::set1(scale), vm = V::set1(-m);
  V acc = V::zero();
  int64_t j = 0;
  for (; j + V::W <= n; j += V::W) {
    const V e = vexp(V::fma(V::load(s + j), vs, vm));
    e.store(p + j);
    acc = acc + e;
  }
  float sum = acc.sum();
  for (; j < n; ++j) {
    p[j] = std::exp(s[j] * scale - m);
    sum += p[j];
  }
  for (; j < bc; ++j) p[j] = 0.f;
  return sum;
}

float max_row(const float* s, int64_t n) {
  V m = V::set1(-INFINITY);
  int64_t j = 0;
  for (; j + V::W <= n; j += V::W) m = V::max(m, V::load(s + j));
  float r = m.hmax();
  for (; j < n; ++j) r = s[j] > r ? s[j] : r;
  return r;
}

// Scratch (malloc: no std container, whose code the per-ISA copies of this file would share).
struct Buf {
  float* p;
  explicit Buf(int64_t n) : p(static_cast<float*>(std::malloc(size_t(n) * sizeof(float)))) {
    if (!p) throw std::bad_alloc();
  }
  ~Buf() { std::free(p); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
};
struct Span {
  float* p;
};

// The dropout of one call: off (p = 0), or its key, threshold and 1/(1 − p) (exactly 1 when off).
struct Drop {
  bool on;
  uint64_t key, offset;
  uint32_t threshold;
  float rkeep;
  Drop(float p, uint64_t seed, uint64_t offset)
      : on(p > 0.f), key(drop::key(seed)), offset(offset), threshold(drop::threshold(p)), rkeep(1.f / (1.f - p)) {}
  // key + c·φ at the counter of (row, key j0) of head bh: the row's keys follow at steps of φ.
  uint64_t at(int64_t bh, int64_t Lq, int64_t Lk, int64_t i, int64_t j0) const {
    return key + (offset + uint64_t((bh * Lq + i) * Lk + j0)) * drop::kPhi;
  }
};

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* kv_lens,
                       int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t Dh, float scale, int causal,
                       float dropout_p, uint64_t dropout_seed, uint64_t dropout_offset) {
  const Drop drp(dropout_p, dropout_seed, dropout_offset);
  const int64_t qblocks = (Lq + kBr - 1) / kBr, ld = H * Dh;
  // Scratch per thread, allocated before the pool runs (a task must not throw).
  const int64_t per = Dh * kBc + kBr * kBc + kBr * Dh + 2 * kBr;
  Buf scratch(per * threads());
  parallel_for(B * H * qblocks, [&](int64_t task, int thread) {
    const int64_t b = task / (H * qblocks), h = task / qblocks % H, i0 = task % qblocks * kBr;
    const int64_t br = Lq - i0 < kBr ? Lq - i0 : kBr;
    const int64_t kv = kv_lens ? kv_lens[b] : Lk;
    const float* qb = q + (b * Lq + i0) * ld + h * Dh;
    const float* kb = k + b * Lk * ld + h * Dh;
    const float* vb = v + b * Lk * ld + h * Dh;
    float* base = scratch.p + thread * per;
    Span kt{base}, s{kt.p + Dh * kBc}, o{s.p + kBr * kBc}, m{o.p + kBr * Dh}, l{m.p + kBr};
    for (int64_t i = 0; i < br; ++i) m.p[i] = -INFINITY, l.p[i] = 0.f;
    for (int64_t i = 0; i < br * Dh; ++i) o.p[i] = 0.f;
    // Keys past the last visible one of the block's last query are skipped whole.
    const int64_t kend = causal ? (i0 + br < kv ? i0 + br : kv) : kv;
    for (int64_t j0 = 0; j0 < kend; j0 += kBc) {
      const int64_t bc = Lk - j0 < kBc ? Lk - j0 : kBc;
      transpose(kt.p, bc, kb + j0 * ld, ld, bc, Dh);                 // kt [Dh, bc]
      mm(s.p, kBc, qb, ld, kt.p, bc, br, bc, Dh, false);             // s [br, bc] = q kᵀ
      for (int64_t i = 0; i < br; ++i) {
        float* sr = s.p + i * kBc;
        const int64_t n = visible(i0 + i, j0, bc, kv, causal);
        const float mnew = n > 0 ? std::fmax(m.p[i], max_row(sr, n) * scale) : m.p[i];
        // Rows with nothing visible yet keep m = −∞ and an all-zero tile.
        const float alpha = m.p[i] == -INFINITY ? 0.f : std::exp(m.p[i] - mnew);
        const float sum = mnew == -INFINITY ? 0.f : exp_row(sr, sr, n, bc, scale, mnew);
        if (mnew == -INFINITY)
          for (int64_t j = 0; j < bc; ++j) sr[j] = 0.f;
        l.p[i] = l.p[i] * alpha + sum;
        m.p[i] = mnew;
        if (drp.on) {
          uint64_t x = drp.at(b * H + h, Lq, Lk, i0 + i, j0);
          for (int64_t j = 0; j < n; ++j, x += drop::kPhi)
            if (!drop::kept_at(x, drp.threshold)) sr[j] = 0.f;
        }
        if (alpha != 1.f) {
          float* orow = o.p + i * Dh;
          for (int64_t d = 0; d < Dh; ++d) orow[d] *= alpha;
        }
      }
      mm(o.p, Dh, s.p, kBc, vb + j0 * ld, ld, br, Dh, bc, true);    // o += p v
    }
    for (int64_t i = 0; i < br; ++i) {
      float* orow = out + (b * Lq + i0 + i) * ld + h * Dh;
      const float inv = (l.p[i] > 0.f ? 1.f / l.p[i] : 0.f) * drp.rkeep;
      for (int64_t d = 0; d < Dh; ++d) orow[d] = o.p[i * Dh + d] * inv;
      lse[(b * H + h) * Lq + i0 + i] = l.p[i] > 0.f ? m.p[i] + std::log(l.p[i]) : -INFINITY;
    }
  });
}

void attention_backward(float* dq, float* dk, float* dv, const float* q, const float* k, const float* v,
                        const float* out, const float* lse, const float* dout, const int32_t* kv_lens, int64_t B,
                        int64_t Lq, int64_t Lk, int64_t H, int64_t Dh, float scale, int causal, float dropout_p,
                        uint64_t dropout_seed, uint64_t dropout_offset) {
  const Drop drp(dropout_p, dropout_seed, dropout_offset);
  const int64_t ld = H * Dh, kblocks = (Lk + kBc - 1) / kBc;
  // Tasks own (b, h) and a run of key blocks: dK and dV of a key block have one writer. With
  // fewer heads than 2 tasks per thread, the key blocks are split too and each part sums its
  // dQ in its own buffer, added up at the end.
  const int64_t bh = B * H;
  int64_t parts = (2 * int64_t(threads()) + bh - 1) / bh;
  if (parts > kblocks) parts = kblocks;
  Buf dqp(parts > 1 ? bh * parts * Lq * Dh : 1);
  const int64_t per = Lq + 2 * Dh * kBc + 2 * kBr * kBc + 2 * kBc * Dh;
  Buf scratch(per * threads());
  parallel_for(bh * parts, [&](int64_t task, int thread) {
    const int64_t b = task / parts / H, h = task / parts % H, part = task % parts;
    const int64_t kv = kv_lens ? kv_lens[b] : Lk;
    const float* qb = q + b * Lq * ld + h * Dh;
    const float* ob = out + b * Lq * ld + h * Dh;
    const float* gb = dout + b * Lq * ld + h * Dh;
    const float* kb = k + b * Lk * ld + h * Dh;
    const float* vb = v + b * Lk * ld + h * Dh;
    const float* lb = lse + (b * H + h) * Lq;
    // dQ rows of this task: the output itself (stride ld) or a private [Lq, Dh] buffer.
    float* dqb = parts > 1 ? dqp.p + (task * Lq) * Dh : dq + b * Lq * ld + h * Dh;
    const int64_t ldq = parts > 1 ? Dh : ld;
    for (int64_t i = 0; i < Lq; ++i)
      for (int64_t d = 0; d < Dh; ++d) dqb[i * ldq + d] = 0.f;
    // D_i = Σ_d dO·O, the row term of the softmax gradient.
    float* base = scratch.p + thread * per;
    Span dd{base}, kt{dd.p + Lq}, vt{kt.p + Dh * kBc}, p{vt.p + Dh * kBc}, dp{p.p + kBr * kBc};
    Span gk{dp.p + kBr * kBc}, gv{gk.p + kBc * Dh};
    for (int64_t i = 0; i < Lq; ++i) {
      float sdot = 0.f;
      for (int64_t d = 0; d < Dh; ++d) sdot += gb[i * ld + d] * ob[i * ld + d];
      dd.p[i] = sdot;
    }
    for (int64_t kbk = part * kblocks / parts; kbk < (part + 1) * kblocks / parts; ++kbk) {
      const int64_t j0 = kbk * kBc, bc = Lk - j0 < kBc ? Lk - j0 : kBc;
      for (int64_t x = 0; x < bc * Dh; ++x) gk.p[x] = gv.p[x] = 0.f;
      if (j0 < kv) {
        transpose(kt.p, bc, kb + j0 * ld, ld, bc, Dh);  // kt, vt [Dh, bc]
        transpose(vt.p, bc, vb + j0 * ld, ld, bc, Dh);
        // Queries before the block's first key see none of it when causal.
        for (int64_t i0 = causal ? j0 / kBr * kBr : 0; i0 < Lq; i0 += kBr) {
          const int64_t br = Lq - i0 < kBr ? Lq - i0 : kBr;
          mm(p.p, kBc, qb + i0 * ld, ld, kt.p, bc, br, bc, Dh, false);    // s = q kᵀ
          mm(dp.p, kBc, gb + i0 * ld, ld, vt.p, bc, br, bc, Dh, false);   // dp = dO vᵀ
          for (int64_t i = 0; i < br; ++i) {
            float* pr = p.p + i * kBc;
            float* dr = dp.p + i * kBc;
            const int64_t n = visible(i0 + i, j0, bc, kv, causal);
            exp_row(pr, pr, n, bc, scale, lb[i0 + i]);
            // ds = scale·p·(dp − D_i): zero wherever p is.
            const float di = dd.p[i0 + i];
            if (!drp.on) {
              for (int64_t j = 0; j < bc; ++j) dr[j] = scale * pr[j] * (dr[j] - di);
            } else {
              // Dropped: dp = 0, and p̂ = 0 for dV; kept: dp·/(1 − p), p̂ = p/(1 − p). Keys the
              // row cannot see have p = 0 whatever their draw.
              uint64_t x = drp.at(b * H + h, Lq, Lk, i0 + i, j0);
              for (int64_t j = 0; j < bc; ++j, x += drop::kPhi) {
                const bool z = j >= n || drop::kept_at(x, drp.threshold);
                dr[j] = scale * pr[j] * ((z ? dr[j] * drp.rkeep : 0.f) - di);
                pr[j] = z ? pr[j] * drp.rkeep : 0.f;
              }
            }
          }
          mm<true>(gv.p, Dh, p.p, kBc, gb + i0 * ld, ld, bc, Dh, br, true);   // dV += p̂ᵀ dO
          mm<true>(gk.p, Dh, dp.p, kBc, qb + i0 * ld, ld, bc, Dh, br, true);  // dK += dsᵀ q
          mm(dqb + i0 * ldq, ldq, dp.p, kBc, kb + j0 * ld, ld, br, Dh, bc, true);  // dQ += ds k
        }
      }
      for (int64_t j = 0; j < bc; ++j)
        for (int64_t d = 0; d < Dh; ++d) {
          dk[(b * Lk + j0 + j) * ld + h * Dh + d] = gk.p[j * Dh + d];
          dv[(b * Lk + j0 + j) * ld + h * Dh + d] = gv.p[j * Dh + d];
        }
    }
  });
  if (parts > 1) {
    parallel_for(bh, [&](int64_t x, int) {
      const int64_t b = x / H, h = x % H;
      for (int64_t i = 0; i < Lq; ++i) {
        float* o = dq + (b * Lq + i) * ld + h * Dh;
        for (int64_t d = 0; d < Dh; ++d) {
          float s = 0.f;
          for (int64_t part = 0; part < parts; ++part) s += dqp.p[((x * parts + part) * Lq + i) * Dh + d];
          o[d] = s;
        }
      }
    });
  }
}

}  // namespace MK_ISA
}  // namespace mk
