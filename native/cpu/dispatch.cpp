// dispatch.cpp: mk::NAME for every op of ops.h calls mk::avx512::NAME, mk::avx2::NAME or
// mk::scalar::NAME as isa() says. Compiled once, for the baseline ISA.
#include "isa.h"
#include "ops.h"

namespace mk {

#define MK_DISPATCH_OP(name, params, args)         \
  void name params {                               \
    switch (isa()) {                               \
      case Isa::avx512: return avx512::name args;  \
      case Isa::avx2: return avx2::name args;      \
      default: return scalar::name args;           \
    }                                              \
  }
MK_CPU_OPS(MK_DISPATCH_OP)

}  // namespace mk
