// optim.cpp: bindings of the optimizer kernels over a range [offset, offset + length) of flat
// f32 arenas: adamw(p, g, m, v, lr, beta1, beta2, eps, wd, bc1, bc2, gradScale, offset, length),
// sgd(p, g, buf, lr, momentum, wd, gradScale, offset, length), and sumSquares(x) -> number.
#include "checks.h"
#include "ops.h"
#include "tensor.h"

namespace mk {
namespace {

// Checks that t is an f32 tensor like p of the same element count.
void arena(const Args& a, const NativeTensor* t, const char* name, const NativeTensor* p) {
  Napi::Env env = a.env();
  a.like(t, name, p, "params");
  MK_RANGE_CHECK(t->numel() == p->numel(), a.op(), ": ", name, " has ", t->numel(), " elements but params has ", p->numel());
  a.distinct(t, name, p, "params");
}

std::pair<int64_t, int64_t> range(const Args& a, const Napi::Value& off, const Napi::Value& len, int64_t n) {
  const int64_t o = off.IsUndefined() ? 0 : a.integer(off, "offset", 0, n - 1);
  const int64_t l = len.IsUndefined() ? n - o : a.integer(len, "length", 1, n - o);
  return {o, l};
}

}  // namespace

Napi::Value AdamW(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "adamw");
  Napi::Env env = info.Env();
  NativeTensor* p = a.tensor(info[0], "params");
  NativeTensor* g = a.tensor(info[1], "grads");
  NativeTensor* m = a.tensor(info[2], "m");
  NativeTensor* v = a.tensor(info[3], "v");
  MK_TYPE_CHECK(p->dtype() == MK_F32, "adamw: params must be f32, got ", dtype_name(p->dtype()));
  arena(a, g, "grads", p), arena(a, m, "m", p), arena(a, v, "v", p);
  a.distinct(m, "m", v, "v"), a.distinct(m, "m", g, "grads"), a.distinct(v, "v", g, "grads");
  const float lr = float(a.number(info[4], "lr", 0, 1e3));
  const float b1 = float(a.number(info[5], "beta1", 0, 0.999999999));
  const float b2 = float(a.number(info[6], "beta2", 0, 0.999999999));
  const float eps = float(a.number(info[7], "eps", 1e-30, 1));
  const float wd = float(a.number(info[8], "weightDecay", 0, 1e3));
  const float bc1 = float(a.number(info[9], "biasCorrection1", 1e-30, 1));
  const float bc2 = float(a.number(info[10], "biasCorrection2", 1e-30, 1));
  const float gs = float(a.number(info[11], "gradScale", 0, 3.4e38));
  auto [o, l] = range(a, info[12], info[13], p->numel());
  Device& d = device(p->dev());
  auto fn = a.entry(d.backend->adamw, p->dev());
  a.status(fn(d.ctx, f32(p) + o, f32(g) + o, f32(m) + o, f32(v) + o, l, lr, b1, b2, eps, wd, bc1, bc2, gs), p->dev());
  return env.Undefined();
}

Napi::Value Sgd(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "sgd");
  Napi::Env env = info.Env();
  NativeTensor* p = a.tensor(info[0], "params");
  NativeTensor* g = a.tensor(info[1], "grads");
  NativeTensor* buf = a.optional(info[2], "momentumBuffer");
  MK_TYPE_CHECK(p->dtype() == MK_F32, "sgd: params must be f32, got ", dtype_name(p->dtype()));
  arena(a, g, "grads", p);
  if (buf) arena(a, buf, "momentumBuffer", p), a.distinct(buf, "momentumBuffer", g, "grads");
  const float lr = float(a.number(info[3], "lr", 0, 1e3));
  const float mu = float(a.number(info[4], "momentum", 0, 1));
  MK_TYPE_CHECK(buf || mu == 0.f, "sgd: momentum ", mu, " needs a momentumBuffer");
  const float wd = float(a.number(info[5], "weightDecay", 0, 1e3));
  const float gs = float(a.number(info[6], "gradScale", 0, 3.4e38));
  auto [o, l] = range(a, info[7], info[8], p->numel());
  Device& d = device(p->dev());
  auto fn = a.entry(d.backend->sgd, p->dev());
  a.status(fn(d.ctx, f32(p) + o, f32(g) + o, buf ? f32(buf) + o : nullptr, l, lr, mu, wd, gs), p->dev());
  return env.Undefined();
}

Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "sumSquares");
  NativeTensor* x = a.tensor(info[0], "x");
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->sumsq, x->dev());
  double s = 0;
  a.status(fn(d.ctx, &s, x->data(), x->dtype(), x->numel()), x->dev());
  return Napi::Number::New(info.Env(), s);
}

}  // namespace mk
