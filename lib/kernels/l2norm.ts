// l2norm.ts: L2 normalisation of the last dimension (F.normalize). Native: native/cpu/l2norm.cpp.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

/** y = x / max(‖x‖, eps) per row; norm [R] is kept for the backward. */
export function l2Normalize(x: Tensor, opts: { eps?: number } = {}) {
  const [y, norm] = native.l2Normalize(storage(x), opts.eps ?? 1e-12);
  return { y: new Tensor(y), norm: new Tensor(norm) };
}

export function l2NormalizeBackward(dy: Tensor, y: Tensor, norm: Tensor, opts: { eps?: number } = {}): Tensor {
  return new Tensor(native.l2NormalizeBackward(storage(dy), storage(y), storage(norm), opts.eps ?? 1e-12));
}
