// nccl_mpi_standin.cpp: a stand-in for libnccl.so.2 (build/Release/libnccl_standin.so), so that
// native/dist/nccl.cu runs in CI: the emulated CUDA library (native/cuda/emu) compiles nccl.cu,
// and the tests point MAMAKIT_NCCL_LIB here. It exports exactly the NCCL calls nccl.cu looks up,
// with NCCL's signatures (native/dist/nccl.h), implemented over MPI on host pointers: the
// emulation's device memory is host memory, so MPI moves it directly. MPI is initialised already
// (libmamakit_mpi.so does it in every process mpirun starts); this library only uses it.
//
// What it tests is our side: dlopen and the symbol and version checks, the unique id travelling
// over MPI, communicator set-up, the dtype and op mapping (bf16, f16, ncclAvg), the stream
// polling and async-error checks, abort and destroy. It does not test NCCL (its algorithms,
// its streams, its GPU transports): that runs only on a GPU.
//
// Every call executes synchronously, whole, when it is made (the stream is ignored; the
// emulation's streams run their work at the call too). Every argument is checked, and so is
// that every rank made the same call: anything wrong returns ncclInvalidArgument or
// ncclInvalidUsage with the reason on stderr, so that a bug in nccl.cu fails a test instead of
// passing silently. Reductions: f32 added in f32 in rank order; bf16 and f16 added in float in
// rank order and rounded once to nearest even (with 2 ranks, what NCCL's one addition in the
// type gives); ncclAvg multiplies each input by 1/nranks first (NCCL's way for floating types).
// A communicator left live at exit is reported too, and an abort noted. Test hooks: MAMAKIT_NCCL_STANDIN_ASYNC_ERROR=N
// makes ncclCommGetAsyncError report ncclRemoteError from the Nth collective on (counting from 1),
// as NCCL does when a peer fails; MAMAKIT_NCCL_STANDIN_VERSION=N makes ncclGetVersion report N.
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "../dist/nccl.h"

#define EXPORT extern "C" __attribute__((visibility("default")))

struct ncclComm {
  MPI_Comm mpi;
  int nranks, rank;
  long collectives;      // how many this communicator has run
  long async_error_from;  // MAMAKIT_NCCL_STANDIN_ASYNC_ERROR, or 0
};

namespace {

constexpr char kMagic[] = "mamakit NCCL stand-in id";
std::set<ncclComm*> g_live;  // the communicators not yet destroyed or aborted

ncclResult_t refuse(ncclResult_t r, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "mamakit NCCL stand-in: %s\n", buf);
  return r;
}

bool mpi_ready() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

size_t type_size(ncclDataType_t t) { return t == ncclFloat32 ? 4 : t == ncclBfloat16 || t == ncclFloat16 ? 2 : 0; }

// ---- 16-bit floats, round to nearest even (as cuda_bf16.h and cuda_fp16.h convert) ----------

float bf16_to_float(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if (std::isnan(f)) return uint16_t((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}
float f16_to_float(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  float mag;
  if (exp == 0) mag = std::ldexp(float(man), -24);
  else if (exp == 31) mag = man ? NAN : INFINITY;
  else mag = std::ldexp(float(man | 0x400), int(exp) - 25);
  return sign ? -mag : mag;
}
uint16_t float_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000);
  if (std::isnan(f)) return uint16_t(sign | 0x7e00);
  const float a = std::fabs(f);
  if (a >= 65520.f) return uint16_t(sign | 0x7c00);  // rounds past the largest half, 65504
  if (a < std::ldexp(1.f, -14)) {
    // subnormal: a multiple of 2^-24, rounded to nearest even by the float addition
    const float q = std::nearbyint(std::ldexp(a, 24));
    return uint16_t(sign | uint16_t(q));  // q == 1024 gives the smallest normal's bits
  }
  int e;
  const float m = std::frexp(a, &e);          // a = m·2^e, m in [0.5, 1)
  float q = std::nearbyint(std::ldexp(m, 11));  // 11 significant bits, in [1024, 2048]
  if (q == 2048.f) q = 1024.f, ++e;
  if (e - 1 + 15 >= 31) return uint16_t(sign | 0x7c00);
  return uint16_t(sign | uint16_t((e - 1 + 15) << 10) | (uint16_t(q) & 0x3ff));
}

float load(const void* p, size_t i, ncclDataType_t t) {
  if (t == ncclFloat32) return static_cast<const float*>(p)[i];
  const uint16_t h = static_cast<const uint16_t*>(p)[i];
  return t == ncclBfloat16 ? bf16_to_float(h) : f16_to_float(h);
}
void store(void* p, size_t i, ncclDataType_t t, float v) {
  if (t == ncclFloat32) static_cast<float*>(p)[i] = v;
  else static_cast<uint16_t*>(p)[i] = t == ncclBfloat16 ? float_to_bf16(v) : float_to_f16(v);
}

// ---- argument checks ----------------------------------------------------------------------

ncclResult_t check_comm(const char* call, ncclComm_t comm) {
  if (!mpi_ready()) return refuse(ncclSystemError, "%s: MPI is not initialised (run under mpirun, with libmamakit_mpi.so loaded)", call);
  if (!comm || !g_live.count(comm)) return refuse(ncclInvalidArgument, "%s: %p is not a live communicator", call, static_cast<void*>(comm));
  return ncclSuccess;
}

ncclResult_t check_type(const char* call, ncclDataType_t t) {
  if (!type_size(t)) return refuse(ncclInvalidArgument, "%s: datatype %d is not one mamakit uses (ncclFloat32, ncclBfloat16, ncclFloat16)", call, int(t));
  return ncclSuccess;
}

// What every collective checks first: a live communicator and a datatype mamakit uses.
ncclResult_t check_collective(const char* call, ncclComm_t comm, ncclDataType_t t) {
  if (ncclResult_t r = check_comm(call, comm)) return r;
  return check_type(call, t);
}

bool overlap(const void* a, size_t an, const void* b, size_t bn) {
  const char *x = static_cast<const char*>(a), *y = static_cast<const char*>(b);
  return x < y + bn && y < x + an;
}

// Every rank must make the same call (as NCCL requires; NCCL would hang or corrupt otherwise):
// the call's description is compared across the ranks.
struct CallDesc {
  int32_t what, type, op, root;
  uint64_t count;
};
ncclResult_t same_on_every_rank(const char* call, ncclComm_t comm, CallDesc mine) {
  std::vector<CallDesc> all(size_t(comm->nranks));
  if (MPI_Allgather(&mine, sizeof mine, MPI_BYTE, all.data(), sizeof mine, MPI_BYTE, comm->mpi) != MPI_SUCCESS)
    return refuse(ncclSystemError, "%s: MPI_Allgather failed", call);
  for (int r = 0; r < comm->nranks; ++r)
    if (std::memcmp(&all[size_t(r)], &mine, sizeof mine))
      return refuse(ncclInvalidUsage,
                    "%s on rank %d (call %d, type %d, op %d, root %d, count %llu) differs from rank %d's (call %d, type %d, op %d, root %d, count %llu)",
                    call, comm->rank, mine.what, mine.type, mine.op, mine.root, (unsigned long long)mine.count, r, all[size_t(r)].what,
                    all[size_t(r)].type, all[size_t(r)].op, all[size_t(r)].root, (unsigned long long)all[size_t(r)].count);
  return ncclSuccess;
}

// Bytes of every rank's `bytes` gathered in rank order, in pieces under MPI's int counts.
ncclResult_t gather_bytes(const char* call, ncclComm_t comm, const void* mine, size_t bytes, char* all) {
  const size_t piece = size_t(1) << 28;
  std::vector<char> tmp;
  for (size_t at = 0; at < bytes; at += piece) {
    const size_t n = std::min(piece, bytes - at);
    tmp.resize(n * size_t(comm->nranks));
    if (MPI_Allgather(static_cast<const char*>(mine) + at, int(n), MPI_BYTE, tmp.data(), int(n), MPI_BYTE, comm->mpi) != MPI_SUCCESS)
      return refuse(ncclSystemError, "%s: MPI_Allgather failed", call);
    for (int r = 0; r < comm->nranks; ++r) std::memcpy(all + size_t(r) * bytes + at, tmp.data() + size_t(r) * n, n);
  }
  return ncclSuccess;
}

}  // namespace

// ---- the NCCL API -------------------------------------------------------------------------

EXPORT ncclResult_t ncclGetVersion(int* version) {
  if (!version) return refuse(ncclInvalidArgument, "ncclGetVersion: null version");
  *version = 21000;  // 2.10.0: the oldest mamakit accepts (ncclAvg and ncclBfloat16)
  if (const char* v = std::getenv("MAMAKIT_NCCL_STANDIN_VERSION")) *version = std::atoi(v);
  return ncclSuccess;
}

EXPORT const char* ncclGetErrorString(ncclResult_t r) {
  switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
  }
  return "unknown result code";
}

// The id: the magic, then rank 0's process id and a counter (only rank 0 makes it; the others
// must receive the same bytes, which ncclCommInitRank checks).
EXPORT ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  static unsigned counter = 0;
  if (!id) return refuse(ncclInvalidArgument, "ncclGetUniqueId: null id");
  if (!mpi_ready()) return refuse(ncclSystemError, "ncclGetUniqueId: MPI is not initialised (run under mpirun, with libmamakit_mpi.so loaded)");
  std::memset(id->internal, 0, sizeof id->internal);
  std::snprintf(id->internal, sizeof id->internal, "%s %ld %u", kMagic, long(getpid()), ++counter);
  // The rest: bytes that a copy of only the string part would lose.
  for (size_t i = 64; i < sizeof id->internal; ++i) id->internal[i] = char(i * 37 + counter);
  return ncclSuccess;
}

EXPORT ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
  if (!comm) return refuse(ncclInvalidArgument, "ncclCommInitRank: null comm");
  *comm = nullptr;
  if (!mpi_ready()) return refuse(ncclSystemError, "ncclCommInitRank: MPI is not initialised (run under mpirun, with libmamakit_mpi.so loaded)");
  int size = 0, me = -1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  // mamakit's NCCL ranks are its MPI ranks.
  if (nranks != size || rank != me)
    return refuse(ncclInvalidArgument, "ncclCommInitRank: nranks %d, rank %d on MPI rank %d of %d", nranks, rank, me, size);
  if (std::strncmp(id.internal, kMagic, sizeof kMagic - 1))
    return refuse(ncclInvalidArgument, "ncclCommInitRank (rank %d): the id was not made by this library's ncclGetUniqueId", rank);
  MPI_Comm dup;
  if (MPI_Comm_dup(MPI_COMM_WORLD, &dup) != MPI_SUCCESS) return refuse(ncclSystemError, "ncclCommInitRank: MPI_Comm_dup failed");
  auto* c = new ncclComm{dup, nranks, rank, 0, 0};
  // Every rank must have been given rank 0's id, all 128 bytes of it.
  std::vector<char> ids(size_t(nranks) * sizeof id);
  if (gather_bytes("ncclCommInitRank", c, &id, sizeof id, ids.data()) != ncclSuccess) return MPI_Comm_free(&dup), delete c, ncclSystemError;
  for (int r = 0; r < nranks; ++r)
    if (std::memcmp(ids.data() + size_t(r) * sizeof id, &id, sizeof id)) {
      MPI_Comm_free(&dup), delete c;
      return refuse(ncclInvalidArgument, "ncclCommInitRank: rank %d was given another id than rank %d", r, rank);
    }
  if (const char* e = std::getenv("MAMAKIT_NCCL_STANDIN_ASYNC_ERROR")) c->async_error_from = std::atol(e);
  g_live.insert(c);
  *comm = c;
  return ncclSuccess;
}

EXPORT ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                                  mk_nccl_stream) {
  const char* call = "ncclAllReduce";
  if (ncclResult_t r = check_collective(call, comm, datatype)) return r;
  if (op != ncclSum && op != ncclAvg) return refuse(ncclInvalidArgument, "%s: op %d is not one mamakit uses (ncclSum, ncclAvg)", call, int(op));
  const size_t es = type_size(datatype), bytes = count * es;
  if (count && (!sendbuff || !recvbuff)) return refuse(ncclInvalidArgument, "%s: a null buffer for %zu elements", call, count);
  if (sendbuff != recvbuff && overlap(sendbuff, bytes, recvbuff, bytes))
    return refuse(ncclInvalidArgument, "%s: the send and receive buffers overlap without being the same", call);
  if (ncclResult_t r = same_on_every_rank(call, comm, {1, int32_t(datatype), int32_t(op), -1, count})) return r;
  std::vector<char> all(bytes * size_t(comm->nranks));
  if (ncclResult_t r = gather_bytes(call, comm, sendbuff, bytes, all.data())) return r;
  const float scale = op == ncclAvg ? 1.f / float(comm->nranks) : 1.f;
  for (size_t i = 0; i < count; ++i) {
    float acc = 0.f;
    for (int r = 0; r < comm->nranks; ++r) {
      const float x = load(all.data() + size_t(r) * bytes, i, datatype);
      acc = r ? acc + x * scale : x * scale;
    }
    store(recvbuff, i, datatype, acc);
  }
  comm->collectives++;
  return ncclSuccess;
}

EXPORT ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype, ncclComm_t comm,
                                  mk_nccl_stream) {
  const char* call = "ncclAllGather";
  if (ncclResult_t r = check_collective(call, comm, datatype)) return r;
  const size_t bytes = sendcount * type_size(datatype);
  if (sendcount && (!sendbuff || !recvbuff)) return refuse(ncclInvalidArgument, "%s: a null buffer for %zu elements", call, sendcount);
  // In place only at this rank's own slot of the output.
  char* own = static_cast<char*>(recvbuff) + size_t(comm->rank) * bytes;
  if (sendbuff != own && overlap(sendbuff, bytes, recvbuff, bytes * size_t(comm->nranks)))
    return refuse(ncclInvalidArgument, "%s: the send buffer overlaps the output other than at this rank's slot", call);
  if (ncclResult_t r = same_on_every_rank(call, comm, {2, int32_t(datatype), -1, -1, sendcount})) return r;
  std::vector<char> all(bytes * size_t(comm->nranks));
  if (ncclResult_t r = gather_bytes(call, comm, sendbuff, bytes, all.data())) return r;
  if (!all.empty()) std::memcpy(recvbuff, all.data(), all.size());
  comm->collectives++;
  return ncclSuccess;
}

EXPORT ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
                                  mk_nccl_stream) {
  const char* call = "ncclBroadcast";
  if (ncclResult_t r = check_collective(call, comm, datatype)) return r;
  if (root < 0 || root >= comm->nranks) return refuse(ncclInvalidArgument, "%s: root %d of %d ranks", call, root, comm->nranks);
  const size_t bytes = count * type_size(datatype);
  if (count && (!recvbuff || (comm->rank == root && !sendbuff))) return refuse(ncclInvalidArgument, "%s: a null buffer for %zu elements", call, count);
  if (comm->rank == root && sendbuff != recvbuff && overlap(sendbuff, bytes, recvbuff, bytes))
    return refuse(ncclInvalidArgument, "%s: the send and receive buffers overlap without being the same", call);
  if (ncclResult_t r = same_on_every_rank(call, comm, {3, int32_t(datatype), -1, root, count})) return r;
  if (comm->rank == root && sendbuff != recvbuff && bytes) std::memmove(recvbuff, sendbuff, bytes);
  const size_t piece = size_t(1) << 28;
  for (size_t at = 0; at < bytes; at += piece)
    if (MPI_Bcast(static_cast<char*>(recvbuff) + at, int(std::min(piece, bytes - at)), MPI_BYTE, root, comm->mpi) != MPI_SUCCESS)
      return refuse(ncclSystemError, "%s: MPI_Bcast failed", call);
  comm->collectives++;
  return ncclSuccess;
}

EXPORT ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* async_error) {
  if (ncclResult_t r = check_comm("ncclCommGetAsyncError", comm)) return r;
  if (!async_error) return refuse(ncclInvalidArgument, "ncclCommGetAsyncError: null result");
  *async_error = comm->async_error_from > 0 && comm->collectives >= comm->async_error_from ? ncclRemoteError : ncclSuccess;
  return ncclSuccess;
}

// Destroy: collective, after every rank's work (MPI_Comm_free). Abort: local, for when a peer
// may be gone (the MPI communicator is left to MPI_Finalize).
EXPORT ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (ncclResult_t r = check_comm("ncclCommDestroy", comm)) return r;
  g_live.erase(comm);
  MPI_Comm_free(&comm->mpi);
  delete comm;
  return ncclSuccess;
}

// A communicator still live when the process exits was neither destroyed nor aborted: said on
// stderr (the tests check that no line of this library's appears).
__attribute__((destructor)) void leak_check() {
  if (!g_live.empty()) refuse(ncclSuccess, "the process exits with %zu communicator(s) neither destroyed nor aborted", g_live.size());
}

EXPORT ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (!comm || !g_live.count(comm)) return refuse(ncclInvalidArgument, "ncclCommAbort: %p is not a live communicator", static_cast<void*>(comm));
  // Said (a note, not a refusal), since a process that then ends every rank runs no destructor.
  std::fprintf(stderr, "mamakit NCCL stand-in note: rank %d aborted its communicator\n", comm->rank);
  g_live.erase(comm);
  delete comm;
  return ncclSuccess;
}
