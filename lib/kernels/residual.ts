// residual.ts: residual add with a scale, x + s⊙h (s = LayerScale gamma [D] or a scalar).
// Native: native/cpu/residual.cpp.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

export interface ResidualOptions {
  /** [D] per-channel scale (LayerScale) */
  gamma?: Tensor | null;
  /** scalar scale when there is no gamma (default 1) */
  alpha?: number;
}

export function residual(x: Tensor, h: Tensor, opts: ResidualOptions = {}): Tensor {
  return new Tensor(native.residual(storage(x), storage(h), opts.gamma ? storage(opts.gamma) : null, opts.alpha ?? 1));
}

/** Returns dh = s⊙dy (the gradient of x is dy itself); adds Σ h⊙dy into dGamma when given. */
export function residualBackward(dy: Tensor, h: Tensor, opts: ResidualOptions & { dGamma?: Tensor | null } = {}): Tensor {
  return new Tensor(native.residualBackward(storage(dy), storage(h), opts.gamma ? storage(opts.gamma) : null, opts.alpha ?? 1,
    opts.dGamma ? storage(opts.dGamma) : null));
}
