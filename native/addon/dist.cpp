// dist.cpp: bindings of the communicator (lib/dist/index.ts): collectives over MPI for CPU
// tensors (libmamakit_mpi.so, which also starts the ranks) and over NCCL for CUDA tensors (the
// CUDA library's NCCL entries), both opened at run time; without mpirun, one process whose
// collectives are identities. Every argument is checked before memory is touched; under MPI the
// ranks then compare what each one called (op, dtype, device, element count, root), so calls that
// differ raise the same RangeError on every rank instead of corrupting memory or hanging.
// Synchronous: the JS thread waits for each collective (the addon has no asynchronous calls yet).
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "checks.h"
#include "devices.h"
#include "mamakit_dist.h"
#include "ops.h"
#include "tensor.h"

namespace mk {
namespace {

struct Dist {
  bool ready = false;  // distInit ran
  bool finalized = false;
  bool mpi = false;    // the MPI backend; else one process
  int rank = 0, size = 1, local_rank = 0;
  double timeout_s = 300;
  const mk_mpi_api* api = nullptr;
  const mk_nccl_api* nccl = nullptr;  // set once the NCCL communicator is up
} g;

std::string mpi_path() {
  const char* env = std::getenv("MAMAKIT_MPI_LIB");
  return env && *env ? env : addon_dir() + "/libmamakit_mpi.so";
}

bool exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// The MPI library's table, or null with *why set.
const mk_mpi_api* load_mpi(std::string* why) {
  const std::string path = mpi_path();
  if (!exists(path)) return *why = "not built: " + path + " not found (install MPI, e.g. Debian's libopenmpi-dev, then rebuild)", nullptr;
  // RTLD_GLOBAL: Open MPI's plugins resolve libmpi's symbols from the global scope.
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!lib) {
    const char* e = dlerror();
    return *why = std::string("not loadable: ") + (e ? e : path), nullptr;
  }
  auto get = reinterpret_cast<mk_mpi_api_fn>(dlsym(lib, "mk_mpi_api_get"));
  const mk_mpi_api* api = get ? get() : nullptr;
  if (!api) return *why = "not loadable: " + path + " lacks mk_mpi_api_get", nullptr;
  if (api->abi_version != MK_DIST_ABI_VERSION) return *why = "not loadable: " + path + " has another ABI version (rebuild it with the addon)", nullptr;
  return api;
}

// The CUDA library's NCCL table, or null with *why set.
const mk_nccl_api* nccl_table(std::string* why) {
  if (!device_available(kCuda)) return *why = "CUDA is unavailable (" + cuda_status() + ")", nullptr;
  auto get = reinterpret_cast<mk_nccl_api_fn>(dlsym(cuda_library(), "mk_nccl_api_get"));
  if (!get) return *why = cuda_emulated() ? "the emulated CUDA library has no NCCL entries (rebuild it: node scripts/build-cuda-emu.mjs)" : "the CUDA library was built without NCCL (rebuild it)", nullptr;
  const mk_nccl_api* api = get();
  if (api->abi_version != MK_DIST_ABI_VERSION) return *why = "the CUDA library's NCCL entries have another ABI version (rebuild it)", nullptr;
  return api;
}

std::string where() { return cat(" (rank ", g.rank, " of ", g.size, ")"); }

// A failed transfer: the ranks may now be in different places, so lib/dist aborts them all on
// an Error with this code (the other Errors are the same on every rank, which stay in step).
[[noreturn]] void comm_error(Napi::Env env, const char* op, const char* backend, const char* msg) {
  Napi::Error e = Napi::Error::New(env, cat(op, where(), ": ", backend, ": ", msg));
  e.Set("code", Napi::String::New(env, "ERR_MAMAKIT_DIST_FAILED"));
  throw e;
}

void require_ready(Napi::Env env, const char* op) {
  if (g.finalized) throw Napi::Error::New(env, cat(op, ": the communicator was finalised (the process is exiting)"));
  if (!g.ready) throw Napi::Error::New(env, cat(op, ": the communicator is not initialised (call dist.init() first)"));
}

// What one rank called; every rank must call the same.
struct Call {
  int32_t op, op_arg, dtype, device;  // op_arg: the reduction, or the broadcast root
  int64_t numel;
  bool operator!=(const Call& o) const { return std::memcmp(this, &o, sizeof o) != 0; }
};
enum : int32_t { kAllReduce, kAllGather, kBroadcast, kBarrier, kNcclSetup };
const char* kOpNames[] = {"allReduce", "allGather", "broadcast", "barrier", "NCCL set-up"};

std::string describe(const Call& c) {
  if (c.op < 0 || c.op > kNcclSetup) return "something else";
  if (c.op == kBarrier || c.op == kNcclSetup) return kOpNames[c.op];
  std::string s = kOpNames[c.op];
  if (c.op == kAllReduce) s += c.op_arg == MK_MEAN ? " (mean)" : " (sum)";
  if (c.op == kBroadcast) s += cat(" from rank ", c.op_arg);
  return s + cat(" of ", c.numel, " ", dtype_name(mk_dtype(c.dtype)), " elements on ", device_name(DeviceId(c.device)));
}

// Under MPI: every rank learns every rank's call; all throw the same RangeError when they differ.
// Every collective starts here, so a rank that died or hangs is usually found missing here: the
// slots still empty when the wait gives up name the ranks not heard from (nothing else writes
// them then: this thread alone drives MPI's progress).
void agree(Napi::Env env, const char* op, const Call& mine) {
  if (!g.mpi) return;
  const Call empty{-1, -1, -1, -1, -1};
  std::vector<Call> all(size_t(g.size), empty);
  if (g.api->all_gather(all.data(), &mine, sizeof mine, g.timeout_s)) {
    std::string missing;
    for (int r = 0; r < g.size; ++r)
      if (r != g.rank && !(all[size_t(r)] != empty)) missing += cat(missing.empty() ? "" : ", ", r);
    const std::string msg = g.api->last_error() + (missing.empty() ? "" : "; not heard from rank " + missing);
    comm_error(env, op, "MPI", msg.c_str());
  }
  for (int r = 1; r < g.size; ++r)
    if (all[size_t(r)] != all[0])
      throw Napi::RangeError::New(env, cat(op, ": the ranks called different collectives: rank 0 ", describe(all[0]), ", rank ", r, " ",
                                           describe(all[size_t(r)])));
}

// Opens NCCL on every rank and makes the communicator, with rank 0's id; at the first collective
// over CUDA tensors (which every rank calls).
void ensure_nccl(Napi::Env env, const char* op) {
  if (g.nccl) return;
  std::string why;
  const mk_nccl_api* api = nccl_table(&why);
  struct Hello {
    int32_t ok;
    char id[128];
  } mine{};
  if (api && api->load()) why = api->last_error(), api = nullptr;
  if (api && g.rank == 0 && api->unique_id(mine.id)) why = api->last_error(), api = nullptr;
  mine.ok = api != nullptr;
  std::vector<Hello> all(size_t(g.size));
  if (g.api->all_gather(all.data(), &mine, sizeof mine, g.timeout_s)) comm_error(env, op, "MPI", g.api->last_error());
  if (!mine.ok) throw Napi::Error::New(env, cat(op, where(), ": CUDA tensors need NCCL: ", why));
  for (int r = 0; r < g.size; ++r)
    if (!all[size_t(r)].ok) throw Napi::Error::New(env, cat(op, where(), ": CUDA tensors need NCCL, which rank ", r, " could not open (its message says why)"));
  if (api->init_rank(device(kCuda).ctx, all[0].id, g.size, g.rank)) comm_error(env, op, "NCCL", api->last_error());
  g.nccl = api;
}

char* bytes(const NativeTensor* t, int64_t offset = 0) {
  return static_cast<char*>(t->data()) + offset * int64_t(dtype_size(t->dtype()));
}

}  // namespace

// distStatus() -> { mpi: { built, detail }, nccl: { built, detail } }
Napi::Value DistStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env), mpi = Napi::Object::New(env), nccl = Napi::Object::New(env);
  const std::string path = mpi_path();
  mpi.Set("built", Napi::Boolean::New(env, exists(path)));
  mpi.Set("detail", Napi::String::New(env, g.mpi ? std::string(g.api->describe()) : exists(path) ? path : "not built: " + path + " not found"));
  std::string why;
  const mk_nccl_api* api = nccl_table(&why);
  nccl.Set("built", Napi::Boolean::New(env, api != nullptr));
  if (api && api->load()) why = api->last_error(), api = nullptr;
  nccl.Set("available", Napi::Boolean::New(env, api != nullptr));
  nccl.Set("detail", Napi::String::New(env, api ? api->describe() : why));
  out.Set("mpi", mpi);
  out.Set("nccl", nccl);
  return out;
}

// distInit(mpi: boolean, timeoutS: number) -> { rank, size, localRank, backend, detail }
Napi::Value DistInit(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "dist.init");
  Napi::Env env = info.Env();
  const bool use_mpi = a.boolean(info[0], "mpi");
  const double timeout = a.number(info[1], "timeout", 0, 1e9);
  if (g.ready || g.finalized) throw Napi::Error::New(env, "dist.init: the communicator is initialised already");
  g.timeout_s = timeout;
  if (use_mpi) {
    std::string why;
    g.api = load_mpi(&why);
    if (!g.api) throw Napi::Error::New(env, "dist.init: launched by mpirun, but the MPI library is " + why);
    if (g.api->init(&g.rank, &g.size, &g.local_rank)) throw Napi::Error::New(env, cat("dist.init: ", g.api->last_error()));
    g.mpi = true;
  }
  g.ready = true;
  Napi::Object out = Napi::Object::New(env);
  out.Set("rank", g.rank);
  out.Set("size", g.size);
  out.Set("localRank", g.local_rank);
  out.Set("backend", g.mpi ? "mpi" : "single");
  out.Set("detail", g.mpi ? g.api->describe() : "one process (not launched by mpirun)");
  return out;
}

// distAllReduce(t, op: 'sum' | 'mean', offset?, length?) -> t, reduced in place over
// [offset, offset + length) (default: all of it).
Napi::Value DistAllReduce(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "allReduce");
  Napi::Env env = info.Env();
  NativeTensor* t = a.tensor(info[0], "t");
  const std::string op_name = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  MK_TYPE_CHECK(op_name == "sum" || op_name == "mean", "allReduce: op must be 'sum' or 'mean', got ",
                info[1].IsString() ? "'" + op_name + "'" : describe_value(info[1]));
  const mk_reduce_op op = op_name == "mean" ? MK_MEAN : MK_SUM;
  const int64_t offset = info[2].IsUndefined() ? 0 : a.integer(info[2], "offset", 0, t->numel());
  const int64_t length = info[3].IsUndefined() ? t->numel() - offset : a.integer(info[3], "length", 0, t->numel() - offset);
  require_ready(env, "allReduce");
  agree(env, "allReduce", {kAllReduce, op, int32_t(t->dtype()), int32_t(t->dev()), length});
  if (!g.mpi || length == 0) return info[0];
  if (t->dev() == kCuda) {
    ensure_nccl(env, "allReduce");
    if (g.nccl->all_reduce(device(kCuda).ctx, bytes(t, offset), length, t->dtype(), op, g.timeout_s))
      comm_error(env, "allReduce", "NCCL", g.nccl->last_error());
    return info[0];
  }
  // The CPU backend stores f32 only (16-bit tensors live on CUDA, where NCCL reduces them).
  if (g.api->all_reduce_f32(reinterpret_cast<float*>(bytes(t, offset)), length, op, g.timeout_s))
    comm_error(env, "allReduce", "MPI", g.api->last_error());
  return info[0];
}

// distAllGather(t [n, …]) -> [size·n, …] (a scalar gives [size]): every rank's t in rank order.
Napi::Value DistAllGather(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "allGather");
  Napi::Env env = info.Env();
  NativeTensor* t = a.tensor(info[0], "t");
  require_ready(env, "allGather");
  agree(env, "allGather", {kAllGather, 0, int32_t(t->dtype()), int32_t(t->dev()), t->numel()});
  std::vector<int64_t> shape = t->shape();
  if (shape.empty()) shape.push_back(1);
  shape[0] *= g.size;
  Napi::Object out = a.alloc(t->dev(), t->dtype(), shape);
  NativeTensor* o = unwrap(out);
  if (!g.mpi) {
    Device& d = device(t->dev());
    a.status(a.entry(d.backend->copy, t->dev())(d.ctx, o->data(), t->data(), t->dtype(), t->numel()), t->dev());
  } else if (t->dev() == kCuda) {
    ensure_nccl(env, "allGather");
    if (g.nccl->all_gather(device(kCuda).ctx, o->data(), t->data(), t->numel(), t->dtype(), g.timeout_s))
      comm_error(env, "allGather", "NCCL", g.nccl->last_error());
  } else if (g.api->all_gather(o->data(), t->data(), t->numel() * int64_t(dtype_size(t->dtype())), g.timeout_s)) {
    comm_error(env, "allGather", "MPI", g.api->last_error());
  }
  return out;
}

// distBroadcast(t, root) -> t, overwritten with root's t.
Napi::Value DistBroadcast(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "broadcast");
  Napi::Env env = info.Env();
  NativeTensor* t = a.tensor(info[0], "t");
  require_ready(env, "broadcast");
  const int root = int(a.integer(info[1], "root", 0, g.size - 1));
  agree(env, "broadcast", {kBroadcast, root, int32_t(t->dtype()), int32_t(t->dev()), t->numel()});
  if (!g.mpi) return info[0];
  if (t->dev() == kCuda) {
    ensure_nccl(env, "broadcast");
    if (g.nccl->broadcast(device(kCuda).ctx, t->data(), t->numel(), t->dtype(), root, g.timeout_s))
      comm_error(env, "broadcast", "NCCL", g.nccl->last_error());
  } else if (g.api->broadcast(t->data(), t->numel() * int64_t(dtype_size(t->dtype())), root, g.timeout_s)) {
    comm_error(env, "broadcast", "MPI", g.api->last_error());
  }
  return info[0];
}

// distBarrier(): returns once every rank has called it.
Napi::Value DistBarrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_ready(env, "barrier");
  agree(env, "barrier", {kBarrier, 0, 0, 0, 0});
  if (g.mpi && g.api->barrier(g.timeout_s)) comm_error(env, "barrier", "MPI", g.api->last_error());
  return env.Undefined();
}

// distAbort(message, code): writes message to stderr and, under MPI, ends every rank
// (MPI_Abort; does not return). One process: returns, and lib/dist exits.
Napi::Value DistAbort(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "abort");
  Napi::Env env = info.Env();
  MK_TYPE_CHECK(info[0].IsString(), "abort: message must be a string, got ", describe_value(info[0]));
  const std::string msg = info[0].As<Napi::String>().Utf8Value() + "\n";
  const int code = int(a.integer(info[1], "code", 1, 255));
  for (size_t done = 0; done < msg.size();) {
    const ssize_t n = ::write(2, msg.data() + done, msg.size() - done);
    if (n <= 0) break;
    done += size_t(n);
  }
  if (g.nccl) g.nccl->abort();
  if (g.mpi) g.api->abort(code);
  return env.Undefined();
}

// distFinalize(): ends the communicators of a rank that finished normally (every rank must).
Napi::Value DistFinalize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!g.ready || g.finalized) return env.Undefined();
  g.finalized = true;
  if (g.nccl) g.nccl->destroy(), g.nccl = nullptr;
  if (g.mpi && g.api->finalize()) throw Napi::Error::New(env, cat("dist.finalize", where(), ": ", g.api->last_error()));
  return env.Undefined();
}

}  // namespace mk
