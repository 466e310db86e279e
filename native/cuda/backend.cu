// backend.cu: the CUDA backend's mk_backend table and the two symbols the addon looks up
// with dlsym (mk_cuda_probe, mk_cuda_backend). Built into libmamakit_cuda.so with cudart
// linked statically, so the library needs only the driver (libcuda.so.1) at run time; built
// by g++ over emu/ into libmamakit_cuda_emu.so, it drives the emulated device instead.
#include <dlfcn.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "common.cuh"

namespace mk_cuda {

namespace {
thread_local std::string t_error;
std::atomic<uint64_t> g_to_device{0}, g_to_host{0}, g_waits{0};

// Live device bytes (each block's size kept from its allocation) and their peak.
struct Live {
  std::mutex m;
  std::unordered_map<void*, size_t> size;
  int64_t bytes = 0, peak = 0;
} g_live;
}  // namespace

cudaError_t to_device(void* dst, const void* src, size_t bytes, cudaStream_t s) {
  g_to_device.fetch_add(1, std::memory_order_relaxed);
  return cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s);
}

cudaError_t to_host(void* dst, const void* src, size_t bytes, cudaStream_t s) {
  g_to_host.fetch_add(1, std::memory_order_relaxed);
  const cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s);
  return e == cudaSuccess ? wait(s) : e;
}

cudaError_t wait(cudaStream_t s) {
  g_waits.fetch_add(1, std::memory_order_relaxed);
  return cudaStreamSynchronize(s);
}

cudaError_t stage_ints(const int32_t* host, int64_t n, int** dev, cudaStream_t s) {
  *dev = nullptr;
  if (!host) return cudaSuccess;
  cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(dev), size_t(n) * sizeof(int), s);
  return e == cudaSuccess ? to_device(*dev, host, size_t(n) * sizeof(int), s) : e;
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

// One GPU per process: MAMAKIT_CUDA_DEVICE when set, else the local rank that the launcher
// (Open MPI, MPICH, Slurm, torchrun) puts in the environment, modulo the devices; else 0.
int pick_device() {
  auto number = [](const char* name) {
    const char* v = std::getenv(name);
    char* end = nullptr;
    const long r = v && *v ? std::strtol(v, &end, 10) : -1;
    return r >= 0 && !*end && r < 1 << 20 ? int(r) : -1;
  };
  if (number("MAMAKIT_CUDA_DEVICE") >= 0) return number("MAMAKIT_CUDA_DEVICE");
  int n = 1;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1) n = 1;
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "LOCAL_RANK"})
    if (number(name) >= 0) return number(name) % n;
  return 0;
}

mk_status cu_create(mk_context** out) {
  auto* ctx = new (std::nothrow) mk_context();
  if (!ctx) return fail(MK_ERR_OOM, "out of host memory");
  ctx->device = pick_device();
  mk_status s = check(cudaSetDevice(ctx->device), "cudaSetDevice");
  if (s == MK_OK) s = check(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  // Freed blocks stay in the pool for the next allocation on the stream: the tape frees
  // activations every step, and a release to the driver would synchronise.
  uint64_t keep = UINT64_MAX;
  if (s == MK_OK) s = check(cudaDeviceGetDefaultMemPool(&ctx->pool, ctx->device), "cudaDeviceGetDefaultMemPool");
  if (s == MK_OK) s = check(cudaMemPoolSetAttribute(ctx->pool, cudaMemPoolAttrReleaseThreshold, &keep), "cudaMemPoolSetAttribute");
  if (s != MK_OK) {
    delete ctx;
    return s;
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, ctx->device) == cudaSuccess) {
    char buf[340];
    std::snprintf(buf, sizeof(buf), "%s, sm_%d%d, %.0f GiB", prop.name, prop.major, prop.minor,
                  double(prop.totalGlobalMem) / double(1ull << 30));
    ctx->description = buf;
    if (ctx->device) ctx->description += ", device " + std::to_string(ctx->device);
  } else {
    ctx->description = "CUDA device " + std::to_string(ctx->device);
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

// Stream-ordered allocation: a block freed on the stream is reused by later work on it, and
// neither call waits for the device. When the device is full, the pool gives its cached blocks
// back and the allocation is tried once more; a failure then names what was free.
mk_status cu_alloc(mk_context* ctx, void** ptr, size_t bytes) {
  cudaError_t e = cudaMallocAsync(ptr, bytes, ctx->stream);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    if (wait(ctx->stream) == cudaSuccess && cudaMemPoolTrimTo(ctx->pool, 0) == cudaSuccess) e = cudaMallocAsync(ptr, bytes, ctx->stream);
  }
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    char buf[200];
    std::snprintf(buf, sizeof buf, "out of device memory: %.1f MiB requested, %.1f MiB free of %.1f MiB", double(bytes) / 1048576,
                  double(free) / 1048576, double(total) / 1048576);
    return fail(MK_ERR_OOM, buf);
  }
  if (e != cudaSuccess) return check(e, "cudaMallocAsync");
  std::lock_guard<std::mutex> l(g_live.m);
  g_live.size[*ptr] = bytes;
  g_live.bytes += int64_t(bytes);
  if (g_live.bytes > g_live.peak) g_live.peak = g_live.bytes;
  return MK_OK;
}

void cu_free(mk_context* ctx, void* ptr) {
  if (!ptr) return;
  {
    std::lock_guard<std::mutex> l(g_live.m);
    auto it = g_live.size.find(ptr);
    if (it != g_live.size.end()) g_live.bytes -= int64_t(it->second), g_live.size.erase(it);
  }
  cudaFreeAsync(ptr, ctx->stream);
}

mk_status cu_memory(mk_context* ctx, int64_t* live, int64_t* peak, int64_t* held, int reset) {
  uint64_t reserved = 0;
  mk_status s = check(cudaMemPoolGetAttribute(ctx->pool, cudaMemPoolAttrReservedMemCurrent, &reserved), "cudaMemPoolGetAttribute");
  std::lock_guard<std::mutex> l(g_live.m);
  *live = g_live.bytes, *peak = g_live.peak, *held = int64_t(reserved);
  if (reset) g_live.peak = g_live.bytes;
  return s;
}

mk_status cu_traffic(mk_context*, uint64_t* to_device, uint64_t* to_host, uint64_t* syncs) {
  *to_device = g_to_device.load(), *to_host = g_to_host.load(), *syncs = g_waits.load();
  return MK_OK;
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

// Uploads copy from pageable host memory, which returns once the data has left the host
// buffer: no wait. 16-bit tensors are converted on the device from an f32 staging copy.
mk_status cu_upload(mk_context* ctx, void* dst, mk_dtype dtype, const float* src, size_t n) {
  if (dtype == MK_F32) return check(to_device(dst, src, n * 4, ctx->stream), "upload");
  float* tmp = nullptr;
  mk_status s = check(cudaMallocAsync(&tmp, n * 4, ctx->stream), "upload staging");
  if (s != MK_OK) return s;
  s = check(to_device(tmp, src, n * 4, ctx->stream), "upload");
  if (s == MK_OK) s = check(launch<convert_from_f32>(blocks_for(n), 256, 0, ctx->stream, dst, dtype, tmp, n), "upload convert");
  cudaFreeAsync(tmp, ctx->stream);
  return s;
}

mk_status cu_download(mk_context* ctx, float* dst, const void* src, mk_dtype dtype, size_t n) {
  if (dtype == MK_F32) return check(to_host(dst, src, n * 4, ctx->stream), "download");
  float* tmp = nullptr;
  mk_status s = check(cudaMallocAsync(&tmp, n * 4, ctx->stream), "download staging");
  if (s != MK_OK) return s;
  s = check(launch<convert_to_f32>(blocks_for(n), 256, 0, ctx->stream, tmp, src, dtype, n), "download convert");
  if (s == MK_OK) s = check(to_host(dst, tmp, n * 4, ctx->stream), "download");
  cudaFreeAsync(tmp, ctx->stream);
  return s;
}

mk_status cu_synchronize(mk_context* ctx) { return check(wait(ctx->stream), "synchronize"); }
mk_status cu_noop(mk_context*) { return MK_OK; }


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
      .memory = cu_memory,
      .traffic = cu_traffic,
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
