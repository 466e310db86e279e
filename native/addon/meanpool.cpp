// meanpool.cpp: bindings of meanPool(x [B,L,D]) -> [B,D] and meanPoolBackward(dy [B,D], L) -> [B,L,D].
#include "checks.h"
#include "ops.h"
#include "tensor.h"

namespace mk {

Napi::Value MeanPool(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "meanPool");
  NativeTensor* x = a.tensor(info[0], "x");
  Napi::Env env = info.Env();
  MK_RANGE_CHECK(x->shape().size() == 3, "meanPool: x must be 3-D [B,L,D], got ", shape_str(x->shape()));
  const int64_t B = x->shape()[0], L = x->shape()[1], D = x->shape()[2];
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->meanpool_forward, x->dev());
  Napi::Object y = a.alloc(x->dev(), x->dtype(), {B, D});
  a.status(fn(d.ctx, ptr(unwrap(y)), x->data(), x->dtype(), B, L, D), x->dev());
  return y;
}

Napi::Value MeanPoolBackward(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "meanPoolBackward");
  NativeTensor* dy = a.tensor(info[0], "dy");
  Napi::Env env = info.Env();
  MK_RANGE_CHECK(dy->shape().size() == 2, "meanPoolBackward: dy must be 2-D [B,D], got ", shape_str(dy->shape()));
  const int64_t L = a.integer(info[1], "L", 1, (int64_t(1) << 31) - 1);
  const int64_t B = dy->shape()[0], D = dy->shape()[1];
  Device& d = device(dy->dev());
  auto fn = a.entry(d.backend->meanpool_backward, dy->dev());
  Napi::Object dx = a.alloc(dy->dev(), dy->dtype(), {B, L, D});
  a.status(fn(d.ctx, ptr(unwrap(dx)), dy->data(), dy->dtype(), B, L, D), dy->dev());
  return dx;
}

}  // namespace mk
