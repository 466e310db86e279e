// common.cuh: shared pieces of the CUDA backend: the context, error recording, dtype
// conversion, launches, the table's registration. Kernels accumulate in f32 whatever the
// storage type.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <utility>

#include "mamakit.h"

struct mk_context {
  int device = 0;
  cudaStream_t stream = nullptr;
  cudaMemPool_t pool = nullptr;  // the device's stream-ordered pool: freed blocks stay cached
  std::string description;
};

namespace mk_cuda {

mk_status fail(mk_status s, const std::string& msg);
// Records a CUDA error as MK_ERR_DEVICE with the op name; MK_OK for cudaSuccess.
mk_status check(cudaError_t e, const char* what);

// Host↔device traffic goes through these, which count it (mk_backend.traffic): a copy to the
// device (from pageable memory: the host buffer may go once it returns), a copy to the host
// followed by the wait that makes it usable, and a wait for the stream alone.
cudaError_t to_device(void* dst, const void* src, size_t bytes, cudaStream_t s);
cudaError_t to_host(void* dst, const void* src, size_t bytes, cudaStream_t s);
cudaError_t wait(cudaStream_t s);
// A device copy of n host int32 values (indices, lengths) in *dev, freed by the caller with
// cudaFreeAsync; nullptr for a null host pointer.
cudaError_t stage_ints(const int32_t* host, int64_t n, int** dev, cudaStream_t s);

// f(dev) with the n host int32 values staged on the device (stage_ints) and freed after it
// (stream-ordered); the first error of the two.
template <class F>
cudaError_t with_ints(const int32_t* host, int64_t n, cudaStream_t s, F&& f) {
  int* dev = nullptr;
  cudaError_t e = stage_ints(host, n, &dev, s);
  if (e == cudaSuccess) e = f(dev);
  const cudaError_t g = dev ? cudaFreeAsync(dev, s) : cudaSuccess;
  return e != cudaSuccess ? e : g;
}

template <class T> __device__ __forceinline__ float to_f32(T x);
template <> __device__ __forceinline__ float to_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
template <> __device__ __forceinline__ float to_f32<__half>(__half x) { return __half2float(x); }

template <class T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }

// f(st) with st a value of dtype's storage type (float, __nv_bfloat16, __half): the one place a
// kernel's template is picked from the ABI's dtype, as `using St = decltype(st);` in f.
template <class F>
cudaError_t by_dtype(mk_dtype dtype, F&& f) {
  switch (dtype) {
    case MK_BF16: return f(__nv_bfloat16{});
    case MK_F16: return f(__half{});
    default: return f(float{});
  }
}

// Every kernel starts through launch<K>: K<<<grid, block, smem, stream>>> on a GPU, the CPU's
// emulation of it in the emulated library (emu/emu.h). Returns the launch's error.
template <auto K, class... A>
cudaError_t launch(dim3 grid, dim3 block, size_t smem, cudaStream_t stream, A&&... args) {
#ifdef MK_CUDA_EMU
  (void)stream;
  return mk_emu::launch<K>(K, grid, block, smem, std::forward<A>(args)...);
#else
  K<<<grid, block, smem, stream>>>(std::forward<A>(args)...);
  return cudaGetLastError();
#endif
}

// The block's dynamic shared memory: the `smem` bytes of its launch.
template <class T>
__device__ __forceinline__ T* dynamic_smem() {
#ifdef MK_CUDA_EMU
  return reinterpret_cast<T*>(mk_emu::t_block->dyn_smem);
#else
  extern __shared__ __align__(16) unsigned char mk_dynamic_smem[];
  return reinterpret_cast<T*>(mk_dynamic_smem);
#endif
}

// The backend's table (backend.cu): each op stem's file registers its entries when the library
// loads, `MK_CUDA_ENTRY(matmul, cu_matmul);`, so that an op lives in one file. An entry no file
// registers stays NULL ("not supported on cuda").
mk_backend& table();
struct Entry {
  template <class F>
  Entry(F mk_backend::*field, F fn) {
    table().*field = fn;
  }
};
#define MK_CUDA_ENTRY(field, fn) static const ::mk_cuda::Entry mk_cuda_entry_##field(&mk_backend::field, fn)

}  // namespace mk_cuda
