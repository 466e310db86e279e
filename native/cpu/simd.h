// simd.h: the vector type V that the CPU op files (layernorm.cpp, gelu.cpp, ...) are written
// against. Each op file is compiled three times (CMakeLists.txt, binding.gyp) with
// MK_ISA_LEVEL 0 (scalar, libm), 1 (AVX2+FMA) or 2 (AVX-512), into namespace mk::MK_ISA, and
// dispatch.cpp picks one version per call from isa(). Rules for op files: no inline function
// or template from a shared header other than this one and <immintrin.h> may be instantiated
// with different code per ISA (the linker would keep one copy for all three), so op files
// use only V, plain loops and their own functions in namespace mk::MK_ISA.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>

#ifndef MK_ISA_LEVEL
#error "compile op files with MK_ISA_LEVEL=0|1|2 (see CMakeLists.txt)"
#endif

#if MK_ISA_LEVEL == 2
#define MK_ISA avx512
#elif MK_ISA_LEVEL == 1
#define MK_ISA avx2
#else
#define MK_ISA scalar
#endif

#if MK_ISA_LEVEL >= 1
#include <immintrin.h>
#endif

namespace mk {
namespace MK_ISA {
namespace {

#if MK_ISA_LEVEL == 2
struct V {
  __m512 v;
  static constexpr int W = 16;
  static V load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static __mmask16 mask(int64_t n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1); }
  static V load(const float* p, int64_t n) { return {_mm512_maskz_loadu_ps(mask(n), p)}; }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  void stream(float* p) const { _mm512_stream_ps(p, v); }  // p 64-byte aligned
  void store(float* p, int64_t n) const { _mm512_mask_storeu_ps(p, mask(n), v); }
  static V set1(float x) { return {_mm512_set1_ps(x)}; }
  static V zero() { return {_mm512_setzero_ps()}; }
  friend V operator+(V a, V b) { return {_mm512_add_ps(a.v, b.v)}; }
  friend V operator-(V a, V b) { return {_mm512_sub_ps(a.v, b.v)}; }
  friend V operator*(V a, V b) { return {_mm512_mul_ps(a.v, b.v)}; }
  friend V operator/(V a, V b) { return {_mm512_div_ps(a.v, b.v)}; }
  static V fma(V a, V b, V c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }  // a·b + c
  static V max(V a, V b) { return {_mm512_max_ps(a.v, b.v)}; }
  static V min(V a, V b) { return {_mm512_min_ps(a.v, b.v)}; }
  static V sqrt(V a) { return {_mm512_sqrt_ps(a.v)}; }
  // 1/a to about 1 ulp: 14-bit estimate and one Newton step (cheaper than a division)
  static V rcp(V a) {
    const __m512 r = _mm512_rcp14_ps(a.v);
    return {_mm512_mul_ps(r, _mm512_fnmadd_ps(a.v, r, _mm512_set1_ps(2.f)))};
  }
  static V abs(V a) { return {_mm512_abs_ps(a.v)}; }
  static V round(V a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
  // 2^n for integral n in [-126, 127]
  static V pow2(V n) { return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n.v), _mm512_set1_epi32(127)), 23))}; }
  // |mag| with the sign of s
  static V copysign(V mag, V s) {
    const __m512i m = _mm512_set1_epi32(0x7fffffff);
    return {_mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(_mm512_castps_si512(mag.v), m), _mm512_andnot_si512(m, _mm512_castps_si512(s.v))))};
  }
  // where(x > 0, a, b)
  static V select_pos(V x, V a, V b) { return {_mm512_mask_blend_ps(_mm512_cmp_ps_mask(x.v, _mm512_setzero_ps(), _CMP_GT_OQ), b.v, a.v)}; }
  float sum() const { return _mm512_reduce_add_ps(v); }
  float hmax() const { return _mm512_reduce_max_ps(v); }
};
#elif MK_ISA_LEVEL == 1
struct V {
  __m256 v;
  static constexpr int W = 8;
  static V load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static __m256i mask(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n < 8 ? n : 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V load(const float* p, int64_t n) { return {_mm256_maskload_ps(p, mask(n))}; }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  void stream(float* p) const { _mm256_stream_ps(p, v); }  // p 32-byte aligned
  void store(float* p, int64_t n) const { _mm256_maskstore_ps(p, mask(n), v); }
  static V set1(float x) { return {_mm256_set1_ps(x)}; }
  static V zero() { return {_mm256_setzero_ps()}; }
  friend V operator+(V a, V b) { return {_mm256_add_ps(a.v, b.v)}; }
  friend V operator-(V a, V b) { return {_mm256_sub_ps(a.v, b.v)}; }
  friend V operator*(V a, V b) { return {_mm256_mul_ps(a.v, b.v)}; }
  friend V operator/(V a, V b) { return {_mm256_div_ps(a.v, b.v)}; }
  static V fma(V a, V b, V c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
  static V max(V a, V b) { return {_mm256_max_ps(a.v, b.v)}; }
  static V min(V a, V b) { return {_mm256_min_ps(a.v, b.v)}; }
  static V sqrt(V a) { return {_mm256_sqrt_ps(a.v)}; }
  // 1/a to about 2 ulp: 12-bit estimate and one Newton step (cheaper than a division)
  static V rcp(V a) {
    const __m256 r = _mm256_rcp_ps(a.v);
    return {_mm256_mul_ps(r, _mm256_fnmadd_ps(a.v, r, _mm256_set1_ps(2.f)))};
  }
  static V abs(V a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.f), a.v)}; }
  static V round(V a) { return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
  static V pow2(V n) { return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127)), 23))}; }
  static V copysign(V mag, V s) {
    const __m256 sign = _mm256_set1_ps(-0.f);
    return {_mm256_or_ps(_mm256_andnot_ps(sign, mag.v), _mm256_and_ps(sign, s.v))};
  }
  static V select_pos(V x, V a, V b) { return {_mm256_blendv_ps(b.v, a.v, _mm256_cmp_ps(x.v, _mm256_setzero_ps(), _CMP_GT_OQ))}; }
  float sum() const {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  float hmax() const {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};
#else
struct V {
  float v;
  static constexpr int W = 1;
  static V load(const float* p) { return {*p}; }
  static V load(const float* p, int64_t n) { return {n > 0 ? *p : 0.f}; }
  void store(float* p) const { *p = v; }
  void stream(float* p) const { *p = v; }
  void store(float* p, int64_t n) const {
    if (n > 0) *p = v;
  }
  static V set1(float x) { return {x}; }
  static V zero() { return {0.f}; }
  friend V operator+(V a, V b) { return {a.v + b.v}; }
  friend V operator-(V a, V b) { return {a.v - b.v}; }
  friend V operator*(V a, V b) { return {a.v * b.v}; }
  friend V operator/(V a, V b) { return {a.v / b.v}; }
  static V fma(V a, V b, V c) { return {a.v * b.v + c.v}; }
  static V max(V a, V b) { return {a.v > b.v ? a.v : b.v}; }
  static V min(V a, V b) { return {a.v < b.v ? a.v : b.v}; }
  static V sqrt(V a) { return {std::sqrt(a.v)}; }
  static V rcp(V a) { return {1.f / a.v}; }
  static V abs(V a) { return {std::fabs(a.v)}; }
  static V copysign(V mag, V s) { return {std::copysign(mag.v, s.v)}; }
  static V select_pos(V x, V a, V b) { return x.v > 0 ? a : b; }
  float sum() const { return v; }
  float hmax() const { return v; }
};
#endif

// Loads/stores n ≤ W lanes, or all W when n == W without a mask: masked stores are slow on
// AMD (microcoded VMASKMOVPS), so full vectors must take the plain path.
inline V load_n(const float* p, int64_t n) { return n == V::W ? V::load(p) : V::load(p, n); }
inline void store_n(V v, float* p, int64_t n) {
  if (n == V::W) v.store(p);
  else v.store(p, n);
}

// Outputs larger than this skip the cache (streaming stores): they would not stay in it
// anyway, and a normal store first reads the line (read-for-ownership), a third more traffic.
constexpr int64_t kStreamBytes = int64_t(32) << 20;

// Stores v at p, with a non-temporal store when `streaming` and p is vector-aligned. Call
// stream_fence() after a kernel that may have streamed.
inline void store_out(V v, float* p, bool streaming) {
  if (streaming && (reinterpret_cast<uintptr_t>(p) % (4 * V::W)) == 0) v.stream(p);
  else v.store(p);
}
inline void stream_fence() {
#if MK_ISA_LEVEL >= 1
  _mm_sfence();
#endif
}

// Asks for [p, p + n) ahead of use. Measure before using it: GELU's forward gains 5–8 % at
// 64 MiB from a span 4 KiB ahead, but with two or more input streams (GELU's backward,
// layerNorm) one prefetch per vector cost 5–17 % and the hardware streamers kept up alone.
inline void prefetch_span(const float* p, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) __builtin_prefetch(p + i, 0, 3);
}

// Zeroed scratch floats owned by one call (no STL containers in op files: see above).
struct Scratch {
  float* p;
  explicit Scratch(int64_t n) : p(static_cast<float*>(std::calloc(size_t(n > 0 ? n : 1), sizeof(float)))) {
    if (!p) throw std::bad_alloc();
  }
  ~Scratch() { std::free(p); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

inline float fsqrt(float x) { return __builtin_sqrtf(x); }

// Σ a[i] over [0, n), vectorised with a scalar tail. Four accumulators: one chain of
// dependent adds would leave the loop latency-bound (3–4 cycles a vector).
inline float vsum(const float* a, int64_t n) {
  V s0 = V::zero(), s1 = V::zero(), s2 = V::zero(), s3 = V::zero();
  int64_t i = 0;
  for (; i + 4 * V::W <= n; i += 4 * V::W) {
    s0 = s0 + V::load(a + i);
    s1 = s1 + V::load(a + i + V::W);
    s2 = s2 + V::load(a + i + 2 * V::W);
    s3 = s3 + V::load(a + i + 3 * V::W);
  }
  for (; i + V::W <= n; i += V::W) s0 = s0 + V::load(a + i);
  float t = ((s0 + s1) + (s2 + s3)).sum();
  for (; i < n; ++i) t += a[i];
  return t;
}

// Σ (a[i] − c)² over [0, n), four accumulators.
inline float vsumsq_centered(const float* a, float c, int64_t n) {
  const V vc = V::set1(c);
  V s0 = V::zero(), s1 = V::zero(), s2 = V::zero(), s3 = V::zero();
  int64_t i = 0;
  for (; i + 4 * V::W <= n; i += 4 * V::W) {
    const V t0 = V::load(a + i) - vc, t1 = V::load(a + i + V::W) - vc;
    const V t2 = V::load(a + i + 2 * V::W) - vc, t3 = V::load(a + i + 3 * V::W) - vc;
    s0 = V::fma(t0, t0, s0);
    s1 = V::fma(t1, t1, s1);
    s2 = V::fma(t2, t2, s2);
    s3 = V::fma(t3, t3, s3);
  }
  for (; i + V::W <= n; i += V::W) {
    const V t = V::load(a + i) - vc;
    s0 = V::fma(t, t, s0);
  }
  float t = ((s0 + s1) + (s2 + s3)).sum();
  for (; i < n; ++i) t += (a[i] - c) * (a[i] - c);
  return t;
}

// Σ a[i]·b[i] over [0, n), four accumulators.
inline float vdot(const float* a, const float* b, int64_t n) {
  V s0 = V::zero(), s1 = V::zero(), s2 = V::zero(), s3 = V::zero();
  int64_t i = 0;
  for (; i + 4 * V::W <= n; i += 4 * V::W) {
    s0 = V::fma(V::load(a + i), V::load(b + i), s0);
    s1 = V::fma(V::load(a + i + V::W), V::load(b + i + V::W), s1);
    s2 = V::fma(V::load(a + i + 2 * V::W), V::load(b + i + 2 * V::W), s2);
    s3 = V::fma(V::load(a + i + 3 * V::W), V::load(b + i + 3 * V::W), s3);
  }
  for (; i + V::W <= n; i += V::W) s0 = V::fma(V::load(a + i), V::load(b + i), s0);
  float t = ((s0 + s1) + (s2 + s3)).sum();
  for (; i < n; ++i) t += a[i] * b[i];
  return t;
}

#if MK_ISA_LEVEL >= 1
// e^x, Cephes-style: x = n·ln2 + r, |r| ≤ ln2/2, degree-5 polynomial; about 2 ulp. Inputs
// are clamped to [-87.33, 88.37] so that 2^n stays a normal float (e^-87.33 ≈ 1.2e-38).
inline V vexp(V x) {
  x = V::min(V::max(x, V::set1(-87.33f)), V::set1(88.37f));
  const V n = V::round(x * V::set1(1.44269504088896341f));
  V r = V::fma(n, V::set1(-0.693359375f), x);
  r = V::fma(n, V::set1(2.12194440e-4f), r);
  V p = V::set1(1.9875691500e-4f);
  p = V::fma(p, r, V::set1(1.3981999507e-3f));
  p = V::fma(p, r, V::set1(8.3334519073e-3f));
  p = V::fma(p, r, V::set1(4.1665795894e-2f));
  p = V::fma(p, r, V::set1(1.6666665459e-1f));
  p = V::fma(p, r, V::set1(5.0000001201e-1f));
  const V y = V::fma(p, r * r, r + V::set1(1.f));
  return y * V::pow2(n);
}
// 2^v, for callers that fold log2(e) into constants they multiply by anyway (saves the
// multiply and the two-step ln 2 reduction of vexp): v = n + f, |f| ≤ ½, 2^f by a degree-5
// minimax polynomial (2.3e-7 relative in f32, as vexp). v is clamped to [−126, 127] (NaN stays
// NaN: min/max return their second operand when one is NaN).
inline V vexp2(V v) {
  v = V::min(V::set1(127.f), V::max(V::set1(-126.f), v));
  const V n = V::round(v), f = v - n;
  V p = V::set1(1.3276471561391996e-3f);
  p = V::fma(p, f, V::set1(9.675541373459828e-3f));
  p = V::fma(p, f, V::set1(5.550713275199056e-2f));
  p = V::fma(p, f, V::set1(2.4022119723145446e-1f));
  p = V::fma(p, f, V::set1(6.931469670634901e-1f));
  p = V::fma(p, f, V::set1(1.000000071654815f));
  return p * V::pow2(n);
}
#else
inline V vexp(V x) { return {std::exp(x.v)}; }
inline V vexp2(V v) { return {std::exp2(V::min(V::set1(127.f), V::max(V::set1(-126.f), v)).v)}; }  // clamped as above
#endif

}  // namespace
}  // namespace MK_ISA
}  // namespace mk
