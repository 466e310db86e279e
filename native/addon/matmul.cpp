// matmul.cpp: binding of matmul(a, b, bias, out, transA, transB, accumulate, outDtype) -> out.
// a, b and bias share a dtype; out (and outDtype) is theirs, or f32 when theirs is bf16/f16.
#include "checks.h"
#include "ops.h"
#include "tensor.h"

namespace mk {

Napi::Value Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NativeTensor* a = tensor_arg(env, info[0], "matmul", "a");
  NativeTensor* b = tensor_arg(env, info[1], "matmul", "b");
  NativeTensor* bias = optional_tensor_arg(env, info[2], "matmul", "bias");
  NativeTensor* out = optional_tensor_arg(env, info[3], "matmul", "out");
  const bool ta = bool_arg(env, info[4], "matmul", "transA");
  const bool tb = bool_arg(env, info[5], "matmul", "transB");
  const bool acc = bool_arg(env, info[6], "matmul", "accumulate");
  mk_dtype c_dtype = out ? out->dtype() : a->dtype();
  if (!info[7].IsUndefined() && !info[7].IsNull()) {
    MK_TYPE_CHECK(info[7].IsString() && parse_dtype(info[7].As<Napi::String>().Utf8Value(), &c_dtype),
                  "matmul: outDtype must be 'f32', 'bf16' or 'f16', got ", describe_value(info[7]));
    MK_TYPE_CHECK(!out || out->dtype() == c_dtype, "matmul: outDtype is ", dtype_name(c_dtype), " but out has dtype ", dtype_name(out->dtype()));
  }
  MK_RANGE_CHECK(a->shape().size() == 2, "matmul: a must be 2-D, got shape ", shape_str(a->shape()));
  MK_RANGE_CHECK(b->shape().size() == 2, "matmul: b must be 2-D, got shape ", shape_str(b->shape()));
  MK_TYPE_CHECK(b->dev() == a->dev(), "matmul: b is on ", device_name(b->dev()), " but a is on ", device_name(a->dev()));
  MK_TYPE_CHECK(b->dtype() == a->dtype(), "matmul: b has dtype ", dtype_name(b->dtype()), " but a has ", dtype_name(a->dtype()));
  const int64_t M = ta ? a->shape()[1] : a->shape()[0];
  const int64_t K = ta ? a->shape()[0] : a->shape()[1];
  const int64_t Kb = tb ? b->shape()[1] : b->shape()[0];
  const int64_t N = tb ? b->shape()[0] : b->shape()[1];
  MK_RANGE_CHECK(Kb == K, "matmul: b has shape ", shape_str(b->shape()), " but a", ta ? "ᵀ" : "",
                 " has K = ", K, ", so b must be ", tb ? cat("[N,", K, "] (transB)") : cat("[", K, ",N]"));
  if (bias) {
    MK_RANGE_CHECK(bias->shape() == std::vector<int64_t>{N}, "matmul: bias must have shape [", N, "], got ", shape_str(bias->shape()));
    MK_TYPE_CHECK(bias->dev() == a->dev(), "matmul: bias is on ", device_name(bias->dev()), " but a is on ", device_name(a->dev()));
    MK_TYPE_CHECK(bias->dtype() == a->dtype(), "matmul: bias has dtype ", dtype_name(bias->dtype()), " but a has ", dtype_name(a->dtype()));
  }
  MK_TYPE_CHECK(!acc || out, "matmul: accumulate needs an out tensor to accumulate into");
  if (out) {
    MK_RANGE_CHECK(out->shape() == std::vector<int64_t>({M, N}), "matmul: out must have shape ", shape_str({M, N}), ", got ", shape_str(out->shape()));
    MK_TYPE_CHECK(out->dev() == a->dev(), "matmul: out is on ", device_name(out->dev()), " but a is on ", device_name(a->dev()));
    MK_RANGE_CHECK(out->data() != a->data() && out->data() != b->data() && (!bias || out->data() != bias->data()),
                   "matmul: out must not be the same tensor as a, b or bias");
  }
  MK_TYPE_CHECK(c_dtype == a->dtype() || (c_dtype == MK_F32 && a->dtype() != MK_F32), "matmul: the output (",
                out ? "out" : "outDtype", ") is ", dtype_name(c_dtype), " but a and b are ", dtype_name(a->dtype()),
                "; it must be ", dtype_name(a->dtype()), a->dtype() != MK_F32 ? " or f32" : "");
  const DeviceId dev = a->dev();
  Device& d = device(dev);
  auto fn = require_entry(env, d.backend->matmul, dev, "matmul");
  Napi::Value result = out ? info[3] : Napi::Value(NativeTensor::Create(env, dev, c_dtype, {M, N}));
  NativeTensor* c = out ? out : NativeTensor::Unwrap(result.As<Napi::Object>());
  check_status(env, fn(d.ctx, c->data(), a->data(), b->data(), bias ? bias->data() : nullptr, a->dtype(), c_dtype, M, N, K, ta, tb, acc), dev, "matmul");
  return result;
}

}  // namespace mk
