// optim.cpp: bindings of the optimizer kernels over a range [offset, offset + length) of flat
// f32 arenas: adamw(p, g, m, v, lr, beta1, beta2, eps, wd, bc1, bc2, gradScale, offset, length),
// sgd(p, g, buf, lr, momentum, wd, gradScale, offset, length), sumSquares(x) -> number and
// copy(src, dst) -> dst.
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

Napi::Value Copy(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "copy");
  NativeTensor* src = a.tensor(info[0], "src");
  NativeTensor* dst = a.optional(info[1], "dst");
  if (dst) a.like(dst, "dst", src, "src"), a.shape(dst, "dst", src->shape()), a.distinct(dst, "dst", src, "src");
  Device& d = device(src->dev());
  auto fn = a.entry(d.backend->copy, src->dev());
  Napi::Value out = dst ? info[1] : Napi::Value(a.alloc(src->dev(), src->dtype(), src->shape()));
  a.status(fn(d.ctx, unwrap(out.As<Napi::Object>())->data(), src->data(), src->dtype(), src->numel()), src->dev());
  return out;
}

// copy2d(src, dst, rows, cols, srcOffset, srcStride, dstOffset, dstStride) -> dst
Napi::Value Copy2d(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "copy2d");
  Napi::Env env = info.Env();
  NativeTensor* src = a.tensor(info[0], "src");
  NativeTensor* dst = a.tensor(info[1], "dst");
  a.like(dst, "dst", src, "src");
  const int64_t rows = a.integer(info[2], "rows", 1, src->numel()), cols = a.integer(info[3], "cols", 1, src->numel());
  const int64_t so = a.integer(info[4], "srcOffset", 0, src->numel() - 1), ss = a.integer(info[5], "srcStride", cols, src->numel());
  const int64_t dO = a.integer(info[6], "dstOffset", 0, dst->numel() - 1), ds = a.integer(info[7], "dstStride", cols, dst->numel());
  MK_RANGE_CHECK(so + (rows - 1) * ss + cols <= src->numel(), "copy2d: ", rows, " rows of ", cols, " from offset ", so,
                 " with stride ", ss, " run past src's ", src->numel(), " elements");
  MK_RANGE_CHECK(dO + (rows - 1) * ds + cols <= dst->numel(), "copy2d: ", rows, " rows of ", cols, " at offset ", dO,
                 " with stride ", ds, " run past dst's ", dst->numel(), " elements");
  const size_t es = dtype_size(src->dtype());
  const char* s0 = static_cast<const char*>(src->data()) + so * es;
  const char* s1 = s0 + ((rows - 1) * ss + cols) * es;
  const char* d0 = static_cast<const char*>(dst->data()) + dO * es;
  const char* d1 = d0 + ((rows - 1) * ds + cols) * es;
  MK_RANGE_CHECK(s1 <= d0 || d1 <= s0, "copy2d: the source and destination blocks overlap in memory");
  Device& d = device(src->dev());
  auto fn = a.entry(d.backend->copy2d, src->dev());
  a.status(fn(d.ctx, const_cast<char*>(d0), ds, s0, ss, src->dtype(), rows, cols), src->dev());
  return info[1];
}

}  // namespace mk
