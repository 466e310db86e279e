// layernorm.cpp: bindings of layerNorm(x, w, b, eps) -> [y, mean, rstd] and
// layerNormBackward(dy, x, mean, rstd, w, dw, db) -> dx (dw, db accumulated when given).
#include "ops.h"
#include "tensor.h"

namespace mk {

Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "layerNorm");
  NativeTensor* x = a.tensor(info[0], "x");
  NativeTensor* w = a.optional(info[1], "weight");
  NativeTensor* b = a.optional(info[2], "bias");
  const float eps = float(a.number(info[3], "eps", 0, 1));
  auto [R, D] = a.rows(x, "x");
  if (w) a.like(w, "weight", x, "x"), a.shape(w, "weight", {D});
  if (b) a.like(b, "bias", x, "x"), a.shape(b, "bias", {D});
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->layernorm_forward, x->dev());
  Napi::Object y = a.alloc(x->dev(), x->dtype(), x->shape());
  Napi::Object mean = a.alloc(x->dev(), MK_F32, {R}), rstd = a.alloc(x->dev(), MK_F32, {R});
  a.status(fn(d.ctx, ptr(unwrap(y)), f32(unwrap(mean)), f32(unwrap(rstd)), x->data(), ptr(w), ptr(b), x->dtype(), R, D, eps), x->dev());
  Napi::Array out = Napi::Array::New(info.Env(), 3);
  out.Set(0u, y), out.Set(1u, mean), out.Set(2u, rstd);
  return out;
}

Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "layerNormBackward");
  NativeTensor* dy = a.tensor(info[0], "dy");
  NativeTensor* x = a.tensor(info[1], "x");
  NativeTensor* mean = a.tensor(info[2], "mean");
  NativeTensor* rstd = a.tensor(info[3], "rstd");
  NativeTensor* w = a.optional(info[4], "weight");
  NativeTensor* dw = a.optional(info[5], "dWeight");
  NativeTensor* db = a.optional(info[6], "dBias");
  auto [R, D] = a.rows(x, "x");
  a.like(dy, "dy", x, "x"), a.shape(dy, "dy", x->shape());
  a.stats(mean, "mean", R, x), a.stats(rstd, "rstd", R, x);
  if (w) a.like(w, "weight", x, "x"), a.shape(w, "weight", {D});
  if (dw) a.like(dw, "dWeight", x, "x"), a.shape(dw, "dWeight", {D});
  if (db) a.like(db, "dBias", x, "x"), a.shape(db, "dBias", {D});
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->layernorm_backward, x->dev());
  Napi::Object dx = a.alloc(x->dev(), x->dtype(), x->shape());
  a.status(fn(d.ctx, ptr(unwrap(dx)), ptr(dw), ptr(db), dy->data(), x->data(), f32(mean), f32(rstd), ptr(w), x->dtype(), R, D), x->dev());
  return dx;
}

}  // namespace mk
