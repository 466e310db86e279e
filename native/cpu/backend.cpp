// backend.cpp: the CPU backend's mk_backend table (native/include/mamakit.h). Memory is host
// memory aligned to 64 bytes; only f32 is stored on the CPU.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "isa.h"
#include "mamakit.h"
#include "matmul.h"
#include "threadpool.h"

struct mk_context {
  std::string description;
};

namespace {

thread_local std::string t_error;

mk_status fail(mk_status s, const char* msg) {
  t_error = msg;
  return s;
}

mk_status cpu_create(mk_context** ctx) {
  try {
    auto* c = new mk_context();
    c->description = std::string("CPU, ") + mk::isa_name(mk::isa()) + ", " +
                     std::to_string(mk::threads()) + " threads";
    *ctx = c;
    return MK_OK;
  } catch (const std::bad_alloc&) {
    return fail(MK_ERR_OOM, "out of host memory");
  }
}

void cpu_destroy(mk_context* ctx) { delete ctx; }

const char* cpu_last_error(mk_context*) { return t_error.c_str(); }

const char* cpu_describe(mk_context* ctx) { return ctx->description.c_str(); }

// 64-byte aligned blocks carved from plain malloc, the raw pointer kept just below the
// aligned one. glibc's memalign splits chunks in a way that, with the small objects Node
// allocates between tensors, keeps freed blocks from being reused (RSS grew 4 KiB per
// create/dispose cycle); equal-sized malloc chunks are reused at once.
mk_status cpu_alloc(mk_context*, void** ptr, size_t bytes) {
  if (bytes > SIZE_MAX - 64) return fail(MK_ERR_OOM, "allocation size overflows");
  void* raw = std::malloc(bytes + 64);
  if (!raw) return fail(MK_ERR_OOM, "out of host memory");
  const uintptr_t aligned = (reinterpret_cast<uintptr_t>(raw) + 64) & ~uintptr_t(63);
  reinterpret_cast<void**>(aligned)[-1] = raw;
  *ptr = reinterpret_cast<void*>(aligned);
  return MK_OK;
}

void cpu_free(mk_context*, void* ptr) {
  if (ptr) std::free(static_cast<void**>(ptr)[-1]);
}

mk_status cpu_upload(mk_context*, void* dst, mk_dtype dtype, const float* src, size_t n) {
  if (dtype != MK_F32) return fail(MK_ERR_UNSUPPORTED, "the CPU backend stores f32 only");
  std::memcpy(dst, src, n * sizeof(float));
  return MK_OK;
}

mk_status cpu_download(mk_context*, float* dst, const void* src, mk_dtype dtype, size_t n) {
  if (dtype != MK_F32) return fail(MK_ERR_UNSUPPORTED, "the CPU backend stores f32 only");
  std::memcpy(dst, src, n * sizeof(float));
  return MK_OK;
}

mk_status cpu_synchronize(mk_context*) { return MK_OK; }

mk_status cpu_noop(mk_context*) { return MK_OK; }

mk_status cpu_matmul(mk_context*, void* c, const void* a, const void* b, const void* bias,
                     mk_dtype dtype, int64_t M, int64_t N, int64_t K, int trans_a, int trans_b,
                     int accumulate) {
  if (dtype != MK_F32) return fail(MK_ERR_UNSUPPORTED, "matmul on the CPU takes f32 only");
  try {
    mk::matmul_f32(static_cast<float*>(c), static_cast<const float*>(a),
                   static_cast<const float*>(b), static_cast<const float*>(bias), M, N, K,
                   trans_a != 0, trans_b != 0, accumulate != 0);
  } catch (const std::bad_alloc&) {
    return fail(MK_ERR_OOM, "out of host memory for the GEMM packing buffers");
  }
  return MK_OK;
}

const mk_backend kCpu = {
    .abi_version = MK_ABI_VERSION,
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .last_error = cpu_last_error,
    .describe = cpu_describe,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .synchronize = cpu_synchronize,
    .noop = cpu_noop,
    .matmul = cpu_matmul,
};

}  // namespace

extern "C" const mk_backend* mk_cpu_backend(void) { return &kCpu; }
extern "C" const char* mk_cpu_isa(void) { return mk::isa_name(mk::isa()); }
extern "C" int mk_cpu_threads(void) { return mk::threads(); }
