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

// The shared-state-space address of a generic pointer into shared memory (what ldmatrix and
// cp.async take on a GPU).
__device__ __forceinline__ unsigned smem_addr(const void* p) {
#if defined(MK_CUDA_EMU)
  return unsigned(reinterpret_cast<uintptr_t>(p));
#else
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
#endif
}

// ldmatrix.sync.aligned.m8n8.x{NM}[.trans].shared.b16: NM 8×8 b16 matrices from shared memory,
// lanes 8j..8j+7 giving the row addresses of matrix j (16 bytes each, 16-byte aligned); r[j] is
// the lane's (row lane/4, cols 2·(lane%4), +1) of matrix j, or with Trans (rows 2·(lane%4), +1,
// col lane/4): an mma16816 A or B fragment (emu/emu.h, ldmatrix).
template <int NM, bool Trans>
__device__ __forceinline__ void ldmatrix(uint32_t (&r)[NM], const void* row) {
#if defined(MK_CUDA_EMU)
  mk_emu::ldmatrix<NM, Trans>(r, row);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned a = smem_addr(row);
  if constexpr (NM == 4 && Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
  else if constexpr (NM == 4)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
  else if constexpr (NM == 2 && Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(a));
  else if constexpr (NM == 2)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(a));
  else if constexpr (Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(a));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(a));
#else
  __trap();
#endif
}

// cp.async.cg.shared.global, 16 bytes, global → shared without passing through registers: the
// 16 bytes at src when `full`, else 16 zeros (src-size 0: src is not read). Lands only after the
// cp_async_wait that retires its group (cp_async_commit); dst and src 16-byte aligned.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool full) {
#if defined(MK_CUDA_EMU)
  mk_emu::cp_async(dst, src, 16, full ? 16 : 0);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(full ? 16 : 0) : "memory");
#else
  __trap();
#endif
}

// cp.async.commit_group: the thread's copies issued since the last commit become one group.
__device__ __forceinline__ void cp_async_commit() {
#if defined(MK_CUDA_EMU)
  mk_emu::cp_async_commit();
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#else
  __trap();
#endif
}

// cp.async.wait_group N: waits until at most N of the thread's committed groups are pending.
// Other threads see the data only after a __syncthreads that follows their own waits.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(MK_CUDA_EMU)
  mk_emu::cp_async_wait(N);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#else
  __trap();
#endif
}

}  // namespace mk_cuda
