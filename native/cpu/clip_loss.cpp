// clip_loss.cpp: symmetric InfoNCE, CE(s·I·Tᵀ) + CE(s·T·Iᵀ) with s = exp(logit_scale), for a
// block of Bl local rows against Bg gathered columns (open_clip's local loss; one process is
// Bl = Bg, offset 0, the gathered tensors the local ones).
#include <cmath>
#include <memory>

#include "losses.h"
#include "matmul.h"
#include "../common/xent.h"

namespace mk {

void clip_loss(float* loss, float* dscale, float* dimg, float* dtxt, float* dimg_all, float* dtxt_all,
               const float* img, const float* txt, const float* img_all, const float* txt_all, int64_t Bl, int64_t Bg,
               int64_t E, int64_t offset, const float* logit_scale) {
  const float s = std::exp(*logit_scale);
  const int64_t n = Bl * Bg;
  std::unique_ptr<float[]> buf(new float[size_t(4 * n)]());
  float *lpi = buf.get(), *lpt = lpi + n, *gpi = lpt + n, *gpt = gpi + n;  // each [Bl, Bg]
  matmul_f32(lpi, img, txt_all, nullptr, Bl, Bg, E, false, true, false);  // img · txt_allᵀ
  matmul_f32(lpt, txt, img_all, nullptr, Bl, Bg, E, false, true, false);  // txt · img_allᵀ
  // d/dlogit_scale of s·raw is s·raw, the logit itself.
  double ds = 0;
  *loss = float(xent_rows(lpi, Bg, 1, Bl, Bg, offset, false, s, gpi, &ds) +
                xent_rows(lpt, Bg, 1, Bl, Bg, offset, false, s, gpt, &ds));
  *dscale = float(ds);
  for (int64_t i = 0; i < 2 * n; ++i) gpi[i] *= s;
  // Local gradients are written first, so the gathered ones may alias them and add on top.
  matmul_f32(dimg, gpi, txt_all, nullptr, Bl, E, Bg, false, false, false);
  matmul_f32(dtxt, gpt, img_all, nullptr, Bl, E, Bg, false, false, false);
  matmul_f32(dtxt_all, gpi, img, nullptr, Bg, E, Bl, true, false, true);
  matmul_f32(dimg_all, gpt, txt, nullptr, Bg, E, Bl, true, false, true);
}

}  // namespace mk
