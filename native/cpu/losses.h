// losses.h: the fused contrastive losses of the CPU backend (clip_loss.cpp, nt_xent.cpp,
// local_align_loss.cpp); contracts in mamakit.h. Each returns the loss and the gradients for
// an upstream gradient of 1; loss, dscale and the log-scale are [1] tensors of the backend.
#pragma once
#include <cstdint>

namespace mk {

void clip_loss(float* loss, float* dscale, float* dimg, float* dtxt, float* dimg_all, float* dtxt_all,
               const float* img, const float* txt, const float* img_all, const float* txt_all, int64_t Bl, int64_t Bg,
               int64_t E, int64_t offset, const float* logit_scale);

void nt_xent(float* loss, float* dz0, float* dz1, const float* z0, const float* z1, int64_t B, int64_t E,
             float temperature);

void local_align_loss(float* loss, float* dscale, float* dpatches, float* dsentences, float* dpatches_all,
                      float* dsentences_all, const float* patches, const float* sentences, const int32_t* counts,
                      const float* patches_all, const float* sentences_all, const int32_t* counts_all, int64_t Bl,
                      int64_t Bg, int64_t P, int64_t S, int64_t E, int64_t offset, const float* local_scale);

}  // namespace mk
