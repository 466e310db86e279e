// softmax_xent.cpp: bindings of softmaxCrossEntropy(logits, targets) -> [loss, lse] (per row)
// and softmaxCrossEntropyBackward(logits, lse, targets, scale) -> dlogits.
#include "checks.h"
#include "ops.h"
#include "tensor.h"

namespace mk {

Napi::Value SoftmaxXent(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "softmaxCrossEntropy");
  NativeTensor* x = a.tensor(info[0], "logits");
  Napi::Env env = info.Env();
  MK_RANGE_CHECK(x->shape().size() == 2, "softmaxCrossEntropy: logits must be 2-D [R,C], got ", shape_str(x->shape()));
  const int64_t R = x->shape()[0], C = x->shape()[1];
  const int32_t* t = a.int32s(info[1], "targets", R, 0, int32_t(C - 1), true);
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->softmax_xent_forward, x->dev());
  Napi::Object loss = a.alloc(x->dev(), MK_F32, {R}), lse = a.alloc(x->dev(), MK_F32, {R});
  a.status(fn(d.ctx, f32(unwrap(loss)), f32(unwrap(lse)), x->data(), t, x->dtype(), R, C), x->dev());
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, loss), out.Set(1u, lse);
  return out;
}

Napi::Value SoftmaxXentBackward(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "softmaxCrossEntropyBackward");
  NativeTensor* x = a.tensor(info[0], "logits");
  NativeTensor* lse = a.tensor(info[1], "lse");
  Napi::Env env = info.Env();
  MK_RANGE_CHECK(x->shape().size() == 2, "softmaxCrossEntropyBackward: logits must be 2-D [R,C], got ", shape_str(x->shape()));
  const int64_t R = x->shape()[0], C = x->shape()[1];
  a.stats(lse, "lse", R, x);
  const int32_t* t = a.int32s(info[2], "targets", R, 0, int32_t(C - 1), true);
  const float scale = float(a.number(info[3], "scale", -3.4e38, 3.4e38));
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->softmax_xent_backward, x->dev());
  Napi::Object dx = a.alloc(x->dev(), x->dtype(), x->shape());
  a.status(fn(d.ctx, ptr(unwrap(dx)), x->data(), f32(lse), t, scale, x->dtype(), R, C), x->dev());
  return dx;
}

}  // namespace mk
