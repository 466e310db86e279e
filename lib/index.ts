// index.ts: the package entry: `import { kernels, Tensor } from 'mamakit'`.
export { Tensor, backends, cudaStatus, buildInfo, type TensorOptions, type Device, type DType } from './tensor.js';
export * as kernels from './kernels/index.js';
