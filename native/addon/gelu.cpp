// gelu.cpp: bindings of gelu(x, tanh) -> y and geluBackward(dy, x, tanh) -> dx.
#include "ops.h"
#include "tensor.h"

namespace mk {

Napi::Value Gelu(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "gelu");
  NativeTensor* x = a.tensor(info[0], "x");
  const bool tanh_form = a.boolean(info[1], "tanh");
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->gelu_forward, x->dev());
  Napi::Object y = a.alloc(x->dev(), x->dtype(), x->shape());
  a.status(fn(d.ctx, ptr(unwrap(y)), x->data(), x->dtype(), x->numel(), tanh_form), x->dev());
  return y;
}

Napi::Value GeluBackward(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "geluBackward");
  NativeTensor* dy = a.tensor(info[0], "dy");
  NativeTensor* x = a.tensor(info[1], "x");
  const bool tanh_form = a.boolean(info[2], "tanh");
  a.like(dy, "dy", x, "x"), a.shape(dy, "dy", x->shape());
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->gelu_backward, x->dev());
  Napi::Object dx = a.alloc(x->dev(), x->dtype(), x->shape());
  a.status(fn(d.ctx, ptr(unwrap(dx)), dy->data(), x->data(), x->dtype(), x->numel(), tanh_form), x->dev());
  return dx;
}

}  // namespace mk
