// copy.cpp: bindings that move values: copy(src, dst?) -> dst, copy2d(src, dst, rows, cols,
// srcOffset, srcStride, dstOffset, dstStride) -> dst, fill(x, value) -> x, and
// cast(src, dtype, dst?) -> dst (another dtype on the same device).
#include "checks.h"
#include "ops.h"
#include "tensor.h"

namespace mk {

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

Napi::Value Fill(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "fill");
  NativeTensor* x = a.tensor(info[0], "x");
  const float value = float(a.number(info[1], "value", -3.4e38, 3.4e38));
  Device& d = device(x->dev());
  auto fn = a.entry(d.backend->fill, x->dev());
  a.status(fn(d.ctx, x->data(), x->dtype(), x->numel(), value), x->dev());
  return info[0];
}

Napi::Value Cast(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "cast");
  Napi::Env env = info.Env();
  NativeTensor* src = a.tensor(info[0], "src");
  mk_dtype to = MK_F32;
  MK_TYPE_CHECK(info[1].IsString() && parse_dtype(info[1].As<Napi::String>().Utf8Value(), &to),
                "cast: dtype must be 'f32', 'bf16' or 'f16', got ", describe_value(info[1]));
  NativeTensor* dst = a.optional(info[2], "dst");
  if (dst) {
    MK_TYPE_CHECK(dst->dev() == src->dev(), "cast: dst is on ", device_name(dst->dev()), " but src is on ", device_name(src->dev()));
    MK_TYPE_CHECK(dst->dtype() == to, "cast: dst has dtype ", dtype_name(dst->dtype()), " but the cast is to ", dtype_name(to));
    a.shape(dst, "dst", src->shape()), a.distinct(dst, "dst", src, "src");
  }
  Device& d = device(src->dev());
  auto fn = a.entry(d.backend->cast, src->dev());
  Napi::Value out = dst ? info[2] : Napi::Value(a.alloc(src->dev(), to, src->shape()));
  a.status(fn(d.ctx, unwrap(out.As<Napi::Object>())->data(), to, src->data(), src->dtype(), src->numel()), src->dev());
  return out;
}

}  // namespace mk
