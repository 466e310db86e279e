// patch_embed.cpp: bindings of
//   patchEmbed(images, weight, bias, pos, patch, out, offset) -> tokens
//   patchEmbedBackward(images, dTokens, patch, offset, dWeight, dBias, dPos) -> [dWeight, dBias, dPos]
// (gradients given are accumulated into and returned; missing ones are created from zero).
#include "checks.h"
#include "ops.h"
#include "tensor.h"

namespace mk {
namespace {

struct Geometry {
  int64_t B, C, H, W, p, np, kp;
};

Geometry geometry(const Args& a, const NativeTensor* images, const Napi::Value& patch) {
  Napi::Env env = a.env();
  MK_RANGE_CHECK(images->shape().size() == 4, a.op(), ": images must be [B,C,H,W], got ", shape_str(images->shape()));
  Geometry g;
  g.B = images->shape()[0], g.C = images->shape()[1], g.H = images->shape()[2], g.W = images->shape()[3];
  g.p = a.integer(patch, "patch", 1, 4096);
  MK_RANGE_CHECK(g.H % g.p == 0, a.op(), ": image height H = ", g.H, " is not a multiple of patch ", g.p);
  MK_RANGE_CHECK(g.W % g.p == 0, a.op(), ": image width W = ", g.W, " is not a multiple of patch ", g.p);
  g.np = (g.H / g.p) * (g.W / g.p);
  g.kp = g.C * g.p * g.p;
  return g;
}

// The token rows of each image: out [B,T,D] holds them at offset .. offset+Np (default: last).
int64_t token_offset(const Args& a, const Napi::Value& v, int64_t T, int64_t np) {
  Napi::Env env = a.env();
  MK_RANGE_CHECK(T >= np, a.op(), ": the token buffer has ", T, " rows per image but the images have ", np, " patches");
  return v.IsUndefined() || v.IsNull() ? T - np : a.integer(v, "offset", 0, T - np);
}

}  // namespace

Napi::Value PatchEmbed(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "patchEmbed");
  Napi::Env env = info.Env();
  NativeTensor* images = a.tensor(info[0], "images");
  NativeTensor* weight = a.tensor(info[1], "weight");
  NativeTensor* bias = a.optional(info[2], "bias");
  NativeTensor* pos = a.optional(info[3], "pos");
  const Geometry g = geometry(a, images, info[4]);
  NativeTensor* out = a.optional(info[5], "out");
  a.like(weight, "weight", images, "images");
  MK_RANGE_CHECK(weight->shape().size() == 2 && weight->shape()[1] == g.kp, "patchEmbed: weight must be [D, ", g.kp,
                 "] (a flattened Conv2d kernel [D, C·p·p] for C = ", g.C, ", p = ", g.p, "), got ", shape_str(weight->shape()));
  const int64_t D = weight->shape()[0];
  if (bias) a.like(bias, "bias", images, "images"), a.shape(bias, "bias", {D});
  if (pos) a.like(pos, "pos", images, "images"), a.shape(pos, "pos", {g.np, D});
  int64_t T = g.np, offset = 0;
  if (out) {
    a.like(out, "out", images, "images");
    MK_RANGE_CHECK(out->shape().size() == 3 && out->shape()[0] == g.B && out->shape()[2] == D,
                   "patchEmbed: out must be [", g.B, ", T, ", D, "], got ", shape_str(out->shape()));
    T = out->shape()[1];
    offset = token_offset(a, info[6], T, g.np);
    a.distinct(out, "out", images, "images"), a.distinct(out, "out", weight, "weight");
    if (bias) a.distinct(out, "out", bias, "bias");
    if (pos) a.distinct(out, "out", pos, "pos");
  } else {
    MK_TYPE_CHECK(info[6].IsUndefined() || info[6].IsNull(), "patchEmbed: offset needs an out tensor to write into");
  }
  Device& d = device(images->dev());
  auto fn = a.entry(d.backend->patch_embed_forward, images->dev());
  Napi::Value result = out ? info[5] : Napi::Value(a.alloc(images->dev(), images->dtype(), {g.B, g.np, D}));
  NativeTensor* t = out ? out : unwrap(result.As<Napi::Object>());
  a.status(fn(d.ctx, t->data(), images->data(), weight->data(), ptr(bias), ptr(pos), images->dtype(), g.B, g.C, g.H,
              g.W, g.p, D, T, offset),
           images->dev());
  return result;
}

Napi::Value PatchEmbedBackward(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "patchEmbedBackward");
  Napi::Env env = info.Env();
  NativeTensor* images = a.tensor(info[0], "images");
  NativeTensor* dt = a.tensor(info[1], "dTokens");
  const Geometry g = geometry(a, images, info[2]);
  a.like(dt, "dTokens", images, "images");
  MK_RANGE_CHECK(dt->shape().size() == 3 && dt->shape()[0] == g.B, "patchEmbedBackward: dTokens must be [", g.B,
                 ", T, D], got ", shape_str(dt->shape()));
  const int64_t T = dt->shape()[1], D = dt->shape()[2];
  const int64_t offset = token_offset(a, info[3], T, g.np);
  NativeTensor* grads[3];
  const char* names[3] = {"dWeight", "dBias", "dPos"};
  const std::vector<int64_t> shapes[3] = {{D, g.kp}, {D}, {g.np, D}};
  Napi::Array result = Napi::Array::New(env, 3);
  for (int i = 0; i < 3; ++i) {
    grads[i] = a.optional(info[4 + i], names[i]);
    if (grads[i]) {
      a.like(grads[i], names[i], images, "images"), a.shape(grads[i], names[i], shapes[i]);
      a.distinct(grads[i], names[i], images, "images"), a.distinct(grads[i], names[i], dt, "dTokens");
      for (int j = 0; j < i; ++j) a.distinct(grads[i], names[i], grads[j], names[j]);
      result.Set(uint32_t(i), info[4 + i]);
    } else {
      Napi::Object z = a.zeros(images->dev(), images->dtype(), shapes[i]);
      grads[i] = unwrap(z);
      result.Set(uint32_t(i), z);
    }
  }
  Device& d = device(images->dev());
  auto fn = a.entry(d.backend->patch_embed_backward, images->dev());
  a.status(fn(d.ctx, grads[0]->data(), grads[1]->data(), grads[2]->data(), dt->data(), images->data(), images->dtype(),
              g.B, g.C, g.H, g.W, g.p, D, T, offset),
           images->dev());
  return result;
}

}  // namespace mk
