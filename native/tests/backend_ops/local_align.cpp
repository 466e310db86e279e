// local_align.cpp: the op test's local-alignment cases (one process and gathered; sentence rows
// past a caption's count hold values that would win every max if read) and its timing at the
// paper's batch.
#include "common.h"

namespace ops {
namespace {

// Unit rows of E; with `lead` each row's first coordinate is positive.
std::vector<float> unit_rows(int64_t R, int64_t E, bool lead) {
  auto x = randn(R * E);
  for (int64_t r = 0; r < R; ++r) {
    if (lead) x[r * E] = 0.5f + std::fabs(x[r * E]);
    double q = 0;
    for (int64_t e = 0; e < E; ++e) q += double(x[r * E + e]) * x[r * E + e];
    for (int64_t e = 0; e < E; ++e) x[r * E + e] = float(x[r * E + e] / std::sqrt(q));
  }
  return x;
}

// Local alignment; sentence rows past a caption's count hold 1000·e₀, which would win every
// max over sentences (the patches' first coordinates are positive) if a kernel read them.
void local_align_case(mk_dtype dt, int64_t Bl, int64_t Bg, int64_t P, int64_t S, int64_t E, int64_t offset) {
  const std::string what = fmt("local_align %s Bl=%lld Bg=%lld P=%lld S=%lld E=%lld offset=%lld", dtype_name(dt), (long long)Bl,
                               (long long)Bg, (long long)P, (long long)S, (long long)E, (long long)offset);
  const bool one = Bl == Bg;
  std::vector<int32_t> counts(Bg);
  for (int64_t b = 0; b < Bg; ++b) counts[b] = int32_t(b == 0 ? 1 : b == 1 ? S : 1 + int64_t(g_rng() % uint32_t(S)));
  auto pa = rounded(unit_rows(Bg * P, E, true), dt), sa = unit_rows(Bg * S, E, false);
  for (int64_t b = 0; b < Bg; ++b)
    for (int64_t j = counts[b]; j < S; ++j)
      for (int64_t e = 0; e < E; ++e) sa[(b * S + j) * E + e] = e == 0 ? 1000.f : 0.f;
  sa = rounded(sa, dt);
  std::vector<float> pl(pa.begin() + offset * P * E, pa.begin() + (offset + Bl) * P * E);
  std::vector<float> sl(sa.begin() + offset * S * E, sa.begin() + (offset + Bl) * S * E);
  std::vector<int32_t> cl_(counts.begin() + offset, counts.begin() + offset + Bl);
  auto dpa0 = one ? nans(Bg * P * E) : rnd(Bg * P * E, dt), dsa0 = one ? nans(Bg * S * E) : rnd(Bg * S * E, dt);
  CpuBuf cp(pl), cs(sl), cpa(pa), csa(sa), cdp(nans(Bl * P * E)), cds(nans(Bl * S * E)), cdpa(dpa0), cdsa(dsa0);
  GpuBuf gp(pl, dt), gs(sl, dt), gpa(pa, dt), gsa(sa, dt), gdp(nans(Bl * P * E), dt), gds(nans(Bl * S * E), dt), gdpa(dpa0, dt),
      gdsa(dsa0, dt);
  CpuBuf cl(nans(1)), cdsc(nans(1)), cls({1.f});
  GpuBuf gl(nans(1), MK_F32), gdsc(nans(1), MK_F32), gls({1.f}, MK_F32);
  if (!CPU(local_align(g_cpu_ctx, cl.f32(), cdsc.f32(), cdp.p, cds.p, one ? cdp.p : cdpa.p, one ? cds.p : cdsa.p, cp.p, cs.p, cl_.data(),
                       one ? cp.p : cpa.p, one ? cs.p : csa.p, counts.data(), MK_F32, Bl, Bg, P, S, E, offset, cls.f32()),
           what) ||
      !GPU(local_align(g_gpu_ctx, gl.f32(), gdsc.f32(), gdp.p, gds.p, one ? gdp.p : gdpa.p, one ? gds.p : gdsa.p, gp.p, gs.p, cl_.data(),
                       one ? gp.p : gpa.p, one ? gs.p : gsa.p, counts.data(), dt, Bl, Bg, P, S, E, offset, gls.f32()),
           what))
    return;
  std::vector<Out> outs = {{"loss", {gl.get()[0], gdsc.get()[0]}, {cl.get()[0], cdsc.get()[0]}}, {"dpatches", gdp.get(), cdp.get()},
                           {"dsentences", gds.get(), cds.get()}};
  if (!one) outs.push_back({"dpatches_all", gdpa.get(), cdpa.get()}), outs.push_back({"dsentences_all", gdsa.get(), cdsa.get()});
  compare(what, dt, outs);
}

void check_local_align() {
  for (mk_dtype dt : kDtypes) {
    local_align_case(dt, 5, 5, 37, 6, 24, 0);
    local_align_case(dt, 2, 6, 20, 12, 16, 3);
  }
  if (!g_emulated) local_align_case(MK_BF16, 33, 33, 196, 12, 128, 0);
}

// MaMA's local loss at the paper's batch (B 144, 1369 patches, 12 sentences, E 512).
void bench_local_align_shape(FILE* out, mk_dtype dt, int64_t B, int64_t P, int64_t S, int64_t E) {
  GpuBuf pat(randn(B * P * E), dt), sen(randn(B * S * E), dt), dp(std::vector<float>(B * P * E), dt), ds(std::vector<float>(B * S * E), dt);
  std::vector<int32_t> counts(B);
  std::string cs;
  for (int64_t b = 0; b < B; ++b) counts[b] = int32_t(8 + b % 5), cs += fmt("%s%d", b ? "," : "", counts[b]);
  GpuBuf loss(nans(1), MK_F32), dscale(nans(1), MK_F32), ls({1.f}, MK_F32);
  const std::string name = fmt("fwd+bwd B%lld P%lld S%lld E%lld", (long long)B, (long long)P, (long long)S, (long long)E);
  const double s = time_gpu("bench local_align", [&] {
    return GPU(local_align(g_gpu_ctx, loss.f32(), dscale.f32(), dp.p, ds.p, dp.p, ds.p, pat.p, sen.p, counts.data(), pat.p, sen.p, counts.data(), dt, B,
                           B, P, S, E, 0, ls.f32()),
               "bench local_align");
  });
  record(out, "local_align", dt, name,
         fmt("\"B\":%lld,\"P\":%lld,\"S\":%lld,\"E\":%lld,\"counts\":[%s]", (long long)B, (long long)P, (long long)S, (long long)E,
             cs.c_str()),
         s, 2.0 * B * B * S * P * E);
}

void bench_local_align(FILE* out, mk_dtype dt) { bench_local_align_shape(out, dt, 144, 1369, 12, 512); }

}  // namespace

MK_OP_CASES(local_align, {"local_align"}, check_local_align, bench_local_align);

}  // namespace ops
