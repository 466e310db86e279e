// clip_loss.cpp: symmetric InfoNCE, CE(s·I·Tᵀ) + CE(s·T·Iᵀ) with s = exp(logit_scale), for a
// block of Bl local rows against Bg gathered columns (open_clip's local loss; one process is
// Bl = Bg, offset 0, the gathered tensors the local ones).
#include <cmath>
#include <memory>

#include "losses.h"
#include "matmul.h"
#include "xent.h"

namespace mk {

void clip_loss(double* loss, double* dscale, float* dimg, float* dtxt, float* dimg_all, float* dtxt_all,
               const float* img, const float* txt, const float* img_all, const float* txt_all, int64_t Bl, int64_t Bg,
               int64_t E, int64_t offset, float logit_scale) {
  const float s = std::exp(logit_scale);
  const int64_t n = Bl * Bg;
  std::unique_ptr<float[]> buf(new float[size_t(4 * n)]());
  float *lpi = buf.get(), *lpt = lpi + n, *gpi = lpt + n, *gpt = gpi + n;  // each [Bl, Bg]
  std::unique_ptr<int64_t[]> label(new int64_t[size_t(Bl)]);
  for (int64_t r = 0; r < Bl; ++r) label[r] = offset + r;
  matmul_f32(lpi, img, txt_all, nullptr, Bl, Bg, E, false, true, false);  // img · txt_allᵀ
  matmul_f32(lpt, txt, img_all, nullptr, Bl, Bg, E, false, true, false);  // txt · img_allᵀ
  for (int64_t i = 0; i < 2 * n; ++i) lpi[i] *= s;
  *loss = xent_rows(lpi, Bg, 1, label.get(), Bl, Bg, gpi, 1.0) + xent_rows(lpt, Bg, 1, label.get(), Bl, Bg, gpt, 1.0);
  // d/dlogit_scale of s·raw is s·raw, the logit itself.
  double ds = 0;
  for (int64_t i = 0; i < 2 * n; ++i) ds += double(gpi[i]) * double(lpi[i]);
  *dscale = ds;
  for (int64_t i = 0; i < 2 * n; ++i) gpi[i] *= s;
  // Local gradients are written first, so the gathered ones may alias them and add on top.
  matmul_f32(dimg, gpi, txt_all, nullptr, Bl, E, Bg, false, false, false);
  matmul_f32(dtxt, gpt, img_all, nullptr, Bl, E, Bg, false, false, false);
  matmul_f32(dtxt_all, gpi, img, nullptr, Bg, E, Bl, true, false, true);
  matmul_f32(dimg_all, gpt, txt, nullptr, Bg, E, Bl, true, false, true);
}

}  // namespace mk
