// devices.h: the backends the addon can dispatch to. The CPU backend is linked in; the CUDA
// backend is libmamakit_cuda.so beside the addon, opened with dlopen at load when present.
#pragma once
#include <string>

#include "mamakit.h"

namespace mk {

enum DeviceId { kCpu = 0, kCuda = 1, kNumDevices = 2 };

struct Device {
  const mk_backend* backend = nullptr;  // null when unavailable
  mk_context* ctx = nullptr;
};

// Loads the backends once per process (thread-safe).
void init_devices();
Device& device(DeviceId id);
bool device_available(DeviceId id);
const char* device_name(DeviceId id);
// Why CUDA is unavailable ("not built: ...", "no driver: ...", "no device: ...") or, when
// it is, the device description.
const std::string& cuda_status();
// The CUDA backend in use is the emulated library (native/cuda/emu): never a GPU, never timed.
bool cuda_emulated();
bool cuda_built();
// The folder of mamakit.node, where the optional libraries are looked for.
std::string addon_dir();
// The dlopen handle of the CUDA library in use (for its other entries, e.g. NCCL's); null when
// CUDA is unavailable.
void* cuda_library();

}  // namespace mk
