// copy2d.cpp: a rows × cols block between two row-strided layouts (compiled per ISA):
// dst[r·dst_stride + c] = src[r·src_stride + c]. Splits a fused QKV projection into heads,
// assembles token sequences, and their backwards.
#include <cstring>

#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {

void copy2d(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows, int64_t cols) {
  parallel_chunks(rows, 1 + 16384 / (cols > 0 ? cols : 1), [&](int64_t r0, int64_t r1, int64_t) {
    for (int64_t r = r0; r < r1; ++r) std::memcpy(dst + r * dst_stride, src + r * src_stride, size_t(cols) * sizeof(float));
  });
}

}  // namespace MK_ISA
}  // namespace mk
