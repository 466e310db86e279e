// axpy.ts: y += alpha·x and x *= alpha in place: gradient accumulation and scaling without a
// temporary. Native: native/cpu/axpy.cpp, native/cuda/axpy.cu.
import { native } from '../native.js';
import { storage, type Tensor } from '../tensor.js';

/**
 * y += alpha·x in place (same shape and device, x and y apart in memory; the same dtype, or a
 * 16-bit x into an f32 y: mixed-precision gradient accumulation); returns y.
 */
export function axpy(y: Tensor, x: Tensor, alpha = 1): Tensor {
  native.axpy(storage(y), storage(x), alpha);
  return y;
}

/**
 * x *= alpha in place; returns x. alpha may be an f32 [1] tensor on x's device (read there: an
 * upstream gradient scales a saved one without coming to the host).
 */
export function scale(x: Tensor, alpha: number | Tensor): Tensor {
  native.scale(storage(x), typeof alpha === 'number' ? alpha : storage(alpha));
  return x;
}
