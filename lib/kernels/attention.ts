// attention.ts: flash attention (softmax(scale·q·kᵀ)·v, tiled, with an online softmax) and its
// backward, which recomputes the probabilities (and their dropout mask) from the saved lse.
// Native: native/cpu/attention.cpp, native/cuda/attention.cu.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';
import type { DropoutOptions } from './dropout.js';

export interface AttentionOptions {
  /** query i sees keys j ≤ i (needs Lq = Lk) */
  causal?: boolean;
  /** logit scale; default 1/√Dh (a GPT-2 layer l that also divides by l + 1 passes 1/(√Dh·(l+1))) */
  scale?: number;
  /** Int32Array [B], each in [1, Lk]: keys at or past kvLens[b] are masked (right padding) */
  kvLens?: Int32Array | null;
  /**
   * dropout of the probabilities (Hugging Face's attn_pdrop): out = (P ⊙ Z/(1 − p))·v, Z[b,h,i,j]
   * kept or dropped as kernels.dropout would element offset + ((b·H + h)·Lq + i)·Lk + j of a
   * [B,H,Lq,Lk] tensor under seed; lse stays the undropped softmax's. The backward takes the same.
   */
  dropout?: DropoutOptions | null;
}

// The native call's p, seed, offset: p undefined means no dropout (null, a dropout without p, is refused there).
function dropArgs(d: DropoutOptions | null | undefined): [p: number | null | undefined, seed: number | undefined, offset: number | undefined] {
  return d ? [d.p ?? null, d.seed, d.offset ?? 0] : [undefined, undefined, undefined];
}

/** q [B,Lq,H,Dh], k, v [B,Lk,H,Dh] → out [B,Lq,H,Dh], lse [B,H,Lq] (natural log, f32). */
export function flashAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}) {
  const [out, lse] = native.flashAttention(storage(q), storage(k), storage(v), opts.causal ?? false, opts.scale, opts.kvLens ?? null,
    ...dropArgs(opts.dropout));
  return { out: new Tensor(out), lse: new Tensor(lse) };
}

/** The gradients of out with respect to q, k and v for dOut; masked keys get exactly 0. */
export function flashAttentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dOut: Tensor, opts: AttentionOptions = {}) {
  const [dq, dk, dv] = native.flashAttentionBackward(storage(q), storage(k), storage(v), storage(out), storage(lse), storage(dOut),
    opts.causal ?? false, opts.scale, opts.kvLens ?? null, ...dropArgs(opts.dropout));
  return { dq: new Tensor(dq), dk: new Tensor(dk), dv: new Tensor(dv) };
}
