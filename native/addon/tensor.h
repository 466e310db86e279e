// tensor.h: NativeTensor, the storage behind lib/tensor.ts: shape, dtype, device and one
// allocation. dispose() frees at once; the GC finalizer frees what was forgotten.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "devices.h"
#include "mamakit.h"

namespace mk {

const char* dtype_name(mk_dtype d);
// "f32", "bf16", "f16" → *out; false for anything else.
bool parse_dtype(const std::string& s, mk_dtype* out);
size_t dtype_size(mk_dtype d);

class NativeTensor : public Napi::ObjectWrap<NativeTensor> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new NativeTensor(data: Float32Array | null, shape: number[], device: string, dtype: string,
  //                  fill?: number)  — data null: uninitialised, or `fill` when given.
  explicit NativeTensor(const Napi::CallbackInfo& info);
  ~NativeTensor() override;

  // A tensor of the given shape on (device, dtype), filled with *fill, or contents
  // unspecified when fill is null.
  static Napi::Object Create(Napi::Env env, DeviceId dev, mk_dtype dtype,
                             const std::vector<int64_t>& shape, const double* fill = nullptr);

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
  // A view holds its base alive and counts itself there; a base with views cannot be disposed.
  Napi::ObjectReference base_;
  NativeTensor* base_ptr_ = nullptr;
  int64_t views_ = 0;
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

// Argument checks shared by the kernel bindings, each failure naming the op and argument.
class Args {
 public:
  Args(Napi::Env env, const char* op) : env_(env), op_(op) {}
  Napi::Env env() const { return env_; }
  const char* op() const { return op_; }
  NativeTensor* tensor(const Napi::Value& v, const char* name) const { return tensor_arg(env_, v, op_, name); }
  NativeTensor* optional(const Napi::Value& v, const char* name) const { return optional_tensor_arg(env_, v, op_, name); }
  bool boolean(const Napi::Value& v, const char* name) const { return bool_arg(env_, v, op_, name); }
  // A finite number in [lo, hi].
  double number(const Napi::Value& v, const char* name, double lo, double hi) const;
  // An integer in [lo, hi] (exactly representable: |x| ≤ 2^53).
  int64_t integer(const Napi::Value& v, const char* name, int64_t lo, int64_t hi) const;
  // An Int32Array of length n whose values are in [lo, hi] (values < 0 also allowed when
  // allow_ignore); the pointer stays valid while the JS array is alive (during the call).
  const int32_t* int32s(const Napi::Value& v, const char* name, int64_t n, int32_t lo, int32_t hi,
                        bool allow_ignore = false) const;
  // A scalar the kernel reads in device memory: a number in [lo, hi] (put in a new f32 [1] on
  // dev) or an f32 [1] tensor on dev, read there as it is (e.g. a learnable log-scale).
  struct Scalar {
    Napi::Object holder;  // keeps the tensor alive for the call
    const float* ptr;
  };
  Scalar scalar(const Napi::Value& v, const char* name, double lo, double hi, DeviceId dev) const;
  // t is on the same device as ref.
  void same_device(const NativeTensor* t, const char* name, const NativeTensor* ref, const char* ref_name) const;
  // t is on the same device and has the same dtype as ref.
  void like(const NativeTensor* t, const char* name, const NativeTensor* ref, const char* ref_name) const;
  void shape(const NativeTensor* t, const char* name, const std::vector<int64_t>& want) const;
  // A saved statistic (mean, rstd, lse, norm, running stats): shape [n], f32, on ref's device.
  void stats(const NativeTensor* t, const char* name, int64_t n, const NativeTensor* ref) const;
  // t has rank ≥ 1; returns {rows, last dim}.
  std::pair<int64_t, int64_t> rows(const NativeTensor* t, const char* name) const;
  // out must not share memory with in.
  void distinct(const NativeTensor* out, const char* out_name, const NativeTensor* in, const char* in_name) const;
  Napi::Object alloc(DeviceId dev, mk_dtype dtype, const std::vector<int64_t>& shape) const {
    return NativeTensor::Create(env_, dev, dtype, shape);
  }
  Napi::Object zeros(DeviceId dev, mk_dtype dtype, const std::vector<int64_t>& shape) const {
    const double zero = 0;
    return NativeTensor::Create(env_, dev, dtype, shape, &zero);
  }
  template <class Fn>
  Fn entry(Fn fn, DeviceId dev) const { return require_entry(env_, fn, dev, op_); }
  void status(mk_status s, DeviceId dev) const { check_status(env_, s, dev, op_); }

 private:
  Napi::Env env_;
  const char* op_;
};

inline NativeTensor* unwrap(const Napi::Object& o) { return NativeTensor::Unwrap(o); }
inline float* f32(const NativeTensor* t) { return t ? static_cast<float*>(t->data()) : nullptr; }
inline void* ptr(const NativeTensor* t) { return t ? t->data() : nullptr; }

}  // namespace mk
