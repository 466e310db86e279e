// copy.cpp: dst = src over n floats, in parallel (compiled per ISA); also the bandwidth
// yardstick of the memory-bound benches. Copies larger than the last-level cache use
// non-temporal stores (store_out in simd.h): the destination is not read first and does not
// evict the working set. fill: x = value, the same way.
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {
namespace {
void copy_range(float* dst, const float* src, int64_t i, int64_t i1, bool streaming) {
  // A chunk may start mid-vector: copy up to the alignment streaming stores need, or every
  // store of the chunk would fall back to a normal one.
  if (streaming)
    for (; i < i1 && reinterpret_cast<uintptr_t>(dst + i) % (4 * V::W) != 0; ++i) dst[i] = src[i];
  for (; i + 4 * V::W <= i1; i += 4 * V::W) {
    const V a = V::load(src + i), b = V::load(src + i + V::W), c = V::load(src + i + 2 * V::W), d = V::load(src + i + 3 * V::W);
    store_out(a, dst + i, streaming);
    store_out(b, dst + i + V::W, streaming);
    store_out(c, dst + i + 2 * V::W, streaming);
    store_out(d, dst + i + 3 * V::W, streaming);
  }
  for (; i < i1; ++i) dst[i] = src[i];
}
}  // namespace

void copy(float* dst, const float* src, int64_t n) {
  const bool streaming = n * 4 >= kStreamBytes;
  parallel_chunks(n, 65536, [=](int64_t i0, int64_t i1, int64_t) { copy_range(dst, src, i0, i1, streaming); });
  if (streaming) stream_fence();
}

void fill(float* x, int64_t n, float value) {
  const bool streaming = n * 4 >= kStreamBytes;
  parallel_chunks(n, 65536, [=](int64_t i0, int64_t i1, int64_t) {
    const V v = V::set1(value);
    int64_t i = i0;
    if (streaming)
      for (; i < i1 && reinterpret_cast<uintptr_t>(x + i) % (4 * V::W) != 0; ++i) x[i] = value;
    for (; i + V::W <= i1; i += V::W) store_out(v, x + i, streaming);
    for (; i < i1; ++i) x[i] = value;
  });
  if (streaming) stream_fence();
}

}  // namespace MK_ISA
}  // namespace mk
