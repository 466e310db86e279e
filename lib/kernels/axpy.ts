// axpy.ts: y += alpha·x and x *= alpha in place: gradient accumulation and scaling without a
// temporary. Native: native/cpu/axpy.cpp, native/cuda/axpy.cu.
import { native } from '../native.js';
import { storage, type Tensor } from '../tensor.js';

/** y += alpha·x in place (same shape, device, dtype; x and y apart in memory); returns y. */
export function axpy(y: Tensor, x: Tensor, alpha = 1): Tensor {
  native.axpy(storage(y), storage(x), alpha);
  return y;
}

/** x *= alpha in place; returns x. */
export function scale(x: Tensor, alpha: number): Tensor {
  native.scale(storage(x), alpha);
  return x;
}
