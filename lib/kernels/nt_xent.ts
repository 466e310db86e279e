// nt_xent.ts: NT-Xent (SimCLR) between two views, fused with its gradients. Native:
// native/cpu/nt_xent.cpp.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

/**
 * z0, z1 [B, E] (normalised inside) → the mean CE over the 2B anchors as an f32 [1] tensor on
 * their device (lossTensor; `loss` reads it back) and dZ0, dZ1.
 */
export function ntXent(z0: Tensor, z1: Tensor, temperature: number) {
  const [loss, dZ0, dZ1] = native.ntXent(storage(z0), storage(z1), temperature);
  return {
    lossTensor: new Tensor(loss), get loss() { return this.lossTensor.toArray()[0]; },
    dZ0: new Tensor(dZ0), dZ1: new Tensor(dZ1),
  };
}
