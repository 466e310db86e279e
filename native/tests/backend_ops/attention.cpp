// attention.cpp: the op test's flash-attention cases (head dims 16–128, the tensor-core ones among
// them; causal, kvLens, Lq ≠ Lk, views at odd offsets; dropout of the probabilities, with probes
// that expose its mask; the backward repeated bit for bit) and its timings at the paper's ViT shape.
#include "../../common/dropout_mask.h"
#include "common.h"

namespace ops {
namespace {

// Dropout of the probabilities (p = 0: none), and the inputs of a case: seeded normal values, or a
// probe whose probabilities are uniform (k = 0 or q = 0) and whose outputs each hold one entry of
// the dropped matrix P̂ = P ⊙ Z/(1 − p) or of dS, all of one size, so that one differing draw of
// the mask fails the comparison whatever the tolerance:
//   out_dk: q_i = e_i, k = 0, v_j = e_j, dO = 1  →  out[i,d] = P̂[i,d], dk[j,d] = scale·dS[d,j]
//   dv_dq:  q = 0, k_j = e_j, v = 1, dO_i = e_i  →  dv[j,d] = P̂[d,j],  dq[i,d] = scale·dS[i,d]
// (e_i the unit vector of index i mod Dh; dS = P ⊙ (Z/(1 − p) − D_i) as dP = 1 everywhere).
struct Dropout {
  float p = 0.f;
  uint64_t seed = 0, offset = 0;
};
enum class Probe { none, out_dk, dv_dq };

// Per element, the magnitude of the terms summed into out, dq, dk and dv (float64 on the host),
// for the 16-bit criterion (Out::mag). With P the softmax of the scaled, masked logits, dP = dO·vᵀ
// and D = Σ_d dO·O: out = P·v, dv = Pᵀ·dO, dq = scale·(P ⊙ (dP − D))·k, dk = scale·(P ⊙ (dP − D))ᵀ·q.
// The GPU rounds P and dS to 16 bits before the tensor-core products and reads its own 16-bit
// out for D, so its error follows Σ P·|v|, Σ P·|dO| and scale·Σ P·(|dP| + Σ_d |dO·O|)·|k| (|q|),
// which under cancellation lie far above the result.
struct Mags {
  std::vector<double> out, dq, dk, dv;
};
// With dropout, P is P̂ in out and dv, and dP is dP ⊙ Z/(1 − p) in dq and dk.
Mags magnitudes(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v, const std::vector<float>& g,
                const std::vector<float>& o, const int32_t* kv_lens, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t Dh,
                double scale, bool causal, Dropout drop) {
  const uint64_t key = mk::drop::key(drop.seed);
  const uint32_t threshold = mk::drop::threshold(drop.p);
  const double rkeep = 1.0 / (1.0 - double(drop.p));
  Mags m{std::vector<double>(q.size()), std::vector<double>(q.size()), std::vector<double>(k.size()), std::vector<double>(k.size())};
  const int64_t ld = H * Dh;
  std::vector<double> p(Lk), dp(Lk);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Lq; ++i) {
        const int64_t qi = (b * Lq + i) * ld + h * Dh;
        int64_t lim = kv_lens ? kv_lens[b] : Lk;
        if (causal) lim = std::min(lim, i + 1);
        double mx = -INFINITY, sum = 0, dd = 0;
        for (int64_t j = 0; j < lim; ++j) {
          double s = 0, t = 0;
          for (int64_t d = 0; d < Dh; ++d)
            s += double(q[qi + d]) * k[(b * Lk + j) * ld + h * Dh + d], t += double(g[qi + d]) * v[(b * Lk + j) * ld + h * Dh + d];
          p[j] = s * scale, dp[j] = t, mx = std::max(mx, p[j]);
        }
        for (int64_t j = 0; j < lim; ++j) sum += p[j] = std::exp(p[j] - mx);
        for (int64_t d = 0; d < Dh; ++d) dd += std::fabs(double(g[qi + d]) * o[qi + d]);
        for (int64_t j = 0; j < lim; ++j) {
          const int64_t kj = (b * Lk + j) * ld + h * Dh;
          const double z = drop.p == 0.f || mk::drop::kept(key, drop.offset + uint64_t(((b * H + h) * Lq + i) * Lk + j), threshold)
                               ? rkeep : 0.0;
          const double pj = p[j] / sum, sj = scale * pj * (std::fabs(dp[j]) * z + dd);
          for (int64_t d = 0; d < Dh; ++d) {
            m.out[qi + d] += pj * z * std::fabs(v[kj + d]);
            m.dv[kj + d] += pj * z * std::fabs(g[qi + d]);
            m.dq[qi + d] += sj * std::fabs(k[kj + d]);
            m.dk[kj + d] += sj * std::fabs(q[qi + d]);
          }
        }
      }
  return m;
}

// [B,L,H,Dh] rows e_(i mod Dh) for row i.
std::vector<float> units(int64_t B, int64_t L, int64_t H, int64_t Dh) {
  std::vector<float> x(B * L * H * Dh, 0.f);
  for (int64_t r = 0; r < B * L * H; ++r) x[r * Dh + r / H % L % Dh] = 1.f;
  return x;
}

// Attention forward and backward; kv_lens (padded) alternate full and partial per batch entry.
// With `odd`, every GPU tensor starts one element into its allocation (a view at an odd offset:
// 16-bit operands are then not 4-byte aligned and take the kernels without tensor cores).
void attention_case(mk_dtype dt, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t Dh, bool causal, bool padded, bool odd = false,
                    Dropout drop = {}, Probe probe = Probe::none) {
  const char* probe_name = probe == Probe::out_dk ? " probe out/dk" : probe == Probe::dv_dq ? " probe dv/dq" : "";
  const std::string what = fmt("attention %s B=%lld Lq=%lld Lk=%lld H=%lld Dh=%lld causal=%d padded=%d%s%s%s", dtype_name(dt), (long long)B,
                               (long long)Lq, (long long)Lk, (long long)H, (long long)Dh, causal, padded, odd ? " odd offsets" : "",
                               drop.p > 0.f ? fmt(" dropout p=%g seed=%llu offset=%llu", drop.p, (unsigned long long)drop.seed,
                                                  (unsigned long long)drop.offset).c_str() : "",
                               probe_name);
  const int64_t nq = B * Lq * H * Dh, nk = B * Lk * H * Dh;
  std::vector<float> q, k, v, g;
  if (probe == Probe::out_dk)
    q = units(B, Lq, H, Dh), k.assign(nk, 0.f), v = units(B, Lk, H, Dh), g.assign(nq, 1.f);
  else if (probe == Probe::dv_dq)
    q.assign(nq, 0.f), k = units(B, Lk, H, Dh), v.assign(nk, 1.f), g = units(B, Lq, H, Dh);
  else
    q = rnd(nq, dt), k = rnd(nk, dt), v = rnd(nk, dt), g = rnd(nq, dt);
  std::vector<int32_t> lens(B);
  for (int64_t b = 0; b < B; ++b) lens[b] = int32_t(padded && b % 2 == 0 ? std::max<int64_t>(1, Lk / 3 + b) : Lk);
  const int32_t* kl = padded ? lens.data() : nullptr;
  const float scale = 1.f / std::sqrt(float(Dh));
  CpuBuf cq(q), ck(k), cv(v), cg(g), co(nans(nq)), cl(nans(B * H * Lq)), cdq(nans(nq)), cdk(nans(nk)), cdv(nans(nk));
  auto pad = [&](const std::vector<float>& x) {
    std::vector<float> y(x.size() + (odd ? 1 : 0), kNaN);
    std::copy(x.begin(), x.end(), y.begin() + (odd ? 1 : 0));
    return y;
  };
  auto unpad = [&](const GpuBuf& b) {
    auto h = b.get();
    return odd ? std::vector<float>(h.begin() + 1, h.end()) : h;
  };
  GpuBuf gq(pad(q), dt), gk(pad(k), dt), gv(pad(v), dt), gg(pad(g), dt), go(pad(nans(nq)), dt), gl(nans(B * H * Lq), MK_F32),
      gdq(pad(nans(nq)), dt), gdk(pad(nans(nk)), dt), gdv(pad(nans(nk)), dt);
  const size_t sh = odd ? dtype_size(dt) : 0;
  auto at = [&](const GpuBuf& b) { return static_cast<void*>(static_cast<char*>(b.p) + sh); };
  const float dp = drop.p;
  const uint64_t ds = drop.seed, doff = drop.offset;
  if (!CPU(attention_forward(g_cpu_ctx, co.p, cl.f32(), cq.p, ck.p, cv.p, kl, MK_F32, B, Lq, Lk, H, Dh, scale, causal, dp, ds, doff),
           what) ||
      !CPU(attention_backward(g_cpu_ctx, cdq.p, cdk.p, cdv.p, cq.p, ck.p, cv.p, co.p, cl.f32(), cg.p, kl, MK_F32, B, Lq, Lk, H, Dh,
                              scale, causal, dp, ds, doff),
           what))
    return;
  // The GPU backward reads the GPU's own forward (out and lse), as training does.
  if (!GPU(attention_forward(g_gpu_ctx, at(go), gl.f32(), at(gq), at(gk), at(gv), kl, dt, B, Lq, Lk, H, Dh, scale, causal, dp, ds, doff),
           what) ||
      !GPU(attention_backward(g_gpu_ctx, at(gdq), at(gdk), at(gdv), at(gq), at(gk), at(gv), at(go), gl.f32(), at(gg), kl, dt, B, Lq, Lk,
                              H, Dh, scale, causal, dp, ds, doff),
           what))
    return;
  Mags m;
  if (dt != MK_F32) m = magnitudes(q, k, v, g, co.get(), kl, B, Lq, Lk, H, Dh, scale, causal, drop);
  compare(what, dt, {{"out", unpad(go), co.get(), m.out}, {"lse", gl.get(), cl.get()}, {"dq", unpad(gdq), cdq.get(), m.dq},
                     {"dk", unpad(gdk), cdk.get(), m.dk}, {"dv", unpad(gdv), cdv.get(), m.dv}});
  // The backward again on the same inputs: the same bits.
  GpuBuf gdq2(pad(nans(nq)), dt), gdk2(pad(nans(nk)), dt), gdv2(pad(nans(nk)), dt);
  if (!GPU(attention_backward(g_gpu_ctx, at(gdq2), at(gdk2), at(gdv2), at(gq), at(gk), at(gv), at(go), gl.f32(), at(gg), kl, dt, B, Lq,
                              Lk, H, Dh, scale, causal, dp, ds, doff),
           what))
    return;
  same_bits(what, {"dq", "dk", "dv"}, {unpad(gdq), unpad(gdk), unpad(gdv)}, {unpad(gdq2), unpad(gdk2), unpad(gdv2)});
}

void check_attention() {
  for (mk_dtype dt : kDtypes) {
    // Head dims 32/64/80/128 take the tensor cores in bf16/f16; 40 and 16 the other kernels.
    attention_case(dt, 2, 67, 67, 3, 64, true, true);
    attention_case(dt, 2, 130, 75, 2, 80, false, true);
    attention_case(dt, 1, 100, 100, 2, 128, false, false);
    attention_case(dt, 3, 33, 33, 2, 32, true, false);
    attention_case(dt, 1, 17, 70, 1, 40, false, true);
    attention_case(dt, 2, 1, 5, 1, 16, false, true);
    attention_case(dt, 1, 40, 40, 2, 64, true, true, true);
    // Dropout of the probabilities: head dims 64 and 128 on tensor cores in bf16/f16, 40 and odd
    // offsets on the other kernels (and f32 everywhere); causal, kvLens, odd lengths, Lq ≠ Lk,
    // counters past 2^32.
    const uint64_t big = (uint64_t(1) << 32) + 977;
    attention_case(dt, 2, 67, 67, 1, 64, true, true, false, {0.1f, 1234, 0});
    attention_case(dt, 1, 100, 75, 1, 128, false, true, false, {0.5f, 77, big});
    attention_case(dt, 2, 17, 70, 1, 40, false, true, false, {0.3f, 5, 11});
    attention_case(dt, 1, 40, 40, 2, 64, true, true, true, {0.2f, 99, 3});
    // Probes: each output element shows one draw of the mask (a wrong draw is an error of 100 %).
    for (Probe probe : {Probe::out_dk, Probe::dv_dq}) {
      attention_case(dt, 2, 61, 61, 2, 64, true, true, false, {0.5f, 31, 7}, probe);
      attention_case(dt, 1, 100, 90, 1, 128, false, true, false, {0.5f, 8, big}, probe);
      attention_case(dt, 1, 23, 23, 1, 40, true, false, false, {0.5f, 8, 0}, probe);
    }
  }
  if (!g_emulated)
    for (mk_dtype dt : kDtypes) attention_case(dt, 2, 600, 600, 4, 64, true, true);
}

// The paper's ViT attention at batch 16, forward and forward + backward, and with dropout p of the
// probabilities (PyTorch's peer is scaled_dot_product_attention on the same card, dropout_p = p).
void bench_attention_shape(FILE* out, mk_dtype dt, int64_t B, int64_t L, int64_t H, int64_t Dh, bool bwd, float p = 0.f) {
  const int64_t n = B * L * H * Dh;
  GpuBuf q(tiled_randn(n), dt), k(tiled_randn(n), dt), v(tiled_randn(n), dt), g(tiled_randn(n), dt), o(std::vector<float>(n), dt);
  GpuBuf l(std::vector<float>(B * H * L), MK_F32), dq(std::vector<float>(n), dt), dk(std::vector<float>(n), dt), dv(std::vector<float>(n), dt);
  const float scale = 1.f / std::sqrt(float(Dh));
  const std::string name = fmt("%s B%lld L%lld H%lld Dh%lld%s", bwd ? "fwd+bwd" : "fwd", (long long)B, (long long)L, (long long)H,
                               (long long)Dh, p > 0.f ? fmt(" dropout %g", p).c_str() : "");
  const double s = time_gpu("bench attention", [&] {
    return GPU(attention_forward(g_gpu_ctx, o.p, l.f32(), q.p, k.p, v.p, nullptr, dt, B, L, L, H, Dh, scale, 0, p, 1, 0),
               "bench attention") &&
           (!bwd || GPU(attention_backward(g_gpu_ctx, dq.p, dk.p, dv.p, q.p, k.p, v.p, o.p, l.f32(), g.p, nullptr, dt, B, L, L, H, Dh, scale,
                                           0, p, 1, 0),
                        "bench attention"));
  });
  record(out, "attention", dt, name,
         fmt("\"B\":%lld,\"L\":%lld,\"H\":%lld,\"Dh\":%lld,\"bwd\":%s,\"sdpa\":true,\"dropout\":%g", (long long)B, (long long)L,
             (long long)H, (long long)Dh, bwd ? "true" : "false", p),
         s, (bwd ? 3.5 : 1.0) * 4.0 * B * H * L * L * Dh);
}

void bench_attention(FILE* out, mk_dtype dt) {
  bench_attention_shape(out, dt, 16, 1374, 12, 64, false);
  bench_attention_shape(out, dt, 16, 1374, 12, 64, true);
  if (dt != MK_BF16) return;
  // What dropout of the probabilities costs (GPT-2's attn_pdrop; the ViT has none).
  bench_attention_shape(out, dt, 16, 1374, 12, 64, false, 0.1f);
  bench_attention_shape(out, dt, 16, 1374, 12, 64, true, 0.1f);
  // The paper's micro-batch: 36 studies × 2 views.
  bench_attention_shape(out, dt, 72, 1374, 12, 64, false);
  bench_attention_shape(out, dt, 72, 1374, 12, 64, true);
}

}  // namespace

MK_OP_CASES(attention, {"attention_forward", "attention_backward"}, check_attention, bench_attention);

}  // namespace ops
