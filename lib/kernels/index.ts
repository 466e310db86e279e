// kernels/index.ts: the public functional kernel API (DESIGN.md, "The public kernel contract").
export { matmul, type MatmulOptions } from './matmul.js';
