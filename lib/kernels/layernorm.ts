// layernorm.ts: LayerNorm over the last dimension. Native: native/cpu/layernorm.cpp.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

/** x [..., D], weight/bias [D] or null → y [..., D], mean [R], rstd [R] (R = rows of x). */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, opts: { eps?: number } = {}) {
  const [y, mean, rstd] = native.layerNorm(storage(x), weight && storage(weight), bias && storage(bias), opts.eps ?? 1e-5);
  return { y: new Tensor(y), mean: new Tensor(mean), rstd: new Tensor(rstd) };
}

/** Returns dx [..., D]; adds Σ dy·x̂ into dWeight and Σ dy into dBias when given. */
export function layerNormBackward(
  dy: Tensor, x: Tensor, mean: Tensor, rstd: Tensor, weight: Tensor | null,
  grads: { dWeight?: Tensor | null; dBias?: Tensor | null } = {},
): Tensor {
  return new Tensor(native.layerNormBackward(storage(dy), storage(x), storage(mean), storage(rstd), weight && storage(weight),
    grads.dWeight ? storage(grads.dWeight) : null, grads.dBias ? storage(grads.dBias) : null));
}
