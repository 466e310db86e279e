// mpi.cpp: libmamakit_mpi.so, the MPI collective backend (mamakit_dist.h) over MPI_COMM_WORLD.
// Built when CMake finds MPI; the addon opens it with dlopen only when the process was launched
// by mpirun. Tested by test/dist/dist.test.ts (2 ranks under mpirun).
#include <dlfcn.h>
#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "mamakit_dist.h"

namespace {

thread_local std::string t_error;
bool g_init = false;
int g_rank = 0, g_size = 1;
std::string g_broken;  // why the communicator cannot be used any more ("" while it can)
std::string g_describe;

int fail(const std::string& msg) {
  t_error = msg;
  return 1;
}

std::string mpi_error(int rc) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, buf, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(rc);
  return std::string(buf, size_t(len));
}

// A failure after which the ranks may be in different collectives: nothing more can be trusted.
int broken(const std::string& msg) {
  g_broken = msg;
  return fail(msg);
}

int usable() {
  if (!g_init) return fail("MPI is not initialised");
  if (!g_broken.empty()) return fail("the communicator failed earlier (" + g_broken + "); abort every rank");
  return 0;
}

// Waits for a started nonblocking collective until done, a transport error or the deadline.
// MPI_Test also drives the progress of the collective, so it is polled without sleeping for
// the first millisecond, then with 20 µs pauses (a rank that waits long leaves the core free).
int wait(MPI_Request* req, const char* what, double timeout_s) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const auto deadline = t0 + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(timeout_s));
  for (int done = 0;;) {
    const int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return broken(std::string(what) + ": " + mpi_error(rc));
    if (done) return 0;
    const auto now = clock::now();
    if (now > deadline) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "%s: not every rank joined within %g s (a rank failed, is stuck, or called another collective)",
                    what, timeout_s);
      return broken(buf);
    }
    if (now - t0 > std::chrono::milliseconds(1)) std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

// A collective started by `start(req)` (nonblocking), or run blocking by `run()` when
// timeout_s is 0 (no deadline: MPI's own blocking algorithms).
template <class Start, class Run>
int collective(const char* what, double timeout_s, Start&& start, Run&& run) {
  if (usable()) return 1;
  if (timeout_s <= 0) {
    const int rc = run();
    return rc == MPI_SUCCESS ? 0 : broken(std::string(what) + ": " + mpi_error(rc));
  }
  MPI_Request req;
  const int rc = start(&req);
  if (rc != MPI_SUCCESS) return broken(std::string(what) + ": " + mpi_error(rc));
  return wait(&req, what, timeout_s);
}

// Long buffers go in chunks of 16 MB (MPI counts are int, too): Open MPI 4.1 over shared memory took
// 0.9–1.5 s for one 80 MB MPI_Allreduce on this 2-core VM and 0.15–0.3 s in 16 MB pieces.
constexpr int64_t kChunkBytes = int64_t(16) << 20;

const char* last_error() { return t_error.c_str(); }

int init(int* rank, int* size, int* local_rank) {
  if (g_init) return fail("MPI is already initialised");
  // Open MPI's components are plugins that resolve libmpi's symbols at dlopen; libmpi came in
  // with this library, opened RTLD_LOCAL by default: make it global before MPI_Init loads them.
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&MPI_Init_thread), &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
  int provided = 0;
  int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
  if (rc != MPI_SUCCESS) return fail("MPI_Init_thread: " + mpi_error(rc));
  g_init = true;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  MPI_Comm node;
  rc = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node);
  if (rc != MPI_SUCCESS) return broken("MPI_Comm_split_type: " + mpi_error(rc));
  MPI_Comm_rank(node, local_rank);
  MPI_Comm_free(&node);
  *rank = g_rank, *size = g_size;
  return 0;
}

const char* describe() {
  if (g_describe.empty()) {
    char buf[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(buf, &len);
    g_describe.assign(buf, size_t(len));
    g_describe = g_describe.substr(0, g_describe.find_first_of("\n,"));
  }
  return g_describe.c_str();
}

int all_reduce_f32(float* buf, int64_t n, mk_reduce_op op, double timeout_s) {
  for (int64_t i = 0, chunk = kChunkBytes / 4; i < n; i += chunk) {
    const int c = int(std::min(chunk, n - i));
    if (collective("MPI_Iallreduce", timeout_s,
                   [&](MPI_Request* r) { return MPI_Iallreduce(MPI_IN_PLACE, buf + i, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, r); },
                   [&] { return MPI_Allreduce(MPI_IN_PLACE, buf + i, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); }))
      return 1;
  }
  if (op == MK_MEAN)
    for (int64_t i = 0; i < n; ++i) buf[i] /= float(g_size);
  return 0;
}

int all_gather(void* out, const void* in, int64_t bytes, double timeout_s) {
  if (bytes > INT_MAX) return fail("MPI_Iallgather: " + std::to_string(bytes) + " bytes per rank, at most 2^31 − 1 are supported");
  const int c = int(bytes);
  return collective("MPI_Iallgather", timeout_s,
                    [&](MPI_Request* r) { return MPI_Iallgather(in, c, MPI_BYTE, out, c, MPI_BYTE, MPI_COMM_WORLD, r); },
                    [&] { return MPI_Allgather(in, c, MPI_BYTE, out, c, MPI_BYTE, MPI_COMM_WORLD); });
}

int broadcast(void* buf, int64_t bytes, int root, double timeout_s) {
  char* p = static_cast<char*>(buf);
  for (int64_t i = 0; i < bytes; i += kChunkBytes) {
    const int c = int(std::min(kChunkBytes, bytes - i));
    if (collective("MPI_Ibcast", timeout_s, [&](MPI_Request* r) { return MPI_Ibcast(p + i, c, MPI_BYTE, root, MPI_COMM_WORLD, r); },
                   [&] { return MPI_Bcast(p + i, c, MPI_BYTE, root, MPI_COMM_WORLD); }))
      return 1;
  }
  return 0;
}

int barrier(double timeout_s) {
  return collective("MPI_Ibarrier", timeout_s, [&](MPI_Request* r) { return MPI_Ibarrier(MPI_COMM_WORLD, r); },
                    [&] { return MPI_Barrier(MPI_COMM_WORLD); });
}

void abort_all(int code) {
  if (g_init) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

int finalize() {
  int done = 0;
  MPI_Finalized(&done);
  if (!g_init || done || !g_broken.empty()) return 0;
  const int rc = MPI_Finalize();
  return rc == MPI_SUCCESS ? 0 : fail("MPI_Finalize: " + mpi_error(rc));
}

const mk_mpi_api kApi = {MK_DIST_ABI_VERSION, last_error, init, describe, all_reduce_f32, all_gather, broadcast, barrier,
                         abort_all, finalize};

}  // namespace

extern "C" __attribute__((visibility("default"))) const mk_mpi_api* mk_mpi_api_get(void) { return &kApi; }
