// batchnorm.cpp: bindings of batchNorm(x [R,C], w, b, runningMean, runningVar, training,
// momentum, eps) -> [y, mean, rstd] and batchNormBackward(dy, x, mean, rstd, w, training, dw, db) -> dx.
#include "checks.h"
#include "ops.h"
#include "tensor.h"

namespace mk {

Napi::Value BatchNorm(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "batchNorm");
  Napi::Env env = info.Env();
  NativeTensor* x = a.tensor(info[0], "x");
  NativeTensor* w = a.optional(info[1], "weight");
  NativeTensor* b = a.optional(info[2], "bias");
  NativeTensor* rm = a.optional(info[3], "runningMean");
  NativeTensor* rv = a.optional(info[4], "runningVar");
  const bool training = a.boolean(info[5], "training");
  const float momentum = float(a.number(info[6], "momentum", 0, 1));
  const float eps = float(a.number(info[7], "eps", 0, 1));
  MK_RANGE_CHECK(x->shape().size() == 2, "batchNorm: x must be 2-D [R,C], got ", shape_str(x->shape()));
  const int64_t R = x->shape()[0], C = x->shape()[1];
  MK_RANGE_CHECK(!training || R >= 2, "batchNorm: training needs at least 2 rows per channel, got x ", shape_str(x->shape()));
  MK_TYPE_CHECK(training || (rm && rv), "batchNorm: evaluation mode needs runningMean and runningVar");
  MK_TYPE_CHECK(!rm == !rv, "batchNorm: give both runningMean and runningVar, or neither");
  if (w) a.like(w, "weight", x, "x"), a.shape(w, "weight", {C});
  if (b) a.like(b, "bias", x, "x"), a.shape(b, "bias", {C});
  if (rm) a.stats(rm, "runningMean", C, x);
  if (rv) a.stats(rv, "runningVar", C, x);
  if (rm && rv) a.distinct(rm, "runningMean", rv, "runningVar");
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->batchnorm_forward, x->dev());
  Napi::Object y = a.alloc(x->dev(), x->dtype(), x->shape());
  Napi::Object mean = a.alloc(x->dev(), MK_F32, {C}), rstd = a.alloc(x->dev(), MK_F32, {C});
  a.status(fn(d.ctx, ptr(unwrap(y)), f32(unwrap(mean)), f32(unwrap(rstd)), f32(rm), f32(rv), x->data(), ptr(w), ptr(b),
              x->dtype(), R, C, eps, momentum, training),
           x->dev());
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, y), out.Set(1u, mean), out.Set(2u, rstd);
  return out;
}

Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "batchNormBackward");
  Napi::Env env = info.Env();
  NativeTensor* dy = a.tensor(info[0], "dy");
  NativeTensor* x = a.tensor(info[1], "x");
  NativeTensor* mean = a.tensor(info[2], "mean");
  NativeTensor* rstd = a.tensor(info[3], "rstd");
  NativeTensor* w = a.optional(info[4], "weight");
  const bool training = a.boolean(info[5], "training");
  NativeTensor* dw = a.optional(info[6], "dWeight");
  NativeTensor* db = a.optional(info[7], "dBias");
  MK_RANGE_CHECK(x->shape().size() == 2, "batchNormBackward: x must be 2-D [R,C], got ", shape_str(x->shape()));
  const int64_t R = x->shape()[0], C = x->shape()[1];
  a.like(dy, "dy", x, "x"), a.shape(dy, "dy", x->shape());
  a.stats(mean, "mean", C, x), a.stats(rstd, "rstd", C, x);
  if (w) a.like(w, "weight", x, "x"), a.shape(w, "weight", {C});
  if (dw) a.like(dw, "dWeight", x, "x"), a.shape(dw, "dWeight", {C});
  if (db) a.like(db, "dBias", x, "x"), a.shape(db, "dBias", {C});
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->batchnorm_backward, x->dev());
  Napi::Object dx = a.alloc(x->dev(), x->dtype(), x->shape());
  a.status(fn(d.ctx, ptr(unwrap(dx)), ptr(dw), ptr(db), dy->data(), x->data(), f32(mean), f32(rstd), ptr(w), x->dtype(), R, C, training),
           x->dev());
  return dx;
}

}  // namespace mk
