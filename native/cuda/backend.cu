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

mk_status cu_copy2d(mk_context* ctx, void* dst, int64_t dst_stride, const void* src, int64_t src_stride, mk_dtype dtype,
                     int64_t rows, int64_t cols) {
  const size_t es = dtype == MK_F32 ? 4 : 2;
  return check(cudaMemcpy2DAsync(dst, size_t(dst_stride) * es, src, size_t(src_stride) * es, size_t(cols) * es, size_t(rows),
                                 cudaMemcpyDeviceToDevice, ctx->stream),
               "copy2d");
}

MK_CUDA_ENTRY(copy2d, cu_copy2d);

}  // namespace

mk_backend& table() {
  static mk_backend t = {
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
  };
  return t;
}

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
  return &mk_cuda::table();
}
