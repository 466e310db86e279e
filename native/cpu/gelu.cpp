// gelu.cpp: GELU forward and backward, exact (erf) and tanh forms (compiled per ISA).
//   erf:  y = ½x(1 + erf(x/√2)),               y' = ½(1 + erf(x/√2)) + x·φ(x)
//   tanh: y = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³),
//         y' = ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²)
//   computed as ½(1 + tanh u) = σ(2u) = 1/(1 + e^{−2u}): one exponential and one division.
#include "../common/gelu.h"
#include "ops.h"
#include "simd.h"
#include "threadpool.h"

namespace mk {
namespace MK_ISA {
namespace {

using namespace gelu;

#if MK_ISA_LEVEL >= 1
// erf(z) ≈ z·p(z²)/q(z²) on z clamped to [−4, 4] (erf(±4) rounds to ±1 in f32): the rational
// approximation Eigen uses for single precision (generic_fast_erf_float), a few ulp. Here
// z = x/√2 and the ½ are folded into the coefficients:
//   Φ(x) = ½ + xc·P(xc²)/Q(xc²),  xc = x clamped to [−4√2, 4√2],  P(t) = p(t/2)/(2√2),  Q(t) = q(t/2),
// and y = x·Φ(x) with x first clamped below at −4√2: there Φ is 0 within ~1e-7, and |y| < 4.4e-8
// for any smaller x, so the product must not grow with |x|. One division instead of
// a reciprocal estimate and Newton step: ~15 % faster in L1 than ½x(1 + erf(x/√2)), no less accurate.
constexpr double kErfP[7] = {-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
                             -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02};  // z¹² .. z⁰
constexpr double kErfQ[5] = {-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
                             -1.42647390514189e-02};  // z⁸ .. z⁰
constexpr float folded(double c, int power_of_t, double factor) {
  for (int i = 0; i < power_of_t; ++i) factor *= 0.5;
  return float(c * factor);
}
constexpr double kInvTwoSqrt2 = 0.35355339059327376;

inline V gelu_erf(V x) {
  // Constants first: max/min return their second operand when one is NaN, so NaN stays NaN.
  const V xl = V::max(V::set1(-5.65685424949238f), x), xc = V::min(V::set1(5.65685424949238f), xl);
  const V t = xc * xc;
  V p = V::set1(folded(kErfP[0], 6, kInvTwoSqrt2));
  p = V::fma(p, t, V::set1(folded(kErfP[1], 5, kInvTwoSqrt2)));
  p = V::fma(p, t, V::set1(folded(kErfP[2], 4, kInvTwoSqrt2)));
  p = V::fma(p, t, V::set1(folded(kErfP[3], 3, kInvTwoSqrt2)));
  p = V::fma(p, t, V::set1(folded(kErfP[4], 2, kInvTwoSqrt2)));
  p = V::fma(p, t, V::set1(folded(kErfP[5], 1, kInvTwoSqrt2)));
  p = V::fma(p, t, V::set1(folded(kErfP[6], 0, kInvTwoSqrt2)));
  V q = V::set1(folded(kErfQ[0], 4, 1.0));
  q = V::fma(q, t, V::set1(folded(kErfQ[1], 3, 1.0)));
  q = V::fma(q, t, V::set1(folded(kErfQ[2], 2, 1.0)));
  q = V::fma(q, t, V::set1(folded(kErfQ[3], 1, 1.0)));
  q = V::fma(q, t, V::set1(folded(kErfQ[4], 0, 1.0)));
  return xl * V::max(V::zero(), V::fma(xc, p / q, V::set1(0.5f)));  // Φ ≥ 0 despite the rounding near −4√2
}
#else
inline V gelu_erf(V x) { return {0.5f * x.v * (1.f + std::erf(x.v * kInvSqrt2))}; }
#endif

inline V gelu(V x, bool tanh_form) {
  if (tanh_form) return x / (V::set1(1.f) + vexp2(x * V::fma(V::set1(kTanhB), x * x, V::set1(kTanhA))));
  return gelu_erf(x);
}

#if MK_ISA_LEVEL >= 1
// Φ(x) + x·φ(x) through Abramowitz & Stegun 7.1.26 (|error of erf| ≤ 1.5e-7), which writes
//   ½ erfc(|x|/√2) = h = ½·t·P(t)·e,  t = 1/(1 + p·|x|/√2),  e = e^{−x²/2},
// and Φ(x) = x > 0 ? 1 − h : h; x·φ(x) = x·e/√(2π) reuses e. The ½, 1/√2 and log2 e are folded
// into the constants (against erf then φ separately: 42 → ~28 vector operations, 1.4× in L1).
inline V gelu_grad_erf(V x) {
  const V t = V::set1(1.f) / V::fma(V::set1(0.3275911f * kInvSqrt2), V::abs(x), V::set1(1.f));
  V p = V::set1(0.5f * 1.061405429f);
  p = V::fma(p, t, V::set1(0.5f * -1.453152027f));
  p = V::fma(p, t, V::set1(0.5f * 1.421413741f));
  p = V::fma(p, t, V::set1(0.5f * -0.284496736f));
  p = V::fma(p, t, V::set1(0.5f * 0.254829592f));
  const V e = vexp2(x * x * V::set1(-0.5f * 1.44269504088896341f));
  const V h = p * t * e;
  return V::fma(x * V::set1(kInvSqrt2Pi), e, V::select_pos(x, V::set1(1.f) - h, h));
}
#else
inline V gelu_grad_erf(V x) {
  return {0.5f * (1.f + std::erf(x.v * kInvSqrt2)) + x.v * kInvSqrt2Pi * std::exp(-0.5f * x.v * x.v)};
}
#endif

inline V gelu_grad(V x, bool tanh_form) {
  if (tanh_form) {
    // y' = σ + x·σ(1 − σ)·2u',  σ = σ(2u) = 1/(1 + E),  E = e^{−2u},  1 − σ = E·σ (≤ 1, so
    // that x·2u'·(1 − σ) cannot overflow where E does not),  2u' = 2√(2/π)(1 + 3·0.044715x²)
    const V x2 = x * x;
    const V e = vexp2(x * V::fma(V::set1(kTanhB), x2, V::set1(kTanhA)));
    const V s = V::set1(1.f) / (V::set1(1.f) + e);
    const V du2 = V::fma(V::set1(2.f * kSqrt2OverPi * 3.f * kC), x2, V::set1(2.f * kSqrt2OverPi));
    return s * V::fma(x * du2, e * s, V::set1(1.f));
  }
  return gelu_grad_erf(x);
}

}  // namespace

namespace {
// The loops take their pointers by value: inside a lambda that captures by reference, every
// vector store (may-alias) forced the compiler to reload them each iteration.
// Four vectors an iteration: one GELU is a chain of ~25 dependent operations, and with a
// single vector in flight the loop was latency-bound (3.5 cycles an element in L1).
// A chunk may start mid-vector: one masked vector up to the alignment streaming stores need,
// or every store of the chunk would fall back to a normal one.
int64_t head(const float* out, int64_t i, int64_t i1, bool streaming) {
  if (!streaming) return 0;
  const int64_t mis = int64_t(reinterpret_cast<uintptr_t>(out + i) % (4 * V::W)) / 4;
  const int64_t h = mis ? V::W - mis : 0;
  return h < i1 - i ? h : i1 - i;
}

void gelu_range(float* y, const float* x, int64_t i, int64_t i1, bool tanh_form, bool streaming) {
  if (const int64_t h = head(y, i, i1, streaming)) {
    gelu(V::load(x + i, h), tanh_form).store(y + i, h);
    i += h;
  }
  for (; i + 4 * V::W <= i1; i += 4 * V::W) {
    if ((i & 255) == 0) prefetch_span(x + i + 1024, 256);  // 4 KiB ahead (simd.h says why)
    const V a = gelu(V::load(x + i), tanh_form), b = gelu(V::load(x + i + V::W), tanh_form);
    const V c = gelu(V::load(x + i + 2 * V::W), tanh_form), d = gelu(V::load(x + i + 3 * V::W), tanh_form);
    store_out(a, y + i, streaming);
    store_out(b, y + i + V::W, streaming);
    store_out(c, y + i + 2 * V::W, streaming);
    store_out(d, y + i + 3 * V::W, streaming);
  }
  for (; i + V::W <= i1; i += V::W) store_out(gelu(V::load(x + i), tanh_form), y + i, streaming);
  if (i < i1) gelu(V::load(x + i, i1 - i), tanh_form).store(y + i, i1 - i);
}

void gelu_grad_range(float* dx, const float* dy, const float* x, int64_t i, int64_t i1, bool tanh_form, bool streaming) {
  if (const int64_t h = head(dx, i, i1, streaming)) {
    (V::load(dy + i, h) * gelu_grad(V::load(x + i, h), tanh_form)).store(dx + i, h);
    i += h;
  }
  // No software prefetch here, unlike the forward: for two input streams it cost 15 % at 64 MiB
  // (one prefetch per vector) and gained nothing in cache; the hardware streamers keep up.
  for (; i + 4 * V::W <= i1; i += 4 * V::W) {
    const V a = gelu_grad(V::load(x + i), tanh_form), b = gelu_grad(V::load(x + i + V::W), tanh_form);
    const V c = gelu_grad(V::load(x + i + 2 * V::W), tanh_form), d = gelu_grad(V::load(x + i + 3 * V::W), tanh_form);
    store_out(V::load(dy + i) * a, dx + i, streaming);
    store_out(V::load(dy + i + V::W) * b, dx + i + V::W, streaming);
    store_out(V::load(dy + i + 2 * V::W) * c, dx + i + 2 * V::W, streaming);
    store_out(V::load(dy + i + 3 * V::W) * d, dx + i + 3 * V::W, streaming);
  }
  for (; i + V::W <= i1; i += V::W) store_out(V::load(dy + i) * gelu_grad(V::load(x + i), tanh_form), dx + i, streaming);
  if (i < i1) (V::load(dy + i, i1 - i) * gelu_grad(V::load(x + i, i1 - i), tanh_form)).store(dx + i, i1 - i);
}
}  // namespace

void gelu_forward(float* y, const float* x, int64_t n, int tanh_approx) {
  const bool streaming = n * 4 >= kStreamBytes;
  parallel_chunks(n, 16384, [=](int64_t i0, int64_t i1, int64_t) { gelu_range(y, x, i0, i1, tanh_approx, streaming); });
  if (streaming) stream_fence();
}

void gelu_backward(float* dx, const float* dy, const float* x, int64_t n, int tanh_approx) {
  const bool streaming = n * 4 >= kStreamBytes;
  parallel_chunks(n, 16384, [=](int64_t i0, int64_t i1, int64_t) { gelu_grad_range(dx, dy, x, i0, i1, tanh_approx, streaming); });
  if (streaming) stream_fence();
}

}  // namespace MK_ISA
}  // namespace mk
