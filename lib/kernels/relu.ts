// relu.ts: max(x, 0) and its backward. Native: native/cpu/relu.cpp.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

export function relu(x: Tensor): Tensor {
  return new Tensor(native.relu(storage(x)));
}

/** dy where x > 0, else 0. */
export function reluBackward(dy: Tensor, x: Tensor): Tensor {
  return new Tensor(native.reluBackward(storage(dy), storage(x)));
}
