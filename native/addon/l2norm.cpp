// l2norm.cpp: bindings of l2Normalize(x, eps) -> [y, norm] and
// l2NormalizeBackward(dy, y, norm, eps) -> dx, over the last dimension.
#include "ops.h"
#include "tensor.h"

namespace mk {

Napi::Value L2Norm(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "l2Normalize");
  NativeTensor* x = a.tensor(info[0], "x");
  const float eps = float(a.number(info[1], "eps", 1e-30, 1));
  auto [R, D] = a.rows(x, "x");
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->l2norm_forward, x->dev());
  Napi::Object y = a.alloc(x->dev(), x->dtype(), x->shape()), norm = a.alloc(x->dev(), MK_F32, {R});
  a.status(fn(d.ctx, ptr(unwrap(y)), f32(unwrap(norm)), x->data(), x->dtype(), R, D, eps), x->dev());
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, y), out.Set(1u, norm);
  return out;
}

Napi::Value L2NormBackward(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "l2NormalizeBackward");
  NativeTensor* dy = a.tensor(info[0], "dy");
  NativeTensor* y = a.tensor(info[1], "y");
  NativeTensor* norm = a.tensor(info[2], "norm");
  const float eps = float(a.number(info[3], "eps", 1e-30, 1));
  auto [R, D] = a.rows(y, "y");
  a.like(dy, "dy", y, "y"), a.shape(dy, "dy", y->shape());
  a.stats(norm, "norm", R, y);
  Device& d = device(y->dev());
  auto fn = a.entry(d.backend->l2norm_backward, y->dev());
  Napi::Object dx = a.alloc(y->dev(), y->dtype(), y->shape());
  a.status(fn(d.ctx, ptr(unwrap(dx)), dy->data(), y->data(), f32(norm), y->dtype(), R, D, eps), y->dev());
  return dx;
}

}  // namespace mk
