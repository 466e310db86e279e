// tensor.h: NativeTensor, the storage behind lib/tensor.ts: shape, dtype, device and one
// allocation. dispose() frees at once; the GC finalizer frees what was forgotten.
#pragma once
#include <napi.h>

#include <cstdint>
#include <vector>

#include "devices.h"
#include "mamakit.h"

namespace mk {

const char* dtype_name(mk_dtype d);
size_t dtype_size(mk_dtype d);

class NativeTensor : public Napi::ObjectWrap<NativeTensor> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new NativeTensor(data: Float32Array | null, shape: number[], device: string, dtype: string,
  //                  fill?: number)  — data null: uninitialised, or `fill` when given.
  explicit NativeTensor(const Napi::CallbackInfo& info);
  ~NativeTensor() override;

  // A tensor of the given shape on (device, dtype), contents unspecified.
  static Napi::Object Create(Napi::Env env, DeviceId dev, mk_dtype dtype,
                             const std::vector<int64_t>& shape);

  DeviceId dev() const { return dev_; }
  mk_dtype dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t numel() const { return numel_; }
  void* data() const { return data_; }
  bool disposed() const { return data_ == nullptr; }

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value ToArray(const Napi::CallbackInfo& info);
  Napi::Value GetShape(const Napi::CallbackInfo& info);
  Napi::Value GetDtype(const Napi::CallbackInfo& info);
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  void Free();

  DeviceId dev_ = kCpu;
  mk_dtype dtype_ = MK_F32;
  std::vector<int64_t> shape_;
  int64_t numel_ = 0;
  size_t bytes_ = 0;
  void* data_ = nullptr;
  napi_env env_ = nullptr;
};

// Unwraps a tensor argument: TypeError unless `v` is a live NativeTensor.
NativeTensor* tensor_arg(Napi::Env env, const Napi::Value& v, const char* op, const char* name);
// Same, but null/undefined gives nullptr.
NativeTensor* optional_tensor_arg(Napi::Env env, const Napi::Value& v, const char* op,
                                  const char* name);
bool bool_arg(Napi::Env env, const Napi::Value& v, const char* op, const char* name);
// Throws an Error naming the op and device for a failed backend status.
void check_status(Napi::Env env, mk_status s, DeviceId dev, const char* op);
// The backend's entry for an op, or an Error saying the device does not support it.
template <class Fn>
Fn require_entry(Napi::Env env, Fn fn, DeviceId dev, const char* op) {
  if (!fn)
    throw Napi::Error::New(env, std::string(op) + " is not supported on " + device_name(dev));
  return fn;
}

}  // namespace mk
