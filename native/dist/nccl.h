/* nccl.h: the part of NCCL's API that native/dist/nccl.cu calls, declared here as the function
 * types it looks up with dlsym in libnccl.so.2 (no NCCL headers or link-time library needed).
 * Values as in NCCL ≥ 2.10 (ncclAvg and ncclBfloat16 arrived there); the loader checks the version.
 */
#ifndef MAMAKIT_NCCL_H
#define MAMAKIT_NCCL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ncclComm* ncclComm_t;
typedef struct CUstream_st* mk_nccl_stream; /* cudaStream_t */

#define NCCL_UNIQUE_ID_BYTES 128
typedef struct {
  char internal[NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;

typedef enum {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7
} ncclResult_t;

typedef enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 } ncclRedOp_t;

typedef enum { ncclFloat16 = 6, ncclFloat32 = 7, ncclBfloat16 = 9 } ncclDataType_t;

/* version: major·10000 + minor·100 + patch (2.21.5 → 22105) */
typedef ncclResult_t (*ncclGetVersion_fn)(int* version);
typedef ncclResult_t (*ncclGetUniqueId_fn)(ncclUniqueId* id);
typedef ncclResult_t (*ncclCommInitRank_fn)(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank);
typedef ncclResult_t (*ncclAllReduce_fn)(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                                         ncclRedOp_t op, ncclComm_t comm, mk_nccl_stream stream);
typedef ncclResult_t (*ncclAllGather_fn)(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                                         ncclComm_t comm, mk_nccl_stream stream);
typedef ncclResult_t (*ncclBroadcast_fn)(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                                         ncclComm_t comm, mk_nccl_stream stream);
typedef ncclResult_t (*ncclCommDestroy_fn)(ncclComm_t comm);
typedef ncclResult_t (*ncclCommAbort_fn)(ncclComm_t comm);
typedef ncclResult_t (*ncclCommGetAsyncError_fn)(ncclComm_t comm, ncclResult_t* async_error);
typedef const char* (*ncclGetErrorString_fn)(ncclResult_t result);

#ifdef __cplusplus
}
#endif

#endif /* MAMAKIT_NCCL_H */
