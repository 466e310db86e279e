// sumsq.cpp: Σ x² in double (compiled per ISA), for the global gradient norm. Blocks of 1024
// elements are summed in f32 vectors, the blocks in double.
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {

void sumsq(double* out, const float* x, int64_t n) {
  const int64_t chunks = chunk_count(n, 65536);
  double part[4096];
  parallel_chunks(n, 65536, [&](int64_t i0, int64_t i1, int64_t c) {
    double total = 0;
    for (int64_t b = i0; b < i1; b += 1024) {
      const int64_t e = b + 1024 < i1 ? b + 1024 : i1;
      total += double(vdot(x + b, x + b, e - b));
    }
    part[c] = total;
  });
  double s = 0;
  for (int64_t c = 0; c < chunks; ++c) s += part[c];
  *out = s;
}

}  // namespace MK_ISA
}  // namespace mk
