// relu.cpp: max(x, 0) and its gradient dy·[x > 0] (compiled per ISA): the local heads' ReLU.
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {
namespace {

void relu_range(float* y, const float* x, int64_t i0, int64_t i1) {
  const V z = V::zero();
  int64_t i = i0;
  for (; i + V::W <= i1; i += V::W) V::max(V::load(x + i), z).store(y + i);
  for (; i < i1; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

void relu_grad_range(float* dx, const float* dy, const float* x, int64_t i0, int64_t i1) {
  const V z = V::zero();
  int64_t i = i0;
  // select_pos(x, dy, 0): dy where x > 0, else 0.
  for (; i + V::W <= i1; i += V::W) V::select_pos(V::load(x + i), V::load(dy + i), z).store(dx + i);
  for (; i < i1; ++i) dx[i] = x[i] > 0.f ? dy[i] : 0.f;
}

}  // namespace

void relu_forward(float* y, const float* x, int64_t n) {
  parallel_chunks(n, 16384, [=](int64_t i0, int64_t i1, int64_t) { relu_range(y, x, i0, i1); });
}

void relu_backward(float* dx, const float* dy, const float* x, int64_t n) {
  parallel_chunks(n, 16384, [=](int64_t i0, int64_t i1, int64_t) { relu_grad_range(dx, dy, x, i0, i1); });
}

}  // namespace MK_ISA
}  // namespace mk
