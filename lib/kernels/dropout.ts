// dropout.ts: inverted dropout with a counter-based mask: element i is kept or dropped by
// (seed, offset + i) alone, so the backward reproduces the mask. Native: native/cpu/dropout.cpp.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

export interface DropoutOptions {
  /** drop probability in [0, 1) */
  p: number;
  /** integer in [0, 2^53] */
  seed: number;
  /** counter of the first element (default 0) */
  offset?: number;
}

export function dropout(x: Tensor, opts: DropoutOptions): Tensor {
  return new Tensor(native.dropout(storage(x), opts.p, opts.seed, opts.offset ?? 0));
}

/** The gradient: dy through the same mask and scale. */
export function dropoutBackward(dy: Tensor, opts: DropoutOptions): Tensor {
  return new Tensor(native.dropout(storage(dy), opts.p, opts.seed, opts.offset ?? 0));
}
