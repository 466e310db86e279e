// attention.cpp: bindings of
//   flashAttention(q, k, v, causal, scale, kvLens, p, seed, offset) -> [out, lse]
//   flashAttentionBackward(q, k, v, out, lse, dOut, causal, scale, kvLens, p, seed, offset) -> [dq, dk, dv]
// scale undefined means 1/√Dh; kvLens null means every key is visible; p undefined means no
// dropout of the probabilities (seed and offset are then not read).
#include "checks.h"
#include "ops.h"
#include "tensor.h"

#include <cmath>
#include <cstdio>

namespace mk {
namespace {

struct Dims {
  int64_t B, Lq, Lk, H, Dh;
  float scale;
  bool causal;
  const int32_t* kv_lens;
  float p;  // dropout of the probabilities, 0: none
  uint64_t seed, offset;
};

Dims dims(const Args& a, const NativeTensor* q, const NativeTensor* k, const NativeTensor* v, const Napi::Value& causal,
          const Napi::Value& scale, const Napi::Value& kv_lens, const Napi::Value& p, const Napi::Value& seed,
          const Napi::Value& offset) {
  Napi::Env env = a.env();
  MK_RANGE_CHECK(q->shape().size() == 4, a.op(), ": q must be [B,Lq,H,Dh], got ", shape_str(q->shape()));
  MK_RANGE_CHECK(k->shape().size() == 4, a.op(), ": k must be [B,Lk,H,Dh], got ", shape_str(k->shape()));
  a.like(k, "k", q, "q"), a.like(v, "v", q, "q");
  Dims d;
  d.B = q->shape()[0], d.Lq = q->shape()[1], d.H = q->shape()[2], d.Dh = q->shape()[3], d.Lk = k->shape()[1];
  MK_RANGE_CHECK(k->shape()[0] == d.B && k->shape()[2] == d.H && k->shape()[3] == d.Dh, a.op(), ": k must be [", d.B,
                 ", Lk, ", d.H, ", ", d.Dh, "] like q ", shape_str(q->shape()), " (same batch, heads and head dim), got ",
                 shape_str(k->shape()));
  a.shape(v, "v", k->shape());
  d.causal = a.boolean(causal, "causal");
  MK_RANGE_CHECK(!d.causal || d.Lq == d.Lk, a.op(), ": causal attention needs as many queries as keys, got Lq = ", d.Lq,
                 " and Lk = ", d.Lk);
  d.scale = scale.IsUndefined() ? float(1.0 / std::sqrt(double(d.Dh))) : float(a.number(scale, "scale", 1e-30, 1e30));
  d.kv_lens = kv_lens.IsNull() || kv_lens.IsUndefined() ? nullptr : a.int32s(kv_lens, "kvLens", d.B, 1, int32_t(d.Lk));
  d.p = 0, d.seed = d.offset = 0;
  if (!p.IsUndefined()) {
    MK_TYPE_CHECK(p.IsNumber(), a.op(), ": dropout.p must be a number, got ", describe_value(p));
    const double x = p.As<Napi::Number>().DoubleValue();
    // float(x) < 1: the kernels scale by 1/(1 − p) in f32.
    char got[32] = "NaN";
    if (!std::isnan(x)) std::snprintf(got, sizeof got, "%.10g", x);
    MK_RANGE_CHECK(x >= 0 && float(x) < 1.f, a.op(), ": dropout.p must be in [0, 1), got ", got);
    d.p = float(x);
    d.seed = uint64_t(a.integer(seed, "dropout.seed", 0, int64_t(1) << 53));
    d.offset = uint64_t(a.integer(offset, "dropout.offset", 0, int64_t(1) << 53));
  }
  return d;
}

}  // namespace

Napi::Value Attention(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "flashAttention");
  NativeTensor* q = a.tensor(info[0], "q");
  NativeTensor* k = a.tensor(info[1], "k");
  NativeTensor* v = a.tensor(info[2], "v");
  const Dims d = dims(a, q, k, v, info[3], info[4], info[5], info[6], info[7], info[8]);
  Device& dev = device(q->dev());
  auto fn = a.entry(dev.backend->attention_forward, q->dev());
  Napi::Object out = a.alloc(q->dev(), q->dtype(), q->shape());
  Napi::Object lse = a.alloc(q->dev(), MK_F32, {d.B, d.H, d.Lq});
  a.status(fn(dev.ctx, ptr(unwrap(out)), f32(unwrap(lse)), q->data(), k->data(), v->data(), d.kv_lens, q->dtype(), d.B,
              d.Lq, d.Lk, d.H, d.Dh, d.scale, d.causal, d.p, d.seed, d.offset),
           q->dev());
  Napi::Array r = Napi::Array::New(info.Env(), 2);
  r.Set(0u, out), r.Set(1u, lse);
  return r;
}

Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "flashAttentionBackward");
  Napi::Env env = info.Env();
  NativeTensor* q = a.tensor(info[0], "q");
  NativeTensor* k = a.tensor(info[1], "k");
  NativeTensor* v = a.tensor(info[2], "v");
  NativeTensor* out = a.tensor(info[3], "out");
  NativeTensor* lse = a.tensor(info[4], "lse");
  NativeTensor* dout = a.tensor(info[5], "dOut");
  const Dims d = dims(a, q, k, v, info[6], info[7], info[8], info[9], info[10], info[11]);
  a.like(out, "out", q, "q"), a.shape(out, "out", q->shape());
  a.like(dout, "dOut", q, "q"), a.shape(dout, "dOut", q->shape());
  MK_TYPE_CHECK(lse->dtype() == MK_F32, "flashAttentionBackward: lse must be f32 (saved statistics are f32), got ",
                dtype_name(lse->dtype()));
  MK_TYPE_CHECK(lse->dev() == q->dev(), "flashAttentionBackward: lse is on ", device_name(lse->dev()), " but q is on ",
                device_name(q->dev()));
  a.shape(lse, "lse", {d.B, d.H, d.Lq});
  Device& dev = device(q->dev());
  auto fn = a.entry(dev.backend->attention_backward, q->dev());
  Napi::Object dq = a.alloc(q->dev(), q->dtype(), q->shape());
  Napi::Object dk = a.alloc(q->dev(), q->dtype(), k->shape()), dv = a.alloc(q->dev(), q->dtype(), k->shape());
  a.status(fn(dev.ctx, ptr(unwrap(dq)), ptr(unwrap(dk)), ptr(unwrap(dv)), q->data(), k->data(), v->data(), out->data(),
              f32(lse), dout->data(), d.kv_lens, q->dtype(), d.B, d.Lq, d.Lk, d.H, d.Dh, d.scale, d.causal, d.p,
              d.seed, d.offset),
           q->dev());
  Napi::Array r = Napi::Array::New(env, 3);
  r.Set(0u, dq), r.Set(1u, dk), r.Set(2u, dv);
  return r;
}

}  // namespace mk
