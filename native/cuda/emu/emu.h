// emu.h: the CUDA execution model on the CPU. The emulated CUDA backend
// (build/Release/libmamakit_cuda_emu.so, built by scripts/build-cuda-emu.mjs) is the native/cuda
// sources compiled by g++ against this folder, whose cuda_runtime.h, cuda_bf16.h and cuda_fp16.h
// stand in for the toolkit's. It runs every CUDA kernel in every CI; it is never timed.
//
// A launch runs each block of the grid on one of a few OS threads. The threads of a block are
// fibers that run in turn, each until it reaches a barrier or returns: __syncthreads() waits for
// every thread of the block that has not returned, a warp-level call (shuffle, vote, __syncwarp,
// mma) for the lanes of its mask. Between barriers the threads run one after another in an order
// shuffled anew at each barrier (seeded by the block: the same every run), so a missing barrier
// lets a thread read what another has not written yet, or overwrite what another has not read,
// about half the time whichever way the data flows. Each warp also has a pace (it sits out 0 to
// 3 of every 4 passes), so that warps drift dozens of warp-level calls apart between barriers,
// as on a GPU, instead of moving in lockstep through their shuffles and mmas. A warp-level call deposits each lane's
// operands in the warp's slots and reads the others' once the whole warp has arrived:
// mma_m16n8k16 gathers A, B and C across the 32 lanes exactly as the PTX fragment layouts place
// them. Barriers that can never complete (threads of one block at different barriers, a shuffle
// naming a lane that has returned), __trap() and bad launch configurations end the launch with a
// CUDA error whose text names the kernel, the block and what the threads were doing.
#pragma once
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_bf16.h"
#include "cuda_fp16.h"
#include "cuda_runtime.h"

#define MK_CUDA_EMU 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Static shared memory: one instance per OS thread, and a block's fibers all run on one. It keeps
// what the previous block on that thread left (as a GPU's may); dynamic shared memory starts NaN.
#define __shared__ static thread_local

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace mk_emu {

// What a thread of a running block sees (set by the scheduler before it resumes a fiber).
struct Lane {
  uint3 idx;
  unsigned linear, warp, lane;
};
struct Block {
  uint3 idx;
  dim3 dim, grid;
  unsigned char* dyn_smem;
};
extern thread_local const Lane* t_lane;
extern thread_local const Block* t_block;

void syncthreads();
// Bytes of one lane's operands in a warp-level exchange.
constexpr size_t kSlotBytes = 32;
// Deposits `bytes` of this lane's data, waits for the lanes of `mask` in its warp and returns
// the warp's 32 slots (kSlotBytes each, lane l's at l·kSlotBytes), valid until its next call.
const unsigned char* warp_exchange(unsigned mask, const void* mine, size_t bytes);
// Ends the launch with cudaErrorLaunchFailure and `why` (never returns to the kernel).
[[noreturn]] void trap(const char* why);

using Body = void (*)(void* ctx);
cudaError_t run_grid(const void* kernel, const char* name, dim3 grid, dim3 block, size_t smem, Body body, void* ctx);

template <class V>
V slot(const unsigned char* slots, int lane) {
  V v;
  std::memcpy(&v, slots + size_t(lane) * kSlotBytes, sizeof(V));
  return v;
}

// Lane `src` of the caller's mask, or a trap naming it.
inline int source_lane(unsigned mask, int src) {
  if (!((mask >> src) & 1u)) trap("a shuffle reads a lane outside its mask");
  return src;
}

template <class V>
V shfl(unsigned mask, V v, int src) {
  static_assert(sizeof(V) <= kSlotBytes && std::is_trivially_copyable_v<V>);
  const unsigned char* s = warp_exchange(mask, &v, sizeof v);
  return slot<V>(s, source_lane(mask, src));
}

inline float bits_to_float(uint16_t h, const __nv_bfloat16*) { return __bfloat162float(__nv_bfloat16{h}); }
inline float bits_to_float(uint16_t h, const __half*) { return __half2float(__half{h}); }

// mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}: c += A·B over one warp, T the 16-bit type.
// Fragments (PTX ISA, "Matrix Fragments for mma.m16n8k16"; g = lane / 4, t = lane % 4, each
// 32-bit register two elements, the lower column or row in the low half):
//   A [16×16]: a0 (g, 2t..2t+1), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..)
//   B [16×8]:  b0 (rows 2t..2t+1, col g), b1 (rows 2t+8..2t+9, col g)
//   C [16×8]:  c0, c1 (g, 2t..2t+1), c2, c3 (g+8, 2t..2t+1)
// Products are exact in f32; each dot product is summed in double and added to c in f32.
template <class T>
void mma_m16n8k16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  struct Frag {
    uint32_t a[4], b[2];
  };
  const Frag mine{{a[0], a[1], a[2], a[3]}, {b0, b1}};
  const unsigned char* s = warp_exchange(0xffffffffu, &mine, sizeof mine);
  auto half = [](uint32_t w, int k) { return bits_to_float(uint16_t(k & 1 ? w >> 16 : w & 0xffffu), static_cast<const T*>(nullptr)); };
  const int g = int(t_lane->lane) / 4, t = int(t_lane->lane) % 4;
  for (int e = 0; e < 4; ++e) {
    const int row = g + 8 * (e >> 1), col = 2 * t + (e & 1);
    double sum = 0;
    for (int k = 0; k < 16; ++k) {
      const Frag fa = slot<Frag>(s, 4 * (row % 8) + (k % 8) / 2), fb = slot<Frag>(s, 4 * col + (k % 8) / 2);
      sum += double(half(fa.a[(row >= 8) + 2 * (k >= 8)], k)) * double(half(fb.b[k >= 8], k));
    }
    c[e] += float(sum);
  }
}

// ldmatrix.sync.aligned.m8n8.{x1,x2,x4}[.trans].shared.b16: NM 8×8 matrices of 16-bit elements,
// lanes 8j..8j+7 giving the addresses of the eight rows of matrix j (16 bytes each, 16-byte
// aligned; the other lanes' addresses are ignored). Each lane deposits the 16 bytes of the row it
// addresses, read when it reaches the call, and gathers, per matrix j (PTX ISA, "Warp-level
// matrix load instruction: ldmatrix"; g = lane / 4, t = lane % 4, the lower column or row in the
// low half):
//   r[j] = (row g, cols 2t, 2t+1)          without .trans
//   r[j] = (rows 2t, 2t+1, col g)          with .trans
template <int NM, bool Trans>
void ldmatrix(uint32_t (&r)[NM], const void* row) {
  static_assert(NM == 1 || NM == 2 || NM == 4);
  struct Row {
    uint16_t e[8];
  };
  Row mine{};
  if (t_lane->lane < 8u * NM) {
    if (reinterpret_cast<uintptr_t>(row) % 16) trap("ldmatrix: a row address that is not 16-byte aligned");
    std::memcpy(&mine, row, sizeof mine);
  }
  const unsigned char* s = warp_exchange(0xffffffffu, &mine, sizeof mine);
  const int g = int(t_lane->lane) / 4, t = int(t_lane->lane) % 4;
  for (int j = 0; j < NM; ++j) {
    uint16_t lo, hi;
    if (Trans) lo = slot<Row>(s, 8 * j + 2 * t).e[g], hi = slot<Row>(s, 8 * j + 2 * t + 1).e[g];
    else lo = slot<Row>(s, 8 * j + g).e[2 * t], hi = slot<Row>(s, 8 * j + g).e[2 * t + 1];
    r[j] = uint32_t(lo) | uint32_t(hi) << 16;
  }
}

// cp.async (global → shared, PTX ISA "Data Movement: cp.async"): `bytes` (4, 8 or 16) to `dst`,
// of which the first `src_bytes` come from `src` and the rest are zeros (src_bytes 0: a
// zero-fill that reads nothing). The emulation queues each thread's copies and performs them only
// at the cp.async.wait_group that retires their group: never earlier, never at a __syncthreads
// and never at a commit. So a kernel that reads shared memory before the wait (or the wait of
// another thread, with no barrier after it) reads what was there before: the NaN that dynamic
// shared memory starts as, or a previous stage's data. Copies still pending when a thread
// returns are dropped (on a GPU the shared memory goes with the block). The other way round is
// not seen: since copies land as late as the PTX allows, a cp.async into a stage that other warps
// have yet to read (the barrier before the refill missing) lands after their reads and goes
// unnoticed; the same hazard with plain stores shows (the warps' pace, above).
void cp_async(void* dst, const void* src, unsigned bytes, unsigned src_bytes);
// Closes the thread's open group of copies (cp.async.commit_group; an empty group is allowed).
void cp_async_commit();
// cp.async.wait_group n: performs the thread's committed groups except the n most recent.
void cp_async_wait(int n);

// The kernel's name, from the template argument that launch<K> received.
template <auto K>
const char* kernel_name() {
  return __PRETTY_FUNCTION__;
}

template <auto K, class... P, class... A>
cudaError_t launch(void (*)(P...), dim3 grid, dim3 block, size_t smem, A&&... args) {
  std::tuple<P...> params(static_cast<P>(std::forward<A>(args))...);
  return run_grid(reinterpret_cast<const void*>(K), kernel_name<K>(), grid, block, smem,
                  [](void* p) { std::apply(K, *static_cast<std::tuple<P...>*>(p)); }, &params);
}

}  // namespace mk_emu

#define threadIdx (::mk_emu::t_lane->idx)
#define blockIdx (::mk_emu::t_block->idx)
#define blockDim (::mk_emu::t_block->dim)
#define gridDim (::mk_emu::t_block->grid)
constexpr int warpSize = 32;

inline void __syncthreads() { mk_emu::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { mk_emu::warp_exchange(mask, nullptr, 0); }
[[noreturn]] inline void __trap() { mk_emu::trap("__trap()"); }

template <class V>
V __shfl_sync(unsigned mask, V v, int src, int width = 32) {
  const int lane = int(mk_emu::t_lane->lane);
  return mk_emu::shfl(mask, v, (lane & ~(width - 1)) + (src & (width - 1)));
}
template <class V>
V __shfl_xor_sync(unsigned mask, V v, int lane_mask, int width = 32) {
  const int lane = int(mk_emu::t_lane->lane), t = lane ^ lane_mask;
  return mk_emu::shfl(mask, v, t >= (lane & ~(width - 1)) + width ? lane : t);
}
template <class V>
V __shfl_down_sync(unsigned mask, V v, unsigned delta, int width = 32) {
  const int lane = int(mk_emu::t_lane->lane), t = lane + int(delta);
  return mk_emu::shfl(mask, v, t >= (lane & ~(width - 1)) + width ? lane : t);
}
template <class V>
V __shfl_up_sync(unsigned mask, V v, unsigned delta, int width = 32) {
  const int lane = int(mk_emu::t_lane->lane), t = lane - int(delta);
  return mk_emu::shfl(mask, v, t < (lane & ~(width - 1)) ? lane : t);
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  const int mine = pred != 0;
  const unsigned char* s = mk_emu::warp_exchange(mask, &mine, sizeof mine);
  unsigned r = 0;
  for (int l = 0; l < 32; ++l)
    if ((mask >> l) & 1u) r |= unsigned(mk_emu::slot<int>(s, l)) << l;
  return r;
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == mask; }

// Atomics: blocks run on several OS threads at once.
template <class V>
V atomicAdd(V* p, V v) {
  return std::atomic_ref<V>(*p).fetch_add(v, std::memory_order_relaxed);
}
template <class V>
V atomicExch(V* p, V v) {
  return std::atomic_ref<V>(*p).exchange(v, std::memory_order_relaxed);
}
template <class V>
V atomicCAS(V* p, V expected, V desired) {
  std::atomic_ref<V>(*p).compare_exchange_strong(expected, desired, std::memory_order_relaxed);
  return expected;
}
template <class V>
V atomicMax(V* p, V v) {
  std::atomic_ref<V> r(*p);
  V old = r.load(std::memory_order_relaxed);
  while (old < v && !r.compare_exchange_weak(old, v, std::memory_order_relaxed)) {
  }
  return old;
}

// Device math: the exact functions stand in for the fast approximations.
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.f / sqrtf(x); }
template <class A, class B>
inline std::common_type_t<A, B> min(A a, B b) {
  return b < a ? b : a;
}
template <class A, class B>
inline std::common_type_t<A, B> max(A a, B b) {
  return a < b ? b : a;
}
