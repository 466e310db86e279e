// local_align.cpp: binding of
//   localAlignLoss(patches, sentences, counts, localScale, patchesAll, sentencesAll, countsAll, offset)
//   -> [loss, dLocalScale, dPatches, dSentences, dPatchesAll | null, dSentencesAll | null], loss and
// dLocalScale f32 [1] on the inputs' device; localScale a number or an f32 [1] tensor there
#include "checks.h"
#include "ops.h"
#include "tensor.h"

namespace mk {

Napi::Value LocalAlign(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "localAlignLoss");
  Napi::Env env = info.Env();
  NativeTensor* patches = a.tensor(info[0], "patches");
  NativeTensor* sentences = a.tensor(info[1], "sentences");
  MK_RANGE_CHECK(patches->shape().size() == 3, "localAlignLoss: patches must be [B,P,E], got ", shape_str(patches->shape()));
  MK_RANGE_CHECK(sentences->shape().size() == 3, "localAlignLoss: sentences must be [B,S,E], got ", shape_str(sentences->shape()));
  a.like(sentences, "sentences", patches, "patches");
  const int64_t Bl = patches->shape()[0], P = patches->shape()[1], E = patches->shape()[2], S = sentences->shape()[1];
  MK_RANGE_CHECK(sentences->shape()[0] == Bl && sentences->shape()[2] == E, "localAlignLoss: sentences must be [", Bl,
                 ", S, ", E, "] like patches ", shape_str(patches->shape()), ", got ", shape_str(sentences->shape()));
  const int32_t* counts = a.int32s(info[2], "sentenceCounts", Bl, 1, int32_t(S));
  NativeTensor* patches_all = a.optional(info[4], "patchesAll");
  NativeTensor* sentences_all = a.optional(info[5], "sentencesAll");
  MK_TYPE_CHECK(!patches_all == !sentences_all, "localAlignLoss: patchesAll and sentencesAll come together, got only one");
  int64_t Bg = Bl, offset = 0;
  const int32_t* counts_all = counts;
  if (patches_all) {
    a.like(patches_all, "patchesAll", patches, "patches"), a.like(sentences_all, "sentencesAll", patches, "patches");
    MK_RANGE_CHECK(patches_all->shape().size() == 3 && patches_all->shape()[0] >= Bl && patches_all->shape()[1] == P &&
                       patches_all->shape()[2] == E,
                   "localAlignLoss: patchesAll must be [Bg, ", P, ", ", E, "] with Bg ≥ ", Bl, ", got ",
                   shape_str(patches_all->shape()));
    Bg = patches_all->shape()[0];
    a.shape(sentences_all, "sentencesAll", {Bg, S, E});
    counts_all = a.int32s(info[6], "sentenceCountsAll", Bg, 1, int32_t(S));
    offset = a.integer(info[7], "offset", 0, Bg - Bl);
  } else {
    MK_TYPE_CHECK((info[6].IsUndefined() || info[6].IsNull()) && (info[7].IsUndefined() || info[7].IsNull()),
                  "localAlignLoss: sentenceCountsAll and offset need patchesAll and sentencesAll");
  }
  const Args::Scalar scale = a.scalar(info[3], "localScale", -80, 80, patches->dev());
  Device& d = device(patches->dev());
  auto fn = a.entry(d.backend->local_align, patches->dev());
  Napi::Object dp = a.alloc(patches->dev(), patches->dtype(), patches->shape());
  Napi::Object ds = a.alloc(patches->dev(), patches->dtype(), sentences->shape());
  Napi::Value dp_all = env.Null(), ds_all = env.Null();
  void *pp = ptr(unwrap(dp)), *ps = ptr(unwrap(ds));
  if (patches_all) {
    dp_all = a.zeros(patches->dev(), patches->dtype(), patches_all->shape());
    ds_all = a.zeros(patches->dev(), patches->dtype(), sentences_all->shape());
    pp = ptr(unwrap(dp_all.As<Napi::Object>())), ps = ptr(unwrap(ds_all.As<Napi::Object>()));
  }
  Napi::Object loss = a.alloc(patches->dev(), MK_F32, {1}), dscale = a.alloc(patches->dev(), MK_F32, {1});
  a.status(fn(d.ctx, f32(unwrap(loss)), f32(unwrap(dscale)), ptr(unwrap(dp)), ptr(unwrap(ds)), pp, ps, patches->data(), sentences->data(), counts,
              patches_all ? patches_all->data() : patches->data(), sentences_all ? sentences_all->data() : sentences->data(),
              counts_all, patches->dtype(), Bl, Bg, P, S, E, offset, scale.ptr),
           patches->dev());
  Napi::Array r = Napi::Array::New(env, 6);
  r.Set(0u, loss), r.Set(1u, dscale);
  r.Set(2u, dp), r.Set(3u, ds), r.Set(4u, dp_all), r.Set(5u, ds_all);
  return r;
}

}  // namespace mk
