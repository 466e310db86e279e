// mama/index.ts: the MaMA model and its presets.
export { Mama, mamaPresets, type MamaConfig, type MamaBatch } from './model.js';
export { pretrain, defaultConfig, type TrainConfig, type RunResult } from './train.js';
export { balancedAccuracy, macroAuc, linearProbe, zeroShot, imageFeatures } from './evaluate.js';
