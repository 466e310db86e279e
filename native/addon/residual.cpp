// residual.cpp: bindings of residual(x, h, gamma, alpha) -> x + s⊙h and
// residualBackward(dy, h, gamma, alpha, dGamma) -> dh (dGamma accumulated when given).
#include "ops.h"
#include "tensor.h"

namespace mk {

Napi::Value Residual(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "residual");
  NativeTensor* x = a.tensor(info[0], "x");
  NativeTensor* h = a.tensor(info[1], "h");
  NativeTensor* gamma = a.optional(info[2], "gamma");
  const float alpha = float(a.number(info[3], "alpha", -3.4e38, 3.4e38));
  auto [R, D] = a.rows(x, "x");
  a.like(h, "h", x, "x"), a.shape(h, "h", x->shape());
  if (gamma) a.like(gamma, "gamma", x, "x"), a.shape(gamma, "gamma", {D});
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->residual_forward, x->dev());
  Napi::Object out = a.alloc(x->dev(), x->dtype(), x->shape());
  a.status(fn(d.ctx, ptr(unwrap(out)), x->data(), h->data(), ptr(gamma), alpha, x->dtype(), R, D), x->dev());
  return out;
}

Napi::Value ResidualBackward(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "residualBackward");
  NativeTensor* dy = a.tensor(info[0], "dy");
  NativeTensor* h = a.tensor(info[1], "h");
  NativeTensor* gamma = a.optional(info[2], "gamma");
  const float alpha = float(a.number(info[3], "alpha", -3.4e38, 3.4e38));
  NativeTensor* dgamma = a.optional(info[4], "dGamma");
  auto [R, D] = a.rows(h, "h");
  a.like(dy, "dy", h, "h"), a.shape(dy, "dy", h->shape());
  if (gamma) a.like(gamma, "gamma", h, "h"), a.shape(gamma, "gamma", {D});
  if (dgamma) a.like(dgamma, "dGamma", h, "h"), a.shape(dgamma, "dGamma", {D});
  Device& d = device(h->dev());
  auto fn = a.entry(d.backend->residual_backward, h->dev());
  Napi::Object dh = a.alloc(h->dev(), h->dtype(), h->shape());
  a.status(fn(d.ctx, ptr(unwrap(dh)), ptr(dgamma), dy->data(), h->data(), ptr(gamma), alpha, h->dtype(), R, D), h->dev());
  return dh;
}

}  // namespace mk
