// gelu.h: the constants of GELU's erf and tanh forms, shared by native/cpu/gelu.cpp and
// native/cuda/gelu.cu.
#pragma once

namespace mk::gelu {

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kSqrt2OverPi = 0.79788456080286536f;
constexpr float kC = 0.044715f;
// Tanh form: ½(1 + tanh u) = σ(2u) = 1/(1 + 2^v), v = −2u·log2 e = x·(kTanhA + kTanhB·x²).
constexpr float kTanhA = -2.f * kSqrt2OverPi * 1.44269504088896341f, kTanhB = kTanhA * kC;

}  // namespace mk::gelu
