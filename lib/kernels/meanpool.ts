// meanpool.ts: mean over the token axis. Native: native/cpu/meanpool.cpp.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

/** x [B,L,D] → [B,D]. */
export function meanPool(x: Tensor): Tensor {
  return new Tensor(native.meanPool(storage(x)));
}

/** dy [B,D] → dx [B,L,D] = dy/L on every token. */
export function meanPoolBackward(dy: Tensor, L: number): Tensor {
  return new Tensor(native.meanPoolBackward(storage(dy), L));
}
