// nn/index.ts: modules, the parameter arena and the encoders.
export { Module, Param, ParamArena, InitRng, Group, type Range, type ParamArenaOptions } from './module.js';
export { Linear, LayerNorm, Mlp, SelfAttention, Block, LayerScale, BatchNorm1d, Dropout, LoRA, type LinearLike } from './layers.js';
export { VisionTransformer, vitPresets, vitParamCount, type VitConfig } from './vit.js';
export { saveWeights, loadWeights, type LoadOptions } from './weights.js';
export { saveCheckpoint, loadCheckpoint } from './checkpoint.js';
export { Gpt2, gpt2Presets, gpt2ParamCount, type Gpt2Config, type LoraConfig } from './gpt2.js';
