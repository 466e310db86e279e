// common.cuh: shared pieces of the CUDA backend: the context, error recording, dtype
// conversion. Kernels accumulate in f32 whatever the storage type.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>
#include <utility>

#include "mamakit.h"

struct mk_context {
  int device = 0;
  cudaStream_t stream = nullptr;
  std::string description;
};

namespace mk_cuda {

mk_status fail(mk_status s, const std::string& msg);
// Records a CUDA error as MK_ERR_DEVICE with the op name; MK_OK for cudaSuccess.
mk_status check(cudaError_t e, const char* what);

template <class T> __device__ __forceinline__ float to_f32(T x);
template <> __device__ __forceinline__ float to_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
template <> __device__ __forceinline__ float to_f32<__half>(__half x) { return __half2float(x); }

template <class T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }

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

// Kernel launchers, one per op stem (matmul.cu, ...): take the stream, return cudaError_t.
cudaError_t launch_matmul(cudaStream_t stream, mk_dtype dtype, void* c, const void* a,
                          const void* b, const void* bias, int64_t M, int64_t N, int64_t K,
                          bool trans_a, bool trans_b, bool accumulate);
cudaError_t launch_patch_embed_forward(cudaStream_t stream, mk_dtype dtype, void* tokens, const void* images,
                                       const void* weight, const void* bias, const void* pos, int64_t B,
                                       int64_t C, int64_t H, int64_t W, int64_t p, int64_t D, int64_t T,
                                       int64_t offset);
cudaError_t launch_patch_embed_backward(cudaStream_t stream, mk_dtype dtype, void* dweight, void* dbias,
                                        void* dpos, const void* dtokens, const void* images, int64_t B,
                                        int64_t C, int64_t H, int64_t W, int64_t p, int64_t D, int64_t T,
                                        int64_t offset);
// Forward: out [h1·w1, D] from in [h0·w0, D]; backward: out [h0·w0, D] from in [h1·w1, D].
cudaError_t launch_pos_interp(cudaStream_t stream, mk_dtype dtype, bool backward, void* out, const void* in,
                              int64_t h0, int64_t w0, int64_t h1, int64_t w1, int64_t D, float scale_h,
                              float scale_w);
cudaError_t launch_attention_forward(cudaStream_t stream, mk_dtype dtype, void* out, float* lse, const void* q,
                                     const void* k, const void* v, const int32_t* kv_lens, int64_t B, int64_t Lq,
                                     int64_t Lk, int64_t H, int64_t Dh, float scale, bool causal);
cudaError_t launch_attention_backward(cudaStream_t stream, mk_dtype dtype, void* dq, void* dk, void* dv, const void* q,
                                      const void* k, const void* v, const void* out, const float* lse,
                                      const void* dout, const int32_t* kv_lens, int64_t B, int64_t Lq, int64_t Lk,
                                      int64_t H, int64_t Dh, float scale, bool causal);
cudaError_t launch_clip_loss(cudaStream_t stream, mk_dtype dtype, double* loss, double* dscale, void* dimg, void* dtxt,
                             void* dimg_all, void* dtxt_all, const void* img, const void* txt, const void* img_all,
                             const void* txt_all, int64_t Bl, int64_t Bg, int64_t E, int64_t offset, float logit_scale);
cudaError_t launch_nt_xent(cudaStream_t stream, mk_dtype dtype, double* loss, void* dz0, void* dz1, const void* z0,
                           const void* z1, int64_t B, int64_t E, float temperature);
cudaError_t launch_local_align(cudaStream_t stream, mk_dtype dtype, double* loss, double* dscale, void* dpatches,
                               void* dsentences, void* dpatches_all, void* dsentences_all, const void* patches,
                               const void* sentences, const int32_t* counts, const void* patches_all,
                               const void* sentences_all, const int32_t* counts_all, int64_t Bl, int64_t Bg, int64_t P,
                               int64_t S, int64_t E, int64_t offset, float local_scale);

}  // namespace mk_cuda
