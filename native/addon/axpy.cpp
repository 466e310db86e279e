// axpy.cpp: bindings of axpy(y, x, alpha) -> y (y += alpha·x in place) and scale(x, alpha) -> x
// (x *= alpha in place; alpha a number or an f32 [1] tensor on x's device).
#include "checks.h"
#include "ops.h"
#include "tensor.h"

namespace mk {

Napi::Value Axpy(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "axpy");
  NativeTensor* y = a.tensor(info[0], "y");
  NativeTensor* x = a.tensor(info[1], "x");
  a.same_device(x, "x", y, "y"), a.shape(x, "x", y->shape()), a.distinct(y, "y", x, "x");
  Napi::Env env = info.Env();
  MK_TYPE_CHECK(x->dtype() == y->dtype() || y->dtype() == MK_F32, "axpy: x has dtype ", dtype_name(x->dtype()), " but y has ",
                dtype_name(y->dtype()), " (a 16-bit x adds into an f32 y, nothing else mixes)");
  const float alpha = float(a.number(info[2], "alpha", -3.4e38, 3.4e38));
  Device& d = device(y->dev());
  auto fn = a.entry(d.backend->axpy, y->dev());
  a.status(fn(d.ctx, y->data(), y->dtype(), x->data(), x->dtype(), y->numel(), alpha), y->dev());
  return info[0];
}

Napi::Value Scale(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "scale");
  NativeTensor* x = a.tensor(info[0], "x");
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->scale, x->dev());
  if (info[1].IsNumber()) {
    const float alpha = float(a.number(info[1], "alpha", -3.4e38, 3.4e38));
    a.status(fn(d.ctx, x->data(), x->dtype(), x->numel(), alpha, nullptr), x->dev());
  } else {
    const Args::Scalar by = a.scalar(info[1], "alpha", 0, 0, x->dev());
    a.status(fn(d.ctx, x->data(), x->dtype(), x->numel(), 1.f, by.ptr), x->dev());
  }
  return info[0];
}

}  // namespace mk
