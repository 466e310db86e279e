// nt_xent.cpp: binding of ntXent(z0, z1, temperature) -> [loss, dZ0, dZ1], loss an f32 [1] on the inputs' device.
#include "checks.h"
#include "ops.h"
#include "tensor.h"

namespace mk {

Napi::Value NtXent(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "ntXent");
  Napi::Env env = info.Env();
  NativeTensor* z0 = a.tensor(info[0], "z0");
  NativeTensor* z1 = a.tensor(info[1], "z1");
  const float t = float(a.number(info[2], "temperature", 1e-4, 1e4));
  MK_RANGE_CHECK(z0->shape().size() == 2, "ntXent: z0 must be [B,E], got ", shape_str(z0->shape()));
  a.like(z1, "z1", z0, "z0"), a.shape(z1, "z1", z0->shape());
  const int64_t B = z0->shape()[0], E = z0->shape()[1];
  Device& d = device(z0->dev());
  auto fn = a.entry(d.backend->nt_xent, z0->dev());
  Napi::Object dz0 = a.alloc(z0->dev(), z0->dtype(), {B, E}), dz1 = a.alloc(z0->dev(), z0->dtype(), {B, E});
  Napi::Object loss = a.alloc(z0->dev(), MK_F32, {1});
  a.status(fn(d.ctx, f32(unwrap(loss)), ptr(unwrap(dz0)), ptr(unwrap(dz1)), z0->data(), z1->data(), z0->dtype(), B, E, t), z0->dev());
  Napi::Array r = Napi::Array::New(env, 3);
  r.Set(0u, loss), r.Set(1u, dz0), r.Set(2u, dz1);
  return r;
}

}  // namespace mk
