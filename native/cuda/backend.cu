// backend.cu: the CUDA backend's mk_backend table and the two symbols the addon looks up
// with dlsym (mk_cuda_probe, mk_cuda_backend). Built into libmamakit_cuda.so with cudart
// linked statically, so the library needs only the driver (libcuda.so.1) at run time; built
// by g++ over emu/ into libmamakit_cuda_emu.so, it drives the emulated device instead.
#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <new>
#include <vector>

#include "common.cuh"

namespace mk_cuda {

namespace {
thread_local std::string t_error;
}

mk_status fail(mk_status s, const std::string& msg) {
  t_error = msg;
  return s;
}

mk_status check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return MK_OK;
  return fail(e == cudaErrorMemoryAllocation ? MK_ERR_OOM : MK_ERR_DEVICE,
              std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

namespace {

mk_status cu_create(mk_context** out) {
  auto* ctx = new (std::nothrow) mk_context();
  if (!ctx) return fail(MK_ERR_OOM, "out of host memory");
  mk_status s = check(cudaSetDevice(0), "cudaSetDevice");
  if (s == MK_OK) s = check(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  if (s != MK_OK) {
    delete ctx;
    return s;
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
    char buf[320];
    std::snprintf(buf, sizeof(buf), "%s, sm_%d%d, %.0f GiB", prop.name, prop.major, prop.minor,
                  double(prop.totalGlobalMem) / double(1ull << 30));
    ctx->description = buf;
  } else {
    ctx->description = "CUDA device 0";
  }
  *out = ctx;
  return MK_OK;
}

void cu_destroy(mk_context* ctx) {
  if (!ctx) return;
  if (ctx->stream) cudaStreamDestroy(ctx->stream);
  delete ctx;
}

const char* cu_last_error(mk_context*) { return t_error.c_str(); }
const char* cu_describe(mk_context* ctx) { return ctx->description.c_str(); }

mk_status cu_alloc(mk_context*, void** ptr, size_t bytes) { return check(cudaMalloc(ptr, bytes), "cudaMalloc"); }

void cu_free(mk_context* ctx, void* ptr) {
  // Freed memory may still be read by queued kernels: cudaFree synchronises the device.
  (void)ctx;
  cudaFree(ptr);
}

__global__ void convert_from_f32(void* dst, mk_dtype dtype, const float* src, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    if (dtype == MK_BF16) static_cast<__nv_bfloat16*>(dst)[i] = __float2bfloat16_rn(src[i]);
    else static_cast<__half*>(dst)[i] = __float2half_rn(src[i]);
  }
}

__global__ void convert_to_f32(float* dst, const void* src, mk_dtype dtype, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    dst[i] = dtype == MK_BF16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(src)[i])
                              : __half2float(static_cast<const __half*>(src)[i]);
  }
}

unsigned blocks_for(size_t n) {
  size_t b = (n + 255) / 256;
  return unsigned(b < 4096 ? (b ? b : 1) : 4096);
}

mk_status cu_upload(mk_context* ctx, void* dst, mk_dtype dtype, const float* src, size_t n) {
  if (dtype == MK_F32) {
    mk_status s = check(cudaMemcpyAsync(dst, src, n * 4, cudaMemcpyHostToDevice, ctx->stream), "upload");
    return s != MK_OK ? s : check(cudaStreamSynchronize(ctx->stream), "upload");
  }
  float* tmp = nullptr;
  mk_status s = check(cudaMallocAsync(&tmp, n * 4, ctx->stream), "upload staging");
  if (s != MK_OK) return s;
  s = check(cudaMemcpyAsync(tmp, src, n * 4, cudaMemcpyHostToDevice, ctx->stream), "upload");
  if (s == MK_OK) s = check(launch<convert_from_f32>(blocks_for(n), 256, 0, ctx->stream, dst, dtype, tmp, n), "upload convert");
  cudaFreeAsync(tmp, ctx->stream);
  mk_status s2 = check(cudaStreamSynchronize(ctx->stream), "upload");
  return s != MK_OK ? s : s2;
}

mk_status cu_download(mk_context* ctx, float* dst, const void* src, mk_dtype dtype, size_t n) {
  if (dtype == MK_F32) {
    mk_status s = check(cudaMemcpyAsync(dst, src, n * 4, cudaMemcpyDeviceToHost, ctx->stream), "download");
    return s != MK_OK ? s : check(cudaStreamSynchronize(ctx->stream), "download");
  }
  float* tmp = nullptr;
  mk_status s = check(cudaMallocAsync(&tmp, n * 4, ctx->stream), "download staging");
  if (s != MK_OK) return s;
  s = check(launch<convert_to_f32>(blocks_for(n), 256, 0, ctx->stream, tmp, src, dtype, n), "download convert");
  if (s == MK_OK) s = check(cudaMemcpyAsync(dst, tmp, n * 4, cudaMemcpyDeviceToHost, ctx->stream), "download");
  cudaFreeAsync(tmp, ctx->stream);
  mk_status s2 = check(cudaStreamSynchronize(ctx->stream), "download");
  return s != MK_OK ? s : s2;
}

mk_status cu_synchronize(mk_context* ctx) { return check(cudaStreamSynchronize(ctx->stream), "synchronize"); }
mk_status cu_noop(mk_context*) { return MK_OK; }

mk_status cu_matmul(mk_context* ctx, void* c, const void* a, const void* b, const void* bias,
                    mk_dtype dtype, int64_t M, int64_t N, int64_t K, int ta, int tb, int acc) {
  return check(launch_matmul(ctx->stream, dtype, c, a, b, bias, M, N, K, ta, tb, acc), "matmul");
}

mk_status cu_patch_embed_forward(mk_context* ctx, void* tokens, const void* images, const void* weight,
                                 const void* bias, const void* pos, mk_dtype dtype, int64_t B, int64_t C, int64_t H,
                                 int64_t W, int64_t p, int64_t D, int64_t T, int64_t offset) {
  return check(launch_patch_embed_forward(ctx->stream, dtype, tokens, images, weight, bias, pos, B, C, H, W, p, D, T,
                                          offset),
               "patchEmbed");
}

mk_status cu_patch_embed_backward(mk_context* ctx, void* dweight, void* dbias, void* dpos, const void* dtokens,
                                  const void* images, mk_dtype dtype, int64_t B, int64_t C, int64_t H, int64_t W,
                                  int64_t p, int64_t D, int64_t T, int64_t offset) {
  return check(launch_patch_embed_backward(ctx->stream, dtype, dweight, dbias, dpos, dtokens, images, B, C, H, W, p,
                                           D, T, offset),
               "patchEmbedBackward");
}

mk_status cu_pos_interp_forward(mk_context* ctx, void* y, const void* x, mk_dtype dtype, int64_t H0, int64_t W0,
                                int64_t H1, int64_t W1, int64_t D, float sh, float sw) {
  return check(launch_pos_interp(ctx->stream, dtype, false, y, x, H0, W0, H1, W1, D, sh, sw), "interpolatePos");
}

mk_status cu_pos_interp_backward(mk_context* ctx, void* dx, const void* dy, mk_dtype dtype, int64_t H0, int64_t W0,
                                 int64_t H1, int64_t W1, int64_t D, float sh, float sw) {
  return check(launch_pos_interp(ctx->stream, dtype, true, dx, dy, H0, W0, H1, W1, D, sh, sw),
               "interpolatePosBackward");
}

mk_status cu_attention_forward(mk_context* ctx, void* out, float* lse, const void* q, const void* k, const void* v,
                               const int32_t* kv_lens, mk_dtype dtype, int64_t B, int64_t Lq, int64_t Lk, int64_t H,
                               int64_t Dh, float scale, int causal) {
  return check(launch_attention_forward(ctx->stream, dtype, out, lse, q, k, v, kv_lens, B, Lq, Lk, H, Dh, scale,
                                        causal != 0),
               "flashAttention");
}

mk_status cu_attention_backward(mk_context* ctx, void* dq, void* dk, void* dv, const void* q, const void* k,
                                const void* v, const void* out, const float* lse, const void* dout,
                                const int32_t* kv_lens, mk_dtype dtype, int64_t B, int64_t Lq, int64_t Lk, int64_t H,
                                int64_t Dh, float scale, int causal) {
  return check(launch_attention_backward(ctx->stream, dtype, dq, dk, dv, q, k, v, out, lse, dout, kv_lens, B, Lq, Lk,
                                         H, Dh, scale, causal != 0),
               "flashAttentionBackward");
}

mk_status cu_clip_loss(mk_context* ctx, double* loss, double* dscale, void* dimg, void* dtxt, void* dimg_all,
                       void* dtxt_all, const void* img, const void* txt, const void* img_all, const void* txt_all,
                       mk_dtype dtype, int64_t Bl, int64_t Bg, int64_t E, int64_t offset, float logit_scale) {
  return check(launch_clip_loss(ctx->stream, dtype, loss, dscale, dimg, dtxt, dimg_all, dtxt_all, img, txt, img_all,
                                txt_all, Bl, Bg, E, offset, logit_scale),
               "clipLoss");
}

mk_status cu_nt_xent(mk_context* ctx, double* loss, void* dz0, void* dz1, const void* z0, const void* z1, mk_dtype dtype,
                     int64_t B, int64_t E, float temperature) {
  return check(launch_nt_xent(ctx->stream, dtype, loss, dz0, dz1, z0, z1, B, E, temperature), "ntXent");
}

mk_status cu_local_align(mk_context* ctx, double* loss, double* dscale, void* dpatches, void* dsentences,
                         void* dpatches_all, void* dsentences_all, const void* patches, const void* sentences,
                         const int32_t* counts, const void* patches_all, const void* sentences_all,
                         const int32_t* counts_all, mk_dtype dtype, int64_t Bl, int64_t Bg, int64_t P, int64_t S,
                         int64_t E, int64_t offset, float local_scale) {
  if (S > 64) return fail(MK_ERR_UNSUPPORTED, "localAlignLoss on cuda holds at most 64 sentences per caption");
  return check(launch_local_align(ctx->stream, dtype, loss, dscale, dpatches, dsentences, dpatches_all, dsentences_all,
                                  patches, sentences, counts, patches_all, sentences_all, counts_all, Bl, Bg, P, S, E,
                                  offset, local_scale),
               "localAlignLoss");
}

mk_status cu_copy2d(mk_context* ctx, void* dst, int64_t dst_stride, const void* src, int64_t src_stride, mk_dtype dtype,
                     int64_t rows, int64_t cols) {
  const size_t es = dtype == MK_F32 ? 4 : 2;
  return check(cudaMemcpy2DAsync(dst, size_t(dst_stride) * es, src, size_t(src_stride) * es, size_t(cols) * es, size_t(rows),
                                 cudaMemcpyDeviceToDevice, ctx->stream),
               "copy2d");
}

const mk_backend kCuda = {
    .abi_version = MK_ABI_VERSION,
    .name = "cuda",
    .create = cu_create,
    .destroy = cu_destroy,
    .last_error = cu_last_error,
    .describe = cu_describe,
    .alloc = cu_alloc,
    .free = cu_free,
    .upload = cu_upload,
    .download = cu_download,
    .synchronize = cu_synchronize,
    .noop = cu_noop,
    .matmul = cu_matmul,
    .patch_embed_forward = cu_patch_embed_forward,
    .patch_embed_backward = cu_patch_embed_backward,
    .pos_interp_forward = cu_pos_interp_forward,
    .pos_interp_backward = cu_pos_interp_backward,
    .attention_forward = cu_attention_forward,
    .attention_backward = cu_attention_backward,
    .copy2d = cu_copy2d,
    .clip_loss = cu_clip_loss,
    .nt_xent = cu_nt_xent,
    .local_align = cu_local_align,
};

}  // namespace
}  // namespace mk_cuda

extern "C" __attribute__((visibility("default"))) int mk_cuda_probe(char* why, size_t why_len) {
  auto say = [&](const char* msg) {
    if (why && why_len) std::snprintf(why, why_len, "%s", msg);
  };
#ifdef MK_CUDA_EMU
  say("");
  return 1;  // the emulated device (emu/): its description begins with "emulated"
#endif
  // cudart would report a missing driver as "insufficient driver"; say plainly which it is.
  void* driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!driver) {
    say("no driver: libcuda.so.1 was not found (no NVIDIA driver on this machine)");
    return 0;
  }
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    std::string m = std::string(e == cudaErrorNoDevice ? "no device: " : "no driver: ") +
                    cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
    say(m.c_str());
    return 0;
  }
  if (n <= 0) {
    say("no device: the driver reports no CUDA device");
    return 0;
  }
  return n;
}

extern "C" __attribute__((visibility("default"))) const mk_backend* mk_cuda_backend(void) {
  return &mk_cuda::kCuda;
}
