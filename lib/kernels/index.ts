// kernels/index.ts: the public functional kernel API (DESIGN.md, "The public kernel contract").
export { matmul, type MatmulOptions } from './matmul.js';
export { layerNorm, layerNormBackward } from './layernorm.js';
export { gelu, geluBackward, type GeluOptions } from './gelu.js';
export { softmaxCrossEntropy, softmaxCrossEntropyBackward } from './softmax_xent.js';
export { l2Normalize, l2NormalizeBackward } from './l2norm.js';
export { residual, residualBackward, type ResidualOptions } from './residual.js';
export { meanPool, meanPoolBackward } from './meanpool.js';
export { embedding, embeddingBackward } from './embedding.js';
export { batchNorm, batchNormBackward, type BatchNormOptions } from './batchnorm.js';
export { dropout, dropoutBackward, type DropoutOptions } from './dropout.js';
export { adamwStep, sgdStep, sumSquares, globalNorm, copy, copy2d, type AdamWOptions, type SgdOptions, type Range, type Copy2dOptions } from './optim.js';
export { patchEmbed, patchEmbedBackward, type PatchEmbedOptions, type PatchEmbedBackwardOptions } from './patch_embed.js';
export { interpolatePos, interpolatePosBackward, type InterpolatePosOptions } from './pos_interp.js';
export { flashAttention, flashAttentionBackward, type AttentionOptions } from './attention.js';
export { clipLoss, type ClipLossOptions } from './clip_loss.js';
export { ntXent } from './nt_xent.js';
export { localAlignLoss, type LocalAlignOptions } from './local_align.js';
export { relu, reluBackward } from './relu.js';
