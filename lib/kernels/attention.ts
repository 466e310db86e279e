// attention.ts: flash attention (softmax(scale·q·kᵀ)·v, tiled, with an online softmax) and its
// backward, which recomputes the probabilities from the saved lse. Native:
// native/cpu/attention.cpp, native/cuda/attention.cu.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

export interface AttentionOptions {
  /** query i sees keys j ≤ i (needs Lq = Lk) */
  causal?: boolean;
  /** logit scale; default 1/√Dh (a GPT-2 layer l that also divides by l + 1 passes 1/(√Dh·(l+1))) */
  scale?: number;
  /** Int32Array [B], each in [1, Lk]: keys at or past kvLens[b] are masked (right padding) */
  kvLens?: Int32Array | null;
}

/** q [B,Lq,H,Dh], k, v [B,Lk,H,Dh] → out [B,Lq,H,Dh], lse [B,H,Lq] (natural log, f32). */
export function flashAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}) {
  const [out, lse] = native.flashAttention(storage(q), storage(k), storage(v), opts.causal ?? false, opts.scale, opts.kvLens ?? null);
  return { out: new Tensor(out), lse: new Tensor(lse) };
}

/** The gradients of out with respect to q, k and v for dOut; masked keys get exactly 0. */
export function flashAttentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dOut: Tensor, opts: AttentionOptions = {}) {
  const [dq, dk, dv] = native.flashAttentionBackward(storage(q), storage(k), storage(v), storage(out), storage(lse), storage(dOut),
    opts.causal ?? false, opts.scale, opts.kvLens ?? null);
  return { dq: new Tensor(dq), dk: new Tensor(dk), dv: new Tensor(dv) };
}
