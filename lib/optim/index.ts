// optim/index.ts: optimisers and schedules over a model's parameter arena.
export { AdamW, warmupCosine, type AdamWConfig } from './adamw.js';
