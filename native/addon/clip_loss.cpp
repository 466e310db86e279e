// clip_loss.cpp: binding of clipLoss(img, txt, logitScale, imgAll, txtAll, offset)
//   -> [loss, dLogitScale, dImg, dTxt, dImgAll | null, dTxtAll | null], loss and dLogitScale f32 [1]
// on the inputs' device; logitScale a number or an f32 [1] tensor there
// (imgAll/txtAll null: one process, the local tensors are the gathered ones).
#include "checks.h"
#include "ops.h"
#include "tensor.h"

namespace mk {

Napi::Value ClipLoss(const Napi::CallbackInfo& info) {
  Args a(info.Env(), "clipLoss");
  Napi::Env env = info.Env();
  NativeTensor* img = a.tensor(info[0], "img");
  NativeTensor* txt = a.tensor(info[1], "txt");
  NativeTensor* img_all = a.optional(info[3], "imgAll");
  NativeTensor* txt_all = a.optional(info[4], "txtAll");
  MK_RANGE_CHECK(img->shape().size() == 2, "clipLoss: img must be [B,E], got ", shape_str(img->shape()));
  a.like(txt, "txt", img, "img"), a.shape(txt, "txt", img->shape());
  const int64_t Bl = img->shape()[0], E = img->shape()[1];
  MK_TYPE_CHECK(!img_all == !txt_all, "clipLoss: imgAll and txtAll come together (the gathered batch), got only one");
  int64_t Bg = Bl, offset = 0;
  if (img_all) {
    a.like(img_all, "imgAll", img, "img"), a.like(txt_all, "txtAll", img, "img");
    MK_RANGE_CHECK(img_all->shape().size() == 2 && img_all->shape()[1] == E && img_all->shape()[0] >= Bl,
                   "clipLoss: imgAll must be [Bg, ", E, "] with Bg ≥ ", Bl, ", got ", shape_str(img_all->shape()));
    a.shape(txt_all, "txtAll", img_all->shape());
    Bg = img_all->shape()[0];
    offset = a.integer(info[5], "offset", 0, Bg - Bl);
  } else {
    MK_TYPE_CHECK(info[5].IsUndefined() || info[5].IsNull(), "clipLoss: offset needs imgAll and txtAll");
  }
  const Args::Scalar scale = a.scalar(info[2], "logitScale", -80, 80, img->dev());
  Device& d = device(img->dev());
  auto fn = a.entry(d.backend->clip_loss, img->dev());
  Napi::Object dimg = a.alloc(img->dev(), img->dtype(), {Bl, E}), dtxt = a.alloc(img->dev(), img->dtype(), {Bl, E});
  Napi::Value dimg_all = env.Null(), dtxt_all = env.Null();
  void *pia = ptr(unwrap(dimg)), *pta = ptr(unwrap(dtxt));
  if (img_all) {
    dimg_all = a.zeros(img->dev(), img->dtype(), {Bg, E}), dtxt_all = a.zeros(img->dev(), img->dtype(), {Bg, E});
    pia = ptr(unwrap(dimg_all.As<Napi::Object>())), pta = ptr(unwrap(dtxt_all.As<Napi::Object>()));
  }
  Napi::Object loss = a.alloc(img->dev(), MK_F32, {1}), dscale = a.alloc(img->dev(), MK_F32, {1});
  a.status(fn(d.ctx, f32(unwrap(loss)), f32(unwrap(dscale)), ptr(unwrap(dimg)), ptr(unwrap(dtxt)), pia, pta, img->data(), txt->data(),
              img_all ? img_all->data() : img->data(), txt_all ? txt_all->data() : txt->data(), img->dtype(), Bl, Bg, E,
              offset, scale.ptr),
           img->dev());
  Napi::Array r = Napi::Array::New(env, 6);
  r.Set(0u, loss), r.Set(1u, dscale);
  r.Set(2u, dimg), r.Set(3u, dtxt), r.Set(4u, dimg_all), r.Set(5u, dtxt_all);
  return r;
}

}  // namespace mk
