// index.ts: the package entry: `import { kernels, Tensor } from 'mamakit'`.
export { Tensor, backends, cudaStatus, buildInfo, memoryStats, transferStats, type TensorOptions, type Device, type DType, type MemoryStats, type TransferStats } from './tensor.js';
export * as kernels from './kernels/index.js';
export * as autograd from './autograd/index.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';
export * as io from './io/safetensors.js';
export * as data from './data/index.js';
export * as mama from './mama/index.js';
export * as dist from './dist/index.js';
