// gelu.cpp: GELU forward and backward, exact (erf) and tanh forms (compiled per ISA).
//   erf:  y = ½x(1 + erf(x/√2)),               y' = ½(1 + erf(x/√2)) + x·φ(x)
//   tanh: y = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³),
//         y' = ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²)
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {
namespace {

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kSqrt2OverPi = 0.79788456080286536f;
constexpr float kC = 0.044715f;

inline V gelu(V x, bool tanh_form) {
  const V half = V::set1(0.5f), one = V::set1(1.f);
  if (tanh_form) {
    const V u = V::set1(kSqrt2OverPi) * V::fma(V::set1(kC) * x, x * x, x);
    return half * x * (one + vtanh(u));
  }
  return half * x * (one + verf(x * V::set1(kInvSqrt2)));
}

inline V gelu_grad(V x, bool tanh_form) {
  const V half = V::set1(0.5f), one = V::set1(1.f);
  if (tanh_form) {
    const V x2 = x * x;
    const V t = vtanh(V::set1(kSqrt2OverPi) * V::fma(V::set1(kC) * x, x2, x));
    const V du = V::set1(kSqrt2OverPi) * V::fma(V::set1(3.f * kC), x2, one);
    return V::fma(half * x * (one - t * t), du, half * (one + t));
  }
  const V pdf = V::set1(kInvSqrt2Pi) * vexp(V::set1(-0.5f) * x * x);
  return V::fma(x, pdf, half * (one + verf(x * V::set1(kInvSqrt2))));
}

}  // namespace

void gelu_forward(float* y, const float* x, int64_t n, int tanh_approx) {
  const bool streaming = n * 4 >= kStreamBytes;
  parallel_chunks(n, 16384, [&](int64_t i0, int64_t i1, int64_t) {
    int64_t i = i0;
    for (; i + V::W <= i1; i += V::W) store_out(gelu(V::load(x + i), tanh_approx), y + i, streaming);
    if (i < i1) gelu(V::load(x + i, i1 - i), tanh_approx).store(y + i, i1 - i);
  });
  if (streaming) stream_fence();
}

void gelu_backward(float* dx, const float* dy, const float* x, int64_t n, int tanh_approx) {
  const bool streaming = n * 4 >= kStreamBytes;
  parallel_chunks(n, 16384, [&](int64_t i0, int64_t i1, int64_t) {
    int64_t i = i0;
    for (; i + V::W <= i1; i += V::W) store_out(V::load(dy + i) * gelu_grad(V::load(x + i), tanh_approx), dx + i, streaming);
    if (i < i1) (V::load(dy + i, i1 - i) * gelu_grad(V::load(x + i, i1 - i), tanh_approx)).store(dx + i, i1 - i);
  });
  if (streaming) stream_fence();
}

}  // namespace MK_ISA
}  // namespace mk
