// matmul_args.h: the matmul entry's argument checks (mamakit.h) that both backends make before
// touching memory: pointers, sizes, and which (operand dtype, c dtype) pairs a backend accepts,
// with the message for the others. Shared by native/cpu/backend.cpp and native/cuda/matmul.cu.
#pragma once
#include <cstdint>
#include <string>

#include "mamakit.h"

namespace mk::matmul_args {

inline const char* label(mk_dtype d) { return d == MK_F32 ? "f32" : d == MK_BF16 ? "bf16" : d == MK_F16 ? "f16" : "an unknown dtype"; }

// c in the operands' dtype, or f32 with 16-bit operands (mixed-precision weight gradients).
inline bool allowed(mk_dtype dtype, mk_dtype c_dtype) {
  const bool known = dtype == MK_F32 || dtype == MK_BF16 || dtype == MK_F16;
  return known && (c_dtype == dtype || (c_dtype == MK_F32 && dtype != MK_F32));
}

// What is wrong with the pointers or sizes, or "" when nothing is.
inline std::string problem(const void* c, const void* a, const void* b, int64_t M, int64_t N, int64_t K) {
  if (!c || !a || !b) return "matmul: c, a and b must not be NULL";
  if (M < 1 || N < 1 || K < 1) return "matmul: M, N and K must be at least 1, got " + std::to_string(M) + ", " + std::to_string(N) + ", " + std::to_string(K);
  return "";
}

// "matmul: <who> does not support a, b in bf16 with c in f16 (...)".
inline std::string refusal(const char* who, mk_dtype dtype, mk_dtype c_dtype, const char* supported) {
  return std::string("matmul: ") + who + " does not support a, b in " + label(dtype) + " with c in " + label(c_dtype) + " (" + supported + ")";
}

}  // namespace mk::matmul_args
