// optim.ts: stateless optimizer steps over flat f32 arenas (one native call per step or per
// parameter group) and the squared norm for clipping. Native: native/cpu/adamw.cpp, sgd.cpp,
// sumsq.cpp.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

export interface Range {
  /** first element of the group inside the arena (default 0) */
  offset?: number;
  /** elements in the group (default: to the end) */
  length?: number;
}

export interface AdamWOptions extends Range {
  lr: number;
  /** 1-based step count, for the bias corrections 1 − β^t */
  step: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** multiplies the gradients first (global-norm clipping, loss scaling); default 1 */
  gradScale?: number;
}

/** One AdamW step (torch.optim.AdamW semantics) on params, in place; m and v are its moments. */
export function adamwStep(params: Tensor, grads: Tensor, m: Tensor, v: Tensor, o: AdamWOptions): void {
  const b1 = o.beta1 ?? 0.9, b2 = o.beta2 ?? 0.999;
  if (!Number.isInteger(o.step) || o.step < 1) throw new RangeError(`adamwStep: step must be an integer ≥ 1, got ${o.step}`);
  native.adamw(storage(params), storage(grads), storage(m), storage(v), o.lr, b1, b2, o.eps ?? 1e-8, o.weightDecay ?? 0.01,
    1 - b1 ** o.step, 1 - b2 ** o.step, o.gradScale ?? 1, o.offset, o.length);
}

export interface SgdOptions extends Range {
  lr: number;
  momentum?: number;
  weightDecay?: number;
  gradScale?: number;
}

/** One SGD step (torch.optim.SGD without dampening or Nesterov), in place. */
export function sgdStep(params: Tensor, grads: Tensor, momentumBuffer: Tensor | null, o: SgdOptions): void {
  native.sgd(storage(params), storage(grads), momentumBuffer && storage(momentumBuffer), o.lr, o.momentum ?? 0,
    o.weightDecay ?? 0, o.gradScale ?? 1, o.offset, o.length);
}

/** Σ x² (double accumulation). */
export function sumSquares(x: Tensor): number {
  return native.sumSquares(storage(x));
}

/** √(Σ over tensors of Σ x²): the global gradient norm for clipping. */
export function globalNorm(tensors: Tensor[]): number {
  let s = 0;
  for (const t of tensors) s += sumSquares(t);
  return Math.sqrt(s);
}
