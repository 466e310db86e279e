// addon.cpp: module entry of mamakit.node. Exports the tensor class, device queries, build
// information and the kernel bindings; lib/native.ts is the typed mirror of these exports.
#include <napi.h>

#include "checks.h"
#include "devices.h"
#include "mamakit.h"
#include "ops.h"
#include "tensor.h"

#ifndef MK_BUILD_SYSTEM
#define MK_BUILD_SYSTEM "unknown"
#endif

namespace mk {
namespace {

Napi::Value Backends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (int i = 0; i < kNumDevices; ++i)
    if (device_available(DeviceId(i))) out.Set(n++, Napi::String::New(env, device_name(DeviceId(i))));
  return out;
}

Napi::Value CudaStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("built", Napi::Boolean::New(env, cuda_built()));
  out.Set("available", Napi::Boolean::New(env, device_available(kCuda)));
  out.Set("detail", Napi::String::New(env, cuda_status()));
  out.Set("emulated", Napi::Boolean::New(env, cuda_emulated()));
  return out;
}

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("abiVersion", Napi::Number::New(env, MK_ABI_VERSION));
  out.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  out.Set("buildSystem", Napi::String::New(env, MK_BUILD_SYSTEM));
  out.Set("compiler", Napi::String::New(env, "g++ " __VERSION__));
  out.Set("isa", Napi::String::New(env, mk_cpu_isa()));
  out.Set("bestIsa", Napi::String::New(env, mk_cpu_best_isa()));
  out.Set("threads", Napi::Number::New(env, mk_cpu_threads()));
  out.Set("cudaBuilt", Napi::Boolean::New(env, cuda_built()));
  out.Set("cudaEmulated", Napi::Boolean::New(env, cuda_emulated()));
  Device& cpu = device(kCpu);
  out.Set("cpu", Napi::String::New(env, cpu.backend ? cpu.backend->describe(cpu.ctx) : "unavailable"));
  return out;
}

// setIsa(name): lowers the CPU instruction set (tests run every path the CPU supports).
Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MK_TYPE_CHECK(info[0].IsString(), "setIsa: name must be 'avx512', 'avx2' or 'scalar', got ", describe_value(info[0]));
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const int r = mk_cpu_set_isa(name.c_str());
  MK_TYPE_CHECK(r != -1, "setIsa: name must be 'avx512', 'avx2' or 'scalar', got '", name, "'");
  MK_RANGE_CHECK(r == 0, "setIsa: this CPU cannot run ", name, " (best: ", mk_cpu_best_isa(), ")");
  return env.Undefined();
}

// noop(): the fixed cost of one Node-API call into the backend.
Napi::Value Noop(const Napi::CallbackInfo& info) {
  Device& cpu = device(kCpu);
  cpu.backend->noop(cpu.ctx);
  return info.Env().Undefined();
}

// noopTensor(t): the same plus unwrapping and checking one tensor argument.
Napi::Value NoopTensor(const Napi::CallbackInfo& info) {
  NativeTensor* t = tensor_arg(info.Env(), info[0], "noopTensor", "t");
  Device& d = device(t->dev());
  d.backend->noop(d.ctx);
  return info.Env().Undefined();
}

// memoryStats(reset?) -> { liveBytes, peakBytes, footprintBytes } of the CPU backend, and
// cuda: { liveBytes, peakBytes, heldBytes } when CUDA is available.
Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool reset = info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value();
  Napi::Object out = Napi::Object::New(env);
  out.Set("liveBytes", Napi::Number::New(env, double(mk_cpu_live_bytes())));
  out.Set("peakBytes", Napi::Number::New(env, double(mk_cpu_peak_bytes(reset))));
  out.Set("footprintBytes", Napi::Number::New(env, double(mk_cpu_footprint())));
  if (device_available(kCuda)) {
    Device& d = device(kCuda);
    int64_t live = 0, peak = 0, held = 0;
    check_status(env, d.backend->memory(d.ctx, &live, &peak, &held, reset), kCuda, "memoryStats");
    Napi::Object cuda = Napi::Object::New(env);
    cuda.Set("liveBytes", Napi::Number::New(env, double(live)));
    cuda.Set("peakBytes", Napi::Number::New(env, double(peak)));
    cuda.Set("heldBytes", Napi::Number::New(env, double(held)));
    out.Set("cuda", cuda);
  }
  return out;
}

// transferStats() -> { toDevice, toHost, syncs }: host↔device copies and waits for the device
// since the CUDA backend started (zeros without CUDA).
Napi::Value TransferStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t to_device = 0, to_host = 0, syncs = 0;
  if (device_available(kCuda)) {
    Device& d = device(kCuda);
    check_status(env, d.backend->traffic(d.ctx, &to_device, &to_host, &syncs), kCuda, "transferStats");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("toDevice", Napi::Number::New(env, double(to_device)));
  out.Set("toHost", Napi::Number::New(env, double(to_host)));
  out.Set("syncs", Napi::Number::New(env, double(syncs)));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  init_devices();
  if (!device_available(kCpu)) throw Napi::Error::New(env, "mamakit: the CPU backend failed to start");
  exports.Set("NativeTensor", NativeTensor::Define(env));
  exports.Set("backends", Napi::Function::New<Backends>(env, "backends"));
  exports.Set("cudaStatus", Napi::Function::New<CudaStatus>(env, "cudaStatus"));
  exports.Set("buildInfo", Napi::Function::New<BuildInfo>(env, "buildInfo"));
  exports.Set("setIsa", Napi::Function::New<SetIsa>(env, "setIsa"));
  exports.Set("noop", Napi::Function::New<Noop>(env, "noop"));
  exports.Set("memoryStats", Napi::Function::New<MemoryStats>(env, "memoryStats"));
  exports.Set("transferStats", Napi::Function::New<TransferStats>(env, "transferStats"));
  exports.Set("noopTensor", Napi::Function::New<NoopTensor>(env, "noopTensor"));
#define MK_EXPORT_BINDING(js, fn) exports.Set(#js, Napi::Function::New<fn>(env, #js));
  MK_ADDON_OPS(MK_EXPORT_BINDING)
  return exports;
}

}  // namespace
}  // namespace mk

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return mk::Init(env, exports); }
NODE_API_MODULE(mamakit, InitAll)
