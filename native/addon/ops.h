// ops.h: the kernel bindings the addon exports; each lives in the file of its op's stem, and
// lib/native.ts documents each one's arguments and results.
#pragma once
#include <napi.h>

namespace mk {

#define MK_ADDON_OPS(X)                                                                       \
  X(matmul, Matmul)                                                                           \
  X(layerNorm, LayerNorm) X(layerNormBackward, LayerNormBackward)                             \
  X(gelu, Gelu) X(geluBackward, GeluBackward)                                                 \
  X(softmaxCrossEntropy, SoftmaxXent) X(softmaxCrossEntropyBackward, SoftmaxXentBackward)     \
  X(l2Normalize, L2Norm) X(l2NormalizeBackward, L2NormBackward)                               \
  X(residual, Residual) X(residualBackward, ResidualBackward)                                 \
  X(meanPool, MeanPool) X(meanPoolBackward, MeanPoolBackward)                                 \
  X(embedding, Embedding) X(embeddingBackward, EmbeddingBackward)                             \
  X(batchNorm, BatchNorm) X(batchNormBackward, BatchNormBackward)                             \
  X(dropout, Dropout)                                                                         \
  X(adamw, AdamW) X(sgd, Sgd) X(sumSquares, SumSquares)                                       \
  X(copy, Copy) X(copy2d, Copy2d) X(fill, Fill) X(cast, Cast)                                 \
  X(axpy, Axpy) X(scale, Scale)                                                               \
  X(patchEmbed, PatchEmbed) X(patchEmbedBackward, PatchEmbedBackward)                         \
  X(interpolatePos, PosInterp) X(interpolatePosBackward, PosInterpBackward)                   \
  X(flashAttention, Attention) X(flashAttentionBackward, AttentionBackward)                   \
  X(relu, Relu) X(reluBackward, ReluBackward)                                                 \
  X(clipLoss, ClipLoss) X(ntXent, NtXent) X(localAlignLoss, LocalAlign)                     \
  X(distStatus, DistStatus) X(distInit, DistInit) X(distAllReduce, DistAllReduce)             \
  X(distAllGather, DistAllGather) X(distBroadcast, DistBroadcast) X(distBarrier, DistBarrier) \
  X(distAbort, DistAbort) X(distFinalize, DistFinalize)

#define MK_DECLARE_BINDING(js, fn) Napi::Value fn(const Napi::CallbackInfo& info);
MK_ADDON_OPS(MK_DECLARE_BINDING)

}  // namespace mk
