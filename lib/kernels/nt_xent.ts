// nt_xent.ts: NT-Xent (SimCLR) between two views, fused with its gradients. Native:
// native/cpu/nt_xent.cpp.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

/** z0, z1 [B, E] (normalised inside) → { loss, dZ0, dZ1 }: mean CE over the 2B anchors. */
export function ntXent(z0: Tensor, z1: Tensor, temperature: number) {
  const [loss, dZ0, dZ1] = native.ntXent(storage(z0), storage(z1), temperature);
  return { loss, dZ0: new Tensor(dZ0), dZ1: new Tensor(dZ1) };
}
