// dropout.cpp: binding of dropout(x, p, seed, offset) -> y; the backward is the same call on dy.
#include "ops.h"
#include "tensor.h"

namespace mk {

Napi::Value Dropout(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "dropout");
  NativeTensor* x = a.tensor(info[0], "x");
  const float p = float(a.number(info[1], "p", 0, 0.999999));
  const int64_t seed = a.integer(info[2], "seed", 0, int64_t(1) << 53);
  const int64_t offset = a.integer(info[3], "offset", 0, int64_t(1) << 53);
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->dropout, x->dev());
  Napi::Object y = a.alloc(x->dev(), x->dtype(), x->shape());
  a.status(fn(d.ctx, ptr(unwrap(y)), x->data(), x->dtype(), x->numel(), p, uint64_t(seed), uint64_t(offset)), x->dev());
  return y;
}

}  // namespace mk
