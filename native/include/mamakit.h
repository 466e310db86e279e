/* mamakit.h: the one C ABI that every mamakit backend (CPU, CUDA) implements.
 *
 * Plain C, no Node or CUDA types. A backend is a table of function pointers (mk_backend);
 * the Node-API addon validates every argument, then calls through the table of the tensor's
 * device. A NULL entry means "this backend does not support that op" and surfaces to the
 * caller as an Error that says so.
 *
 * Conventions, stated once here:
 *  - All arrays are row-major and contiguous. Shapes are given in the comment beside each
 *    pointer with the fixed alphabet (B batch, M/N/K GEMM dims, D width, ...).
 *  - Signature order: context, outputs, then inputs, then dimensions and options.
 *  - Pointers are host pointers for the CPU backend and device pointers for CUDA.
 *  - The element type of every tensor argument is the `dtype` argument of the call; scalar
 *    options are float/double on the host. Accumulation is always in f32 or wider.
 *  - Backward entries write activation gradients and ACCUMULATE (+=) into parameter
 *    gradients. What a backward needs from its forward (layer-norm mean/rstd, attention
 *    lse, ...) is an explicit output of the forward.
 *  - Kernels keep no state between calls. Entries do not re-validate shapes that the addon
 *    has checked; they do check what only they can (allocation failures, device errors)
 *    and report it through the status and mk_backend.last_error.
 */
#ifndef MAMAKIT_H
#define MAMAKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MK_ABI_VERSION 1

typedef enum mk_status {
  MK_OK = 0,
  MK_ERR_INVALID = 1,     /* an argument the addon should have refused */
  MK_ERR_OOM = 2,         /* host or device allocation failed */
  MK_ERR_UNSUPPORTED = 3, /* dtype or option this backend does not implement */
  MK_ERR_DEVICE = 4       /* a CUDA runtime or launch error; last_error has the text */
} mk_status;

typedef enum mk_dtype { MK_F32 = 0, MK_BF16 = 1, MK_F16 = 2 } mk_dtype;

/* Opaque per-backend state: the CPU thread pool, or the CUDA device and stream. */
typedef struct mk_context mk_context;

typedef struct mk_backend {
  uint32_t abi_version; /* MK_ABI_VERSION the backend was built against */
  const char* name;     /* "cpu" or "cuda" */

  /* --- lifetime and memory --------------------------------------------------------- */
  mk_status (*create)(mk_context** ctx);
  void (*destroy)(mk_context* ctx);
  /* Text of the last failure on this thread; never NULL. */
  const char* (*last_error)(mk_context* ctx);
  /* Human-readable description of the device ("NVIDIA H200, sm_90, 139 GiB"). */
  const char* (*describe)(mk_context* ctx);
  /* bytes >= 1; the CPU backend aligns to 64 bytes. */
  mk_status (*alloc)(mk_context* ctx, void** ptr, size_t bytes);
  void (*free)(mk_context* ctx, void* ptr);
  /* dst [n] in `dtype` on the device  <-  src [n] f32 on the host (rounded to nearest even). */
  mk_status (*upload)(mk_context* ctx, void* dst, mk_dtype dtype, const float* src, size_t n);
  /* dst [n] f32 on the host  <-  src [n] in `dtype` on the device. */
  mk_status (*download)(mk_context* ctx, float* dst, const void* src, mk_dtype dtype, size_t n);
  mk_status (*synchronize)(mk_context* ctx);
  /* A call that does nothing: measures the fixed cost of crossing the ABI. */
  mk_status (*noop)(mk_context* ctx);

  /* --- kernels ---------------------------------------------------------------------- */
  /* C = op(A)·op(B) (+ bias) (+ C when accumulate != 0)
   *   c    [M,N]
   *   a    [M,K], or [K,M] when trans_a
   *   b    [K,N], or [N,K] when trans_b
   *   bias [N] or NULL, added to every row
   * M, N, K >= 1. With accumulate the previous contents of c are added; without, c is
   * overwritten and may hold anything (NaN) on entry. */
  mk_status (*matmul)(mk_context* ctx, void* c, const void* a, const void* b, const void* bias,
                      mk_dtype dtype, int64_t M, int64_t N, int64_t K, int trans_a, int trans_b,
                      int accumulate);
} mk_backend;

/* The CPU backend, linked into the addon. */
const mk_backend* mk_cpu_backend(void);

/* Instruction set the CPU backend chose at load ("avx512", "avx2" or "scalar"). */
const char* mk_cpu_isa(void);
/* Worker threads in the CPU pool (the calling thread included). */
int mk_cpu_threads(void);

/* The CUDA backend lives in libmamakit_cuda.so, opened with dlopen by the addon only when
 * the file is present. It exports these two symbols:
 *   int mk_cuda_probe(char* why, size_t why_len);
 *       number of usable devices (>= 1), or 0 with the reason written to `why`
 *       ("no driver: ...", "no device: ...").
 *   const mk_backend* mk_cuda_backend(void);
 */
typedef int (*mk_cuda_probe_fn)(char* why, size_t why_len);
typedef const mk_backend* (*mk_cuda_backend_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* MAMAKIT_H */
