// relu.cpp: bindings of relu(x) -> y and reluBackward(dy, x) -> dx.
#include "ops.h"
#include "tensor.h"

namespace mk {

Napi::Value Relu(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "relu");
  NativeTensor* x = a.tensor(info[0], "x");
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->relu_forward, x->dev());
  Napi::Object y = a.alloc(x->dev(), x->dtype(), x->shape());
  a.status(fn(d.ctx, ptr(unwrap(y)), x->data(), x->dtype(), x->numel()), x->dev());
  return y;
}

Napi::Value ReluBackward(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "reluBackward");
  NativeTensor* dy = a.tensor(info[0], "dy");
  NativeTensor* x = a.tensor(info[1], "x");
  a.like(dy, "dy", x, "x"), a.shape(dy, "dy", x->shape());
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->relu_backward, x->dev());
  Napi::Object dx = a.alloc(x->dev(), x->dtype(), x->shape());
  a.status(fn(d.ctx, ptr(unwrap(dx)), dy->data(), x->data(), x->dtype(), x->numel()), x->dev());
  return dx;
}

}  // namespace mk
