// axpy.cpp: bindings of axpy(y, x, alpha) -> y (y += alpha·x in place) and scale(x, alpha) -> x
// (x *= alpha in place).
#include "checks.h"
#include "ops.h"
#include "tensor.h"

namespace mk {

Napi::Value Axpy(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "axpy");
  NativeTensor* y = a.tensor(info[0], "y");
  NativeTensor* x = a.tensor(info[1], "x");
  a.like(x, "x", y, "y"), a.shape(x, "x", y->shape()), a.distinct(y, "y", x, "x");
  const float alpha = float(a.number(info[2], "alpha", -3.4e38, 3.4e38));
  Device& d = device(y->dev());
  auto fn = a.entry(d.backend->axpy, y->dev());
  a.status(fn(d.ctx, y->data(), x->data(), y->dtype(), y->numel(), alpha), y->dev());
  return info[0];
}

Napi::Value Scale(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "scale");
  NativeTensor* x = a.tensor(info[0], "x");
  const float alpha = float(a.number(info[1], "alpha", -3.4e38, 3.4e38));
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->scale, x->dev());
  a.status(fn(d.ctx, x->data(), x->dtype(), x->numel(), alpha), x->dev());
  return info[0];
}

}  // namespace mk
