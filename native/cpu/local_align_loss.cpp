// local_align_loss.cpp: MaMA's symmetric local alignment (MAMA.md §3.4),
//   CE(s_l·cV) + CE(s_l·cVᵀ) + CE(s_l·cT) + CE(s_l·cTᵀ), s_l = exp(local_scale),
// each CE a mean over its rows, for Bl local captions and images against Bg gathered ones:
// rows are local captions against all images, and local images against all captions. The
// scores and their arg-maxes come from local_align.cpp's tiles.
#include <cmath>
#include <cstring>
#include <memory>

#include "losses.h"
#include "ops.h"
#include "../common/xent.h"

namespace mk {

void local_align_loss(float* loss, float* dscale, float* dpatches, float* dsentences, float* dpatches_all,
                      float* dsentences_all, const float* patches, const float* sentences, const int32_t* counts,
                      const float* patches_all, const float* sentences_all, const int32_t* counts_all, int64_t Bl,
                      int64_t Bg, int64_t P, int64_t S, int64_t E, int64_t offset, const float* local_scale) {
  const float s = std::exp(*local_scale);
  const bool one = patches == patches_all && sentences == sentences_all;  // a single process
  const int64_t n = Bl * Bg;
  // a: local captions × all images [Bl, Bg]; b: all captions × local images [Bg, Bl].
  std::unique_ptr<float[]> f(new float[size_t(8 * n)]());
  float *cva = f.get(), *cta = cva + n, *cvb = cta + n, *ctb = cvb + n;
  float *gva = ctb + n, *gta = gva + n, *gvb = gta + n, *gtb = gvb + n;
  std::unique_ptr<int32_t[]> args(new int32_t[size_t((one ? 1 : 2) * n * (S + P))]);
  int32_t *ava = args.get(), *ata = ava + n * S;
  int32_t *avb = one ? ava : ata + n * P, *atb = one ? ata : avb + n * S;
  local_align_scores(cva, cta, ava, ata, sentences, counts, Bl, patches_all, Bg, P, S, E);
  if (one) {
    std::memcpy(cvb, cva, sizeof(float) * size_t(n)), std::memcpy(ctb, cta, sizeof(float) * size_t(n));
  } else {
    local_align_scores(cvb, ctb, avb, atb, sentences_all, counts_all, Bg, patches, Bl, P, S, E);
  }
  // The ᵀ terms read b column-wise: row r (a local image) is column r of b.
  double ds = 0;
  *loss = float(xent_rows(cva, Bg, 1, Bl, Bg, offset, false, s, gva, &ds) +
                xent_rows(cvb, 1, Bl, Bl, Bg, offset, false, s, gvb, &ds) +
                xent_rows(cta, Bg, 1, Bl, Bg, offset, false, s, gta, &ds) +
                xent_rows(ctb, 1, Bl, Bl, Bg, offset, false, s, gtb, &ds));
  *dscale = float(ds);
  for (int64_t i = 0; i < 4 * n; ++i) gva[i] *= s;
  std::memset(dpatches, 0, sizeof(float) * size_t(Bl * P * E));
  std::memset(dsentences, 0, sizeof(float) * size_t(Bl * S * E));
  if (one) {
    for (int64_t i = 0; i < n; ++i) gva[i] += gvb[i], gta[i] += gtb[i];
    local_align_grads(dsentences, dpatches, gva, gta, ava, ata, sentences, counts, Bl, patches, Bl, P, S, E);
    return;
  }
  local_align_grads(dsentences, dpatches_all, gva, gta, ava, ata, sentences, counts, Bl, patches_all, Bg, P, S, E);
  local_align_grads(dsentences_all, dpatches, gvb, gtb, avb, atb, sentences_all, counts_all, Bg, patches, Bl, P, S, E);
}

}  // namespace mk
