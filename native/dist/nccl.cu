// nccl.cu: the NCCL collective backend (mamakit_dist.h), compiled into libmamakit_cuda.so by
// nvcc. NCCL itself is opened with dlopen on first use (MAMAKIT_NCCL_LIB, else libnccl.so.2),
// so the CUDA library loads and runs without it. Collectives run on the CUDA backend's stream.
// The emulated CUDA library (native/cuda/emu) compiles this file too, with g++: there it opens only
// the library MAMAKIT_NCCL_LIB names, which in CI is native/tests/nccl_mpi_standin.cpp (NCCL's
// calls over MPI on the emulation's host-memory "device" pointers). That runs this file's code
// (loading, version, unique id, init, dtypes and ops, stream polling, async errors, abort and
// destroy) on every CI run; NCCL itself runs only on a GPU.
#include <dlfcn.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>

#include "../cuda/common.cuh"
#include "mamakit_dist.h"
#include "nccl.h"

namespace {

thread_local std::string t_error;
std::string g_describe = "not loaded";
bool g_loaded = false;
ncclComm_t g_comm = nullptr;
std::string g_broken;

struct Nccl {
  ncclGetVersion_fn GetVersion;
  ncclGetUniqueId_fn GetUniqueId;
  ncclCommInitRank_fn CommInitRank;
  ncclAllReduce_fn AllReduce;
  ncclAllGather_fn AllGather;
  ncclBroadcast_fn Broadcast;
  ncclCommDestroy_fn CommDestroy;
  ncclCommAbort_fn CommAbort;
  ncclCommGetAsyncError_fn CommGetAsyncError;
  ncclGetErrorString_fn GetErrorString;
} nccl;

int fail(const std::string& msg) {
  t_error = msg;
  return 1;
}

int nccl_fail(const char* what, ncclResult_t r) {
  return fail(std::string(what) + ": " + (nccl.GetErrorString ? nccl.GetErrorString(r) : "error") + " (ncclResult " + std::to_string(int(r)) + ")");
}

const char* last_error() { return t_error.c_str(); }

int load() {
  if (g_loaded) return 0;
  const char* env = std::getenv("MAMAKIT_NCCL_LIB");
#ifdef MK_CUDA_EMU
  // Real NCCL needs a GPU: the emulated library opens only a stand-in, named explicitly.
  if (!env || !*env)
    return fail("the emulated CUDA library opens no NCCL but a stand-in that MAMAKIT_NCCL_LIB names (build/Release/libnccl_standin.so, "
                "built by scripts/build-cuda-emu.mjs where MPI is found)");
#endif
  const std::string path = env && *env ? env : "libnccl.so.2";
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = dlerror();
    return fail("NCCL could not be opened: " + std::string(e ? e : path) +
                " (NVIDIA's libnccl2 package, NGC containers and PyTorch wheels have it; MAMAKIT_NCCL_LIB names the library)");
  }
  int missing = 0;
  std::string names;
  auto sym = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
    if (!fn) missing++, names += std::string(names.empty() ? "" : ", ") + name;
  };
  sym(nccl.GetVersion, "ncclGetVersion");
  sym(nccl.GetUniqueId, "ncclGetUniqueId");
  sym(nccl.CommInitRank, "ncclCommInitRank");
  sym(nccl.AllReduce, "ncclAllReduce");
  sym(nccl.AllGather, "ncclAllGather");
  sym(nccl.Broadcast, "ncclBroadcast");
  sym(nccl.CommDestroy, "ncclCommDestroy");
  sym(nccl.CommAbort, "ncclCommAbort");
  sym(nccl.CommGetAsyncError, "ncclCommGetAsyncError");
  sym(nccl.GetErrorString, "ncclGetErrorString");
  if (missing) return fail(path + " lacks " + names + " (NCCL ≥ 2.10 is needed)");
  int v = 0;
  if (nccl.GetVersion(&v) != ncclSuccess || v < 21000)
    return fail(path + " is NCCL version code " + std::to_string(v) + "; ≥ 2.10 (ncclAvg, ncclBfloat16) is needed");
  char buf[512];
  std::snprintf(buf, sizeof buf, "NCCL %d.%d.%d (%s)", v / 10000, v / 100 % 100, v % 100, path.c_str());
  g_describe = buf;
  g_loaded = true;
  return 0;
}

const char* describe() { return g_describe.c_str(); }

int unique_id(void* id) {
  if (load()) return 1;
  const ncclResult_t r = nccl.GetUniqueId(static_cast<ncclUniqueId*>(id));
  return r == ncclSuccess ? 0 : nccl_fail("ncclGetUniqueId", r);
}

int init_rank(mk_context* ctx, const void* id, int size, int rank) {
  if (load()) return 1;
  if (g_comm) return fail("the NCCL communicator exists already");
  const cudaError_t e = cudaSetDevice(ctx->device);
  if (e != cudaSuccess) return fail(std::string("cudaSetDevice: ") + cudaGetErrorString(e));
  ncclUniqueId uid;
  std::memcpy(&uid, id, sizeof uid);
  const ncclResult_t r = nccl.CommInitRank(&g_comm, size, uid, rank);
  if (r != ncclSuccess) g_comm = nullptr;
  return r == ncclSuccess ? 0 : nccl_fail("ncclCommInitRank", r);
}

int usable() {
  if (!g_comm) return fail("no NCCL communicator (init_rank first)");
  if (!g_broken.empty()) return fail("the NCCL communicator failed earlier (" + g_broken + "); abort every rank");
  return 0;
}

int broken(const std::string& msg) {
  g_broken = msg;
  if (g_comm) nccl.CommAbort(g_comm), g_comm = nullptr;
  return fail(msg);
}

// Waits for what was enqueued on the stream (the collective and the work before it) until
// done, an NCCL or CUDA error, or the deadline.
int wait(mk_context* ctx, const char* what, double timeout_s) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const auto deadline = t0 + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(timeout_s));
  for (;;) {
    const cudaError_t q = cudaStreamQuery(ctx->stream);
    if (q == cudaSuccess) return 0;
    if (q != cudaErrorNotReady) return broken(std::string(what) + ": " + cudaGetErrorName(q) + " (" + cudaGetErrorString(q) + ")");
    ncclResult_t async = ncclSuccess;
    nccl.CommGetAsyncError(g_comm, &async);
    if (async != ncclSuccess && async != ncclInProgress)
      return broken(std::string(what) + ": " + nccl.GetErrorString(async) + " (a peer failed or the network broke)");
    const auto now = clock::now();
    if (timeout_s > 0 && now > deadline) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "%s: not every rank joined within %g s (a rank failed, is stuck, or called another collective)", what,
                    timeout_s);
      return broken(buf);
    }
    if (now - t0 > std::chrono::milliseconds(1)) std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

ncclDataType_t nccl_type(mk_dtype d) { return d == MK_BF16 ? ncclBfloat16 : d == MK_F16 ? ncclFloat16 : ncclFloat32; }

int all_reduce(mk_context* ctx, void* buf, int64_t n, mk_dtype dtype, mk_reduce_op op, double timeout_s) {
  if (usable()) return 1;
  const ncclResult_t r = nccl.AllReduce(buf, buf, size_t(n), nccl_type(dtype), op == MK_MEAN ? ncclAvg : ncclSum, g_comm, ctx->stream);
  if (r != ncclSuccess) return broken(std::string("ncclAllReduce: ") + nccl.GetErrorString(r));
  return wait(ctx, "ncclAllReduce", timeout_s);
}

int all_gather(mk_context* ctx, void* out, const void* in, int64_t n, mk_dtype dtype, double timeout_s) {
  if (usable()) return 1;
  const ncclResult_t r = nccl.AllGather(in, out, size_t(n), nccl_type(dtype), g_comm, ctx->stream);
  if (r != ncclSuccess) return broken(std::string("ncclAllGather: ") + nccl.GetErrorString(r));
  return wait(ctx, "ncclAllGather", timeout_s);
}

int broadcast(mk_context* ctx, void* buf, int64_t n, mk_dtype dtype, int root, double timeout_s) {
  if (usable()) return 1;
  const ncclResult_t r = nccl.Broadcast(buf, buf, size_t(n), nccl_type(dtype), root, g_comm, ctx->stream);
  if (r != ncclSuccess) return broken(std::string("ncclBroadcast: ") + nccl.GetErrorString(r));
  return wait(ctx, "ncclBroadcast", timeout_s);
}

void abort_comm() {
  if (g_comm) nccl.CommAbort(g_comm), g_comm = nullptr;
}

void destroy() {
  if (g_comm) nccl.CommDestroy(g_comm), g_comm = nullptr;
}

const mk_nccl_api kApi = {MK_DIST_ABI_VERSION, last_error, load, describe, unique_id, init_rank, all_reduce, all_gather, broadcast,
                          abort_comm, destroy};

}  // namespace

extern "C" __attribute__((visibility("default"))) const mk_nccl_api* mk_nccl_api_get(void) { return &kApi; }
