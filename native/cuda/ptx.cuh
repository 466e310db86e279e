// ptx.cuh: the warp-level matrix instructions the kernels use, one device function each: the
// PTX on a GPU, the emulated fragment exchange (emu/emu.h) in the emulated library. A kernel
// reaches tensor cores only through these, so that the emulation runs its index logic.
#pragma once
#include <type_traits>

#include "common.cuh"

namespace mk_cuda {

// c += a·b for one m16n8k16 tile (T = __half or __nv_bfloat16 operands, f32 accumulators); the
// fragment layouts are in emu/emu.h (mma_m16n8k16) and the PTX ISA.
template <class T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(MK_CUDA_EMU)
  mk_emu::mma_m16n8k16<T>(c, a, b0, b1);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (std::is_same_v<T, __half>)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  __trap();
#endif
}

}  // namespace mk_cuda
