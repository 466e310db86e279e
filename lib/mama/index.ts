// mama/index.ts: the MaMA model and its presets.
export { Mama, mamaPresets, type MamaConfig, type MamaBatch } from './model.js';
