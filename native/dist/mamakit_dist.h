/* mamakit_dist.h: the C ABI of the two collective backends, both optional and opened by the
 * addon at run time (native/addon/dist.cpp):
 *   mpi   libmamakit_mpi.so beside the addon (MAMAKIT_MPI_LIB names another), built when CMake
 *         finds MPI; CPU buffers, and start-up (rank, size, local rank, the NCCL id).
 *   nccl  entries of libmamakit_cuda.so (native/dist/nccl.cu), which opens libnccl.so.2
 *         (MAMAKIT_NCCL_LIB names another) on first use; device buffers, on the CUDA stream.
 * Plain C. Every entry returns 0 on success, else nonzero with the text in last_error(). The
 * addon has checked every argument; the backends check what only they can (peers, time).
 *
 * Timeouts: a collective waits at most timeout_s seconds for the other ranks (it polls a
 * nonblocking operation against the deadline); past it, or on any transport error, it fails
 * with a message naming the operation, and the communicator is broken: later calls fail at
 * once. The caller then aborts every rank (abort), the only way out of a half-done collective.
 */
#ifndef MAMAKIT_DIST_H
#define MAMAKIT_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "mamakit.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MK_DIST_ABI_VERSION 1

typedef enum mk_reduce_op { MK_SUM = 0, MK_MEAN = 1 } mk_reduce_op;

typedef struct mk_mpi_api {
  uint32_t abi_version; /* MK_DIST_ABI_VERSION */
  const char* (*last_error)(void);
  /* MPI_Init_thread (SERIALIZED) on MPI_COMM_WORLD, errors returned rather than fatal. rank in
   * [0, size); local_rank: the rank among the processes on this host (one GPU each). */
  int (*init)(int* rank, int* size, int* local_rank);
  /* "Open MPI v4.1.4, …": the library's first line. */
  const char* (*describe)(void);
  /* In place over buf [n] f32: the sum over ranks (MK_MEAN: divided by size). Every rank ends
   * with the same bits. */
  int (*all_reduce_f32)(float* buf, int64_t n, mk_reduce_op op, double timeout_s);
  /* out [size·bytes] <- every rank's in [bytes], in rank order. */
  int (*all_gather)(void* out, const void* in, int64_t bytes, double timeout_s);
  /* buf [bytes] <- root's buf. */
  int (*broadcast)(void* buf, int64_t bytes, int root, double timeout_s);
  int (*barrier)(double timeout_s);
  /* MPI_Abort(MPI_COMM_WORLD, code): ends every rank; does not return. */
  void (*abort)(int code);
  /* MPI_Finalize; a no-op before init or when broken (finalize would wait for the dead). */
  int (*finalize)(void);
} mk_mpi_api;

/* libmamakit_mpi.so exports one symbol: const mk_mpi_api* mk_mpi_api_get(void). */
typedef const mk_mpi_api* (*mk_mpi_api_fn)(void);

typedef struct mk_nccl_api {
  uint32_t abi_version; /* MK_DIST_ABI_VERSION */
  const char* (*last_error)(void);
  /* Opens NCCL (MAMAKIT_NCCL_LIB, else libnccl.so.2): 0 and "NCCL 2.21.5 (path)" in
   * describe(), or nonzero with why it cannot. Idempotent. */
  int (*load)(void);
  const char* (*describe)(void);
  /* id [128 bytes] <- ncclGetUniqueId (rank 0 calls it, then broadcasts the bytes). */
  int (*unique_id)(void* id);
  /* ncclCommInitRank on ctx's device; one communicator per process. */
  int (*init_rank)(mk_context* ctx, const void* id, int size, int rank);
  /* Collectives on ctx's stream, each waited for against the deadline (the stream and
   * ncclCommGetAsyncError polled); on timeout the communicator is aborted. dtype f32, bf16
   * or f16; bf16/f16 sums are NCCL's (rounded to the dtype at each step). */
  int (*all_reduce)(mk_context* ctx, void* buf, int64_t n, mk_dtype dtype, mk_reduce_op op, double timeout_s);
  /* out [size·n] <- every rank's in [n], in rank order. */
  int (*all_gather)(mk_context* ctx, void* out, const void* in, int64_t n, mk_dtype dtype, double timeout_s);
  int (*broadcast)(mk_context* ctx, void* buf, int64_t n, mk_dtype dtype, int root, double timeout_s);
  /* ncclCommAbort (no-op without a communicator). */
  void (*abort)(void);
  /* ncclCommDestroy (no-op without a communicator). */
  void (*destroy)(void);
} mk_nccl_api;

/* libmamakit_cuda.so exports const mk_nccl_api* mk_nccl_api_get(void); so does the emulated
 * library (native/cuda/emu compiles nccl.cu too), whose NCCL is the stand-in MAMAKIT_NCCL_LIB names. */
typedef const mk_nccl_api* (*mk_nccl_api_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* MAMAKIT_DIST_H */
