// optim/index.ts: optimisers and schedules over a model's parameter arena.
export { AdamW, SGD, warmupCosine, type AdamWConfig, type SgdConfig } from './adamw.js';
