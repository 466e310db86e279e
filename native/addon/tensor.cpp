// tensor.cpp: see tensor.h.
#include "tensor.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>

#include "checks.h"

namespace mk {

namespace {
constexpr int kMaxRank = 8;
constexpr int64_t kMaxDim = (int64_t(1) << 31) - 1;
constexpr int64_t kMaxNumel = int64_t(1) << 40;

// CPU memory is reported to V8 as the change of the backend's footprint since the last report
// (any thread, any env): cached blocks re-used by a training step then cost V8 nothing. CUDA
// memory is reported per tensor, so that forgotten GPU tensors still prompt a collection.
std::atomic<int64_t> g_reported{0};

void report_cpu_memory(napi_env env) {
  const int64_t now = mk_cpu_footprint();
  const int64_t delta = now - g_reported.exchange(now);
  if (delta != 0) Napi::MemoryManagement::AdjustExternalMemory(Napi::Env(env), delta);
}

// Marks the objects NativeTensor constructs. Checking the tag replaces InstanceOf, which walked
// the prototype chain (one tensor argument: 565 → 380 ns), and it cannot be forged from JS:
// an object made with Object.create(NativeTensor.prototype) passed InstanceOf but wraps nothing.
const napi_type_tag kTensorTag = {0x6d616d616b697400ull, 0x74656e736f720001ull};

struct AddonData {
  Napi::FunctionReference tensor_ctor;
};

bool parse_device(const std::string& s, DeviceId* out) {
  if (s == "cpu") return *out = kCpu, true;
  if (s == "cuda") return *out = kCuda, true;
  return false;
}

}  // namespace

bool parse_dtype(const std::string& s, mk_dtype* out) {
  if (s == "f32") return *out = MK_F32, true;
  if (s == "bf16") return *out = MK_BF16, true;
  if (s == "f16") return *out = MK_F16, true;
  return false;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string describe_value(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return v.As<Napi::Boolean>().Value() ? "true" : "false";
    case napi_number: return cat("number ", v.As<Napi::Number>().DoubleValue());
    case napi_string: return "a string";
    case napi_symbol: return "a symbol";
    case napi_function: return "a function";
    case napi_bigint: return "a bigint";
    default: break;
  }
  if (v.IsTypedArray()) {
    switch (v.As<Napi::TypedArray>().TypedArrayType()) {
      case napi_float32_array: return "a Float32Array";
      case napi_float64_array: return "a Float64Array";
      case napi_int32_array: return "an Int32Array";
      default: return "a typed array of another type";
    }
  }
  if (v.IsArray()) return "an array";
  return "an object";
}

namespace {
// Numbers in messages as JS writes them (NaN, Infinity), not as iostreams do.
std::string js_num(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  return cat(x);
}
}  // namespace

const char* dtype_name(mk_dtype d) {
  switch (d) {
    case MK_BF16: return "bf16";
    case MK_F16: return "f16";
    default: return "f32";
  }
}

size_t dtype_size(mk_dtype d) { return d == MK_F32 ? 4 : 2; }

Napi::Function NativeTensor::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(
      env, "NativeTensor",
      {InstanceMethod<&NativeTensor::Dispose>("dispose"),
       InstanceMethod<&NativeTensor::ToArray>("toArray"),
       InstanceAccessor<&NativeTensor::GetShape>("shape"),
       InstanceAccessor<&NativeTensor::GetDtype>("dtype"),
       InstanceAccessor<&NativeTensor::GetDevice>("device"),
       InstanceAccessor<&NativeTensor::GetDisposed>("disposed")});
  auto* data = new AddonData();
  data->tensor_ctor = Napi::Persistent(ctor);
  env.SetInstanceData<AddonData>(data);
  return ctor;
}

NativeTensor::NativeTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeTensor>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  const Napi::Value data = info[0], shape = info[1], dev_arg = info[2], dtype_arg = info[3],
                    fill = info[4];
  MK_TYPE_CHECK(info.IsConstructCall(), "Tensor: use Tensor.fromArray or Tensor.empty");
  info.This().As<Napi::Object>().TypeTag(&kTensorTag);
  MK_TYPE_CHECK(shape.IsArray(), "Tensor: shape must be an array of positive integers, got ",
                describe_value(shape));
  const Napi::Array sa = shape.As<Napi::Array>();
  MK_RANGE_CHECK(sa.Length() <= kMaxRank, "Tensor: shape has rank ", sa.Length(),
                 ", at most ", kMaxRank, " is supported");
  numel_ = 1;
  for (uint32_t i = 0; i < sa.Length(); ++i) {
    const Napi::Value d = sa.Get(i);
    MK_TYPE_CHECK(d.IsNumber(), "Tensor: shape[", i, "] must be a number, got ",
                  describe_value(d));
    const double x = d.As<Napi::Number>().DoubleValue();
    MK_RANGE_CHECK(std::isfinite(x) && x == std::floor(x) && x >= 1 && x <= double(kMaxDim),
                   "Tensor: shape[", i, "] must be an integer in [1, ", kMaxDim, "], got ", js_num(x));
    shape_.push_back(int64_t(x));
    numel_ *= int64_t(x);
    MK_RANGE_CHECK(numel_ <= kMaxNumel, "Tensor: shape ", shape_str(shape_),
                   " has more than 2^40 elements");
  }
  MK_TYPE_CHECK(dev_arg.IsString(), "Tensor: device must be 'cpu' or 'cuda', got ",
                describe_value(dev_arg));
  MK_TYPE_CHECK(parse_device(dev_arg.As<Napi::String>().Utf8Value(), &dev_),
                "Tensor: device must be 'cpu' or 'cuda', got '",
                dev_arg.As<Napi::String>().Utf8Value(), "'");
  MK_TYPE_CHECK(dtype_arg.IsString(), "Tensor: dtype must be 'f32', 'bf16' or 'f16', got ",
                describe_value(dtype_arg));
  MK_TYPE_CHECK(parse_dtype(dtype_arg.As<Napi::String>().Utf8Value(), &dtype_),
                "Tensor: dtype must be 'f32', 'bf16' or 'f16', got '",
                dtype_arg.As<Napi::String>().Utf8Value(), "'");
  if (dev_ == kCuda && !device_available(kCuda))
    throw Napi::Error::New(env, "Tensor: device 'cuda' is not available (" + cuda_status() + ")");
  MK_TYPE_CHECK(dev_ == kCuda || dtype_ == MK_F32, "Tensor: dtype '", dtype_name(dtype_),
                "' is only stored on 'cuda'; the CPU backend stores 'f32'");
  // A view: the same memory as a live tensor, from element `offset` on; keeps it alive.
  const Napi::Value base = info[5];
  if (!base.IsUndefined()) {
    MK_TYPE_CHECK(base.IsObject() && base.As<Napi::Object>().CheckTypeTag(&kTensorTag),
                  "Tensor: view: the base must be a Tensor, got ", describe_value(base));
    NativeTensor* b = NativeTensor::Unwrap(base.As<Napi::Object>());
    MK_TYPE_CHECK(!b->disposed(), "Tensor: view: the base tensor is disposed");
    MK_TYPE_CHECK(b->dev_ == dev_ && b->dtype_ == dtype_, "Tensor: view: device and dtype must be the base's (",
                  device_name(b->dev_), ", ", dtype_name(b->dtype_), ")");
    const Napi::Value off = info[6];
    const double o = off.IsNumber() ? off.As<Napi::Number>().DoubleValue() : -1;
    MK_RANGE_CHECK(std::isfinite(o) && o == std::floor(o) && o >= 0 && o + double(numel_) <= double(b->numel_),
                   "Tensor: view: offset ", off.IsNumber() ? js_num(o) : describe_value(off), " with ", numel_,
                   " elements does not fit in the base's ", b->numel_);
    data_ = static_cast<char*>(b->data_) + size_t(o) * dtype_size(dtype_);
    bytes_ = size_t(numel_) * dtype_size(dtype_);
    base_ = Napi::Persistent(base.As<Napi::Object>());
    base_ptr_ = b;
    ++b->views_;
    return;
  }
  const bool has_data = !data.IsNull() && !data.IsUndefined();
  if (has_data) {
    MK_TYPE_CHECK(data.IsTypedArray() &&
                      data.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array,
                  "Tensor: data must be a Float32Array, got ", describe_value(data));
    MK_RANGE_CHECK(int64_t(data.As<Napi::Float32Array>().ElementLength()) == numel_,
                   "Tensor: data has ", data.As<Napi::Float32Array>().ElementLength(),
                   " elements but shape ", shape_str(shape_), " needs ", numel_);
  }
  const bool has_fill = !fill.IsUndefined();
  if (has_fill) MK_TYPE_CHECK(fill.IsNumber(), "Tensor: fill must be a number, got ", describe_value(fill));

  Device& d = device(dev_);
  bytes_ = size_t(numel_) * dtype_size(dtype_);
  void* p = nullptr;
  if (d.backend->alloc(d.ctx, &p, bytes_) != MK_OK)
    throw Napi::RangeError::New(env, cat("Tensor: cannot allocate ", bytes_, " bytes on ",
                                         device_name(dev_), ": ", d.backend->last_error(d.ctx)));
  data_ = p;
  if (dev_ == kCpu) report_cpu_memory(env);
  else Napi::MemoryManagement::AdjustExternalMemory(env, int64_t(bytes_));
  mk_status s = MK_OK;
  if (has_data) {
    s = d.backend->upload(d.ctx, data_, dtype_, data.As<Napi::Float32Array>().Data(), size_t(numel_));
  } else if (has_fill) {
    // On the device: no host buffer, no transfer.
    s = d.backend->fill(d.ctx, data_, dtype_, numel_, fill.As<Napi::Number>().FloatValue());
  }
  if (s != MK_OK) {
    Free();
    check_status(env, s, dev_, "Tensor");
  }
}

NativeTensor::~NativeTensor() { Free(); }

void NativeTensor::Free() {
  if (!data_) return;
  if (base_ptr_) {  // a view owns no memory
    data_ = nullptr;
    --base_ptr_->views_;
    base_ptr_ = nullptr;
    base_.Reset();
    return;
  }
  Device& d = device(dev_);
  d.backend->free(d.ctx, data_);
  data_ = nullptr;
  if (!env_) return;
  if (dev_ == kCpu) report_cpu_memory(env_);
  else Napi::MemoryManagement::AdjustExternalMemory(Napi::Env(env_), -int64_t(bytes_));
}

Napi::Object NativeTensor::Create(Napi::Env env, DeviceId dev, mk_dtype dtype,
                                  const std::vector<int64_t>& shape, const double* fill) {
  Napi::Array sa = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) sa.Set(uint32_t(i), Napi::Number::New(env, double(shape[i])));
  auto* data = env.GetInstanceData<AddonData>();
  return data->tensor_ctor.New({env.Null(), sa, Napi::String::New(env, device_name(dev)),
                                Napi::String::New(env, dtype_name(dtype)),
                                fill ? Napi::Value(Napi::Number::New(env, *fill)) : env.Undefined()});
}

Napi::Value NativeTensor::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MK_TYPE_CHECK(views_ == 0, "Tensor: cannot dispose a tensor while ", views_,
                " view(s) of it are alive; dispose the views first");
  Free();
  return info.Env().Undefined();
}

Napi::Value NativeTensor::ToArray(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MK_TYPE_CHECK(!disposed(), "toArray: the tensor is disposed");
  Napi::Float32Array out = Napi::Float32Array::New(env, size_t(numel_));
  Device& d = device(dev_);
  check_status(env, d.backend->download(d.ctx, out.Data(), data_, dtype_, size_t(numel_)), dev_,
               "toArray");
  return out;
}

Napi::Value NativeTensor::GetShape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array sa = Napi::Array::New(env, shape_.size());
  for (size_t i = 0; i < shape_.size(); ++i) sa.Set(uint32_t(i), Napi::Number::New(env, double(shape_[i])));
  return sa;
}

Napi::Value NativeTensor::GetDtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dtype_name(dtype_));
}

Napi::Value NativeTensor::GetDevice(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), device_name(dev_));
}

Napi::Value NativeTensor::GetDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), disposed());
}

NativeTensor* tensor_arg(Napi::Env env, const Napi::Value& v, const char* op, const char* name) {
  MK_TYPE_CHECK(v.IsObject() && v.As<Napi::Object>().CheckTypeTag(&kTensorTag), op, ": ", name,
                " must be a Tensor, got ", describe_value(v));
  NativeTensor* t = NativeTensor::Unwrap(v.As<Napi::Object>());
  MK_TYPE_CHECK(!t->disposed(), op, ": ", name, " is disposed");
  return t;
}

NativeTensor* optional_tensor_arg(Napi::Env env, const Napi::Value& v, const char* op,
                                  const char* name) {
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  return tensor_arg(env, v, op, name);
}

bool bool_arg(Napi::Env env, const Napi::Value& v, const char* op, const char* name) {
  if (v.IsUndefined()) return false;
  MK_TYPE_CHECK(v.IsBoolean(), op, ": ", name, " must be a boolean, got ", describe_value(v));
  return v.As<Napi::Boolean>().Value();
}

double Args::number(const Napi::Value& v, const char* name, double lo, double hi) const {
  Napi::Env env = env_;
  MK_TYPE_CHECK(v.IsNumber(), op_, ": ", name, " must be a number, got ", describe_value(v));
  const double x = v.As<Napi::Number>().DoubleValue();
  MK_RANGE_CHECK(x >= lo && x <= hi, op_, ": ", name, " must be in [", lo, ", ", hi, "], got ", js_num(x));
  return x;
}

int64_t Args::integer(const Napi::Value& v, const char* name, int64_t lo, int64_t hi) const {
  Napi::Env env = env_;
  MK_TYPE_CHECK(v.IsNumber(), op_, ": ", name, " must be an integer, got ", describe_value(v));
  const double x = v.As<Napi::Number>().DoubleValue();
  MK_RANGE_CHECK(std::isfinite(x) && x == std::floor(x) && x >= double(lo) && x <= double(hi), op_, ": ", name,
                 " must be an integer in [", lo, ", ", hi, "], got ", js_num(x));
  return int64_t(x);
}

const int32_t* Args::int32s(const Napi::Value& v, const char* name, int64_t n, int32_t lo, int32_t hi,
                            bool allow_ignore) const {
  Napi::Env env = env_;
  MK_TYPE_CHECK(v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array, op_, ": ", name,
                " must be an Int32Array, got ", describe_value(v));
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  MK_RANGE_CHECK(int64_t(a.ElementLength()) == n, op_, ": ", name, " must have ", n, " elements, got ", a.ElementLength());
  const int32_t* p = a.Data();
  for (int64_t i = 0; i < n; ++i) {
    if (allow_ignore && p[i] < 0) continue;
    MK_RANGE_CHECK(p[i] >= lo && p[i] <= hi, op_, ": ", name, "[", i, "] = ", p[i], " is outside [", lo, ", ", hi, "]",
                   allow_ignore ? " (negative: ignored)" : "");
  }
  return p;
}

Args::Scalar Args::scalar(const Napi::Value& v, const char* name, double lo, double hi, DeviceId dev) const {
  Napi::Env env = env_;
  if (v.IsNumber()) {
    const double x = number(v, name, lo, hi);
    Napi::Object t = NativeTensor::Create(env_, dev, MK_F32, {1}, &x);
    return {t, static_cast<const float*>(unwrap(t)->data())};
  }
  MK_TYPE_CHECK(v.IsObject(), op_, ": ", name, " must be a number or an f32 [1] tensor, got ", describe_value(v));
  NativeTensor* t = tensor(v, name);
  MK_TYPE_CHECK(t->dtype() == MK_F32 && t->numel() == 1, op_, ": ", name, " must be a number or an f32 [1] tensor, got ",
                dtype_name(t->dtype()), " ", shape_str(t->shape()));
  MK_TYPE_CHECK(t->dev() == dev, op_, ": ", name, " is on ", device_name(t->dev()), " but the data is on ", device_name(dev));
  return {v.As<Napi::Object>(), static_cast<const float*>(t->data())};
}

void Args::same_device(const NativeTensor* t, const char* name, const NativeTensor* ref, const char* ref_name) const {
  Napi::Env env = env_;
  MK_TYPE_CHECK(t->dev() == ref->dev(), op_, ": ", name, " is on ", device_name(t->dev()), " but ", ref_name, " is on ",
                device_name(ref->dev()));
}

void Args::like(const NativeTensor* t, const char* name, const NativeTensor* ref, const char* ref_name) const {
  Napi::Env env = env_;
  same_device(t, name, ref, ref_name);
  MK_TYPE_CHECK(t->dtype() == ref->dtype(), op_, ": ", name, " has dtype ", dtype_name(t->dtype()), " but ", ref_name,
                " has ", dtype_name(ref->dtype()));
}

void Args::shape(const NativeTensor* t, const char* name, const std::vector<int64_t>& want) const {
  Napi::Env env = env_;
  MK_RANGE_CHECK(t->shape() == want, op_, ": ", name, " must have shape ", shape_str(want), ", got ", shape_str(t->shape()));
}

void Args::stats(const NativeTensor* t, const char* name, int64_t n, const NativeTensor* ref) const {
  Napi::Env env = env_;
  shape(t, name, {n});
  MK_TYPE_CHECK(t->dtype() == MK_F32, op_, ": ", name, " must be f32 (saved statistics are f32), got ", dtype_name(t->dtype()));
  MK_TYPE_CHECK(t->dev() == ref->dev(), op_, ": ", name, " is on ", device_name(t->dev()), " but the data is on ",
                device_name(ref->dev()));
}

std::pair<int64_t, int64_t> Args::rows(const NativeTensor* t, const char* name) const {
  Napi::Env env = env_;
  MK_RANGE_CHECK(!t->shape().empty(), op_, ": ", name, " must have rank ≥ 1, got a scalar");
  const int64_t D = t->shape().back();
  return {t->numel() / D, D};
}

void Args::distinct(const NativeTensor* out, const char* out_name, const NativeTensor* in, const char* in_name) const {
  Napi::Env env = env_;
  if (!in) return;
  // Views make partial overlap possible: compare the byte ranges, not just the starts.
  const char *o0 = static_cast<const char*>(out->data()), *o1 = o0 + out->numel() * dtype_size(out->dtype());
  const char *i0 = static_cast<const char*>(in->data()), *i1 = i0 + in->numel() * dtype_size(in->dtype());
  MK_RANGE_CHECK(o1 <= i0 || i1 <= o0, op_, ": ", out_name, " must not be the same tensor as ", in_name,
                 o0 == i0 ? "" : " (nor overlap it in memory)");
}

void check_status(Napi::Env env, mk_status s, DeviceId dev, const char* op) {
  if (s == MK_OK) return;
  Device& d = device(dev);
  const std::string msg = cat(op, " failed on ", device_name(dev), ": ", d.backend->last_error(d.ctx));
  if (s == MK_ERR_OOM) throw Napi::RangeError::New(env, msg);
  if (s == MK_ERR_INVALID || s == MK_ERR_UNSUPPORTED) throw Napi::TypeError::New(env, msg);
  throw Napi::Error::New(env, msg);
}

}  // namespace mk
