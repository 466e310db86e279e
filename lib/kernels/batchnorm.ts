// batchnorm.ts: BatchNorm1d over x [R,C], training and evaluation. Native: native/cpu/batchnorm.cpp.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  /** [C] f32; updated in place when training, used when not */
  runningMean?: Tensor | null;
  runningVar?: Tensor | null;
  training?: boolean;
  /** running = (1 − momentum)·running + momentum·batch (PyTorch's default 0.1) */
  momentum?: number;
  eps?: number;
}

/** Returns { y [R,C], mean [C], rstd [C] } (the statistics used, for the backward). */
export function batchNorm(x: Tensor, opts: BatchNormOptions = {}) {
  const s = (t?: Tensor | null) => (t ? storage(t) : null);
  const [y, mean, rstd] = native.batchNorm(storage(x), s(opts.weight), s(opts.bias), s(opts.runningMean), s(opts.runningVar),
    opts.training ?? true, opts.momentum ?? 0.1, opts.eps ?? 1e-5);
  return { y: new Tensor(y), mean: new Tensor(mean), rstd: new Tensor(rstd) };
}

/** Returns dx; adds Σ dy·x̂ into dWeight and Σ dy into dBias when given. */
export function batchNormBackward(
  dy: Tensor, x: Tensor, mean: Tensor, rstd: Tensor,
  opts: { weight?: Tensor | null; training?: boolean; dWeight?: Tensor | null; dBias?: Tensor | null } = {},
): Tensor {
  const s = (t?: Tensor | null) => (t ? storage(t) : null);
  return new Tensor(native.batchNormBackward(storage(dy), storage(x), storage(mean), storage(rstd), s(opts.weight),
    opts.training ?? true, s(opts.dWeight), s(opts.dBias)));
}
