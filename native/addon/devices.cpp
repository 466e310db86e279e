// devices.cpp: backend registry and the dlopen of the CUDA backend; see devices.h.
#include "devices.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdlib>
#include <mutex>

namespace mk {

std::string addon_dir() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&init_devices), &info) && info.dli_fname) {
    std::string p = info.dli_fname;
    auto slash = p.rfind('/');
    if (slash != std::string::npos) return p.substr(0, slash);
  }
  return ".";
}

namespace {

Device g_devices[kNumDevices];
std::string g_cuda_status = "not loaded";
bool g_cuda_built = false;
void* g_cuda_lib = nullptr;

void load_cuda() {
  const char* env_path = std::getenv("MAMAKIT_CUDA_LIB");
  const std::string path = env_path ? env_path : addon_dir() + "/libmamakit_cuda.so";
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    g_cuda_status = "not built: " + path + " not found (rebuild with nvcc on PATH)";
    return;
  }
  g_cuda_built = true;
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = dlerror();
    g_cuda_status = std::string("not loadable: ") + (e ? e : path);
    return;
  }
  auto probe = reinterpret_cast<mk_cuda_probe_fn>(dlsym(lib, "mk_cuda_probe"));
  auto get = reinterpret_cast<mk_cuda_backend_fn>(dlsym(lib, "mk_cuda_backend"));
  if (!probe || !get) {
    g_cuda_status = "not loadable: " + path + " lacks mk_cuda_probe or mk_cuda_backend";
    return;
  }
  char why[512] = {0};
  if (probe(why, sizeof(why)) <= 0) {
    g_cuda_status = why[0] ? why : "no device";
    return;
  }
  const mk_backend* be = get();
  if (!be || be->abi_version != MK_ABI_VERSION) {
    g_cuda_status = "not loadable: ABI version mismatch (rebuild the addon and the CUDA library together)";
    return;
  }
  mk_context* ctx = nullptr;
  if (be->create(&ctx) != MK_OK) {
    g_cuda_status = std::string("no device: ") + be->last_error(nullptr);
    return;
  }
  g_devices[kCuda] = {be, ctx};
  g_cuda_lib = lib;
  g_cuda_status = be->describe(ctx);
}

void load_all() {
  const mk_backend* cpu = mk_cpu_backend();
  mk_context* ctx = nullptr;
  if (cpu->create(&ctx) == MK_OK) g_devices[kCpu] = {cpu, ctx};
  load_cuda();
}

}  // namespace

void init_devices() {
  static std::once_flag once;
  std::call_once(once, load_all);
}

Device& device(DeviceId id) { return g_devices[id]; }
bool device_available(DeviceId id) { return g_devices[id].backend != nullptr; }
const char* device_name(DeviceId id) { return id == kCuda ? "cuda" : "cpu"; }
const std::string& cuda_status() { return g_cuda_status; }
bool cuda_emulated() { return device_available(kCuda) && g_cuda_status.rfind("emulated", 0) == 0; }
bool cuda_built() { return g_cuda_built; }
void* cuda_library() { return g_cuda_lib; }

}  // namespace mk
