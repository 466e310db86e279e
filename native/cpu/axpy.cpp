// axpy.cpp: y += alpha·x and x *= alpha (·*by) over n floats, in parallel (compiled per ISA): gradient
// accumulation and scaling in place, with no temporary.
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {

void axpy(float* y, const float* x, int64_t n, float alpha) {
  parallel_chunks(n, 32768, [=](int64_t i0, int64_t i1, int64_t) {
    const V a = V::set1(alpha);
    int64_t i = i0;
    for (; i + V::W <= i1; i += V::W) V::fma(a, V::load(x + i), V::load(y + i)).store(y + i);
    if (i < i1) V::fma(a, V::load(x + i, i1 - i), V::load(y + i, i1 - i)).store(y + i, i1 - i);
  });
}

void scale(float* x, int64_t n, float alpha, const float* by) {
  const float f = by ? alpha * *by : alpha;
  parallel_chunks(n, 32768, [=](int64_t i0, int64_t i1, int64_t) {
    const V a = V::set1(f);
    int64_t i = i0;
    for (; i + V::W <= i1; i += V::W) (V::load(x + i) * a).store(x + i);
    if (i < i1) (V::load(x + i, i1 - i) * a).store(x + i, i1 - i);
  });
}

}  // namespace MK_ISA
}  // namespace mk
