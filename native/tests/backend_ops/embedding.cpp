// embedding.cpp: the op test's embedding cases: the row gather, and its scatter-add backward into a
// dtable that starts random, with repeated ids (many rows per id, one id for every row) and widths
// around the 256-thread blocks.
#include "common.h"

namespace ops {
namespace {

// ids: N draws from [0, V) (repeats when N > V), or every row the same id when `one_id`.
void embedding_case(mk_dtype dt, int64_t V, int64_t N, int64_t D, bool one_id = false) {
  const std::string what = fmt("embedding %s V=%lld N=%lld D=%lld%s", dtype_name(dt), (long long)V, (long long)N, (long long)D,
                               one_id ? " one id" : "");
  std::uniform_int_distribution<int32_t> pick(0, int32_t(V - 1));
  std::vector<int32_t> ids(N);
  const int32_t only = pick(g_rng);
  for (auto& i : ids) i = one_id ? only : pick(g_rng);
  auto table = rnd(V * D, dt), dy = rnd(N * D, dt), d0 = rnd(V * D, dt);
  CpuBuf ct(table), cy(nans(N * D)), cdy(dy), cdt(d0);
  GpuBuf gt(table, dt), gy(nans(N * D), dt), gdy(dy, dt), gdt(d0, dt);
  if (!CPU(embedding_forward(g_cpu_ctx, cy.p, ct.p, ids.data(), MK_F32, N, D), what) ||
      !CPU(embedding_backward(g_cpu_ctx, cdt.p, cdy.p, ids.data(), MK_F32, N, D), what) ||
      !GPU(embedding_forward(g_gpu_ctx, gy.p, gt.p, ids.data(), dt, N, D), what) ||
      !GPU(embedding_backward(g_gpu_ctx, gdt.p, gdy.p, ids.data(), dt, N, D), what))
    return;
  // The gather copies values: exact (loose 0).
  compare(what + " forward", dt, {{"y", gy.get(), cy.get()}}, 0);
  compare(what + " backward", dt, {{"dtable", gdt.get(), cdt.get()}});
}

void check_embedding() {
  for (mk_dtype dt : kDtypes) {
    embedding_case(dt, 1, 3, 1);
    embedding_case(dt, 10, 20, 7);
    embedding_case(dt, 5, 64, 130);
    embedding_case(dt, 50, 300, 33);
    embedding_case(dt, 300, 257, 256);
    embedding_case(dt, 7, 9, 257);
    embedding_case(dt, 40, 100, 31, true);
  }
}

}  // namespace

MK_OP_CASES(embedding, {"embedding_forward", "embedding_backward"}, check_embedding, nullptr);

}  // namespace ops
