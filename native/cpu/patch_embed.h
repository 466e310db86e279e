// patch_embed.h: the fused patch embedding of the CPU backend (patch_embed.cpp), a Conv2d with
// kernel = stride = p run as one GEMM whose operand is gathered from the pixels while it is
// packed. Shapes as in mamakit.h: images [B,C,H,W], weight [D, C·p·p], tokens [B,T,D] with
// the Np = (H/p)(W/p) patch tokens of image b at rows offset .. offset+Np.
#pragma once
#include <cstdint>

namespace mk {

void patch_embed_forward(float* tokens, const float* images, const float* weight, const float* bias,
                         const float* pos, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p, int64_t D,
                         int64_t T, int64_t offset);

// dweight [D, C·p·p], dbias [D], dpos [Np, D] accumulated; each may be null.
void patch_embed_backward(float* dweight, float* dbias, float* dpos, const float* dtokens, const float* images,
                          int64_t B, int64_t C, int64_t H, int64_t W, int64_t p, int64_t D, int64_t T,
                          int64_t offset);

}  // namespace mk
