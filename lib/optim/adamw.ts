// adamw.ts: AdamW over a model's parameter arena (one native call per group: weight decay on
// matrices, and on norms, biases, tokens and scales only with decayAll), with the learning-rate schedule
// (linear warm-up, then cosine) and clipping by the global gradient norm.
import * as kernels from '../kernels/index.js';
import type { Param, ParamArena } from '../nn/module.js';
import { like, type Tensor } from '../tensor.js';

export interface AdamWConfig {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** weight decay on every trainable parameter (one group, MAMA.md §5), not on the decay group only */
  decayAll?: boolean;
  /** clip the global gradient norm to this (off when undefined) */
  maxGradNorm?: number;
}

/** Linear warm-up for `warmup` steps, then cosine from lr down to minLr at `total`. */
export function warmupCosine(step: number, o: { lr: number; warmup: number; total: number; minLr?: number }): number {
  const min = o.minLr ?? 0;
  if (step < o.warmup) return (o.lr * (step + 1)) / o.warmup;
  const t = Math.min(1, (step - o.warmup) / Math.max(1, o.total - o.warmup));
  return min + 0.5 * (o.lr - min) * (1 + Math.cos(Math.PI * t));
}

// The f32 gradients an update reads: the arena's own, or (16-bit gradients) an f32 copy made
// into `scratch` once per step.
function f32Grads(arena: ParamArena, scratch: Tensor | null): Tensor {
  return scratch ? kernels.cast(arena.grads, 'f32', scratch) : arena.grads;
}

export class AdamW {
  /** the moments of the trainable parameters, on the arena's device ([trainable.length], f32) */
  readonly m: Tensor;
  readonly v: Tensor;
  step = 0;
  // values[0 .. trainable.length): the f32 arena the moments and gradients line up with.
  private readonly params: Tensor;
  private readonly g32: Tensor | null;
  constructor(readonly arena: ParamArena, readonly cfg: AdamWConfig) {
    this.m = like(arena.grads, undefined, { fill: 0, dtype: 'f32' });
    this.v = like(arena.grads, undefined, { fill: 0, dtype: 'f32' });
    this.g32 = arena.grads.dtype === 'f32' ? null : like(arena.grads, undefined, { dtype: 'f32' });
    this.params = arena.trainableValues();
  }

  /** The global L2 norm of the trainable gradients (one value read back from the device). */
  gradNorm(): number {
    return this.arena.trainable.length ? Math.sqrt(kernels.sumSquares(this.arena.grads)) : 0;
  }

  // Steps each parameter sat out (update's skip): its own step count, for the bias correction,
  // is the optimizer's less these, as torch.optim.AdamW keeps a step per parameter.
  private readonly idle = new Map<Param, number>();

  /** Steps a parameter was skipped (checkpoints save these with the moments). */
  idleSteps(p: Param): number {
    return this.idle.get(p) ?? 0;
  }
  setIdleSteps(p: Param, n: number): void {
    if (!(Number.isInteger(n) && n >= 0 && n <= this.step)) throw new RangeError(`AdamW: idle steps must be an integer in [0, ${this.step}], got ${n}`);
    if (n) this.idle.set(p, n);
    else this.idle.delete(p);
  }

  /**
   * One update with learning rate lr (default cfg.lr); returns the gradient norm before clipping.
   * `skip`: parameters left exactly as they are this step — no decay, no moment update — as
   * torch.optim.AdamW leaves a parameter whose grad is None (a head not yet in the loss).
   */
  update(lr = this.cfg.lr, skip: Param[] = []): number {
    this.step++;
    for (const p of skip) this.idle.set(p, this.idleSteps(p) + 1);
    const norm = this.gradNorm();
    const scale = this.cfg.maxGradNorm !== undefined && norm > this.cfg.maxGradNorm ? this.cfg.maxGradNorm / norm : 1;
    const common = { lr, beta1: this.cfg.beta1, beta2: this.cfg.beta2, eps: this.cfg.eps, gradScale: scale };
    const grads = f32Grads(this.arena, this.g32);
    const step = (offset: number, length: number, step: number, weightDecay: number) =>
      kernels.adamwStep(this.params, grads, this.m, this.v, { ...common, step, weightDecay, offset, length });
    const wd = this.cfg.weightDecay ?? 0;
    const groups = [[this.arena.decay, wd], [this.arena.noDecay, this.cfg.decayAll ? wd : 0]] as const;
    if (!this.idle.size) {
      for (const [range, wd] of groups) if (range.length) step(range.offset, range.length, this.step, wd);
    } else {
      // Runs of adjacent parameters with the same own step, skipped ones left out.
      const skipped = new Set(skip), layout = this.arena.layout;
      for (const [range, wd] of groups) {
        let run: { offset: number; length: number; step: number } | null = null;
        const flush = () => {
          if (run?.length) step(run.offset, run.length, run.step, wd);
          run = null;
        };
        for (const e of layout) {
          if (e.offset < range.offset || e.offset >= range.offset + range.length) continue;
          if (skipped.has(e.param)) {
            flush();
            continue;
          }
          const own = this.step - this.idleSteps(e.param);
          const r = run as { offset: number; length: number; step: number } | null;
          if (r && r.step === own && r.offset + r.length === e.offset) r.length += e.length;
          else flush(), (run = { offset: e.offset, length: e.length, step: own });
        }
        flush();
      }
    }
    this.arena.sync(this.arena.trainable);
    return norm;
  }
}

export interface SgdConfig {
  lr: number;
  momentum?: number;
  weightDecay?: number;
  /** weight decay on every trainable parameter (torch.optim.SGD over model.parameters()), not on the decay group only */
  decayAll?: boolean;
  maxGradNorm?: number;
}

/** SGD with momentum over the arena (torch.optim.SGD), decay on the decay group only unless decayAll. */
export class SGD {
  /** the momentum buffer of the trainable parameters ([trainable.length], f32) */
  readonly buf: Tensor;
  private readonly params: Tensor;
  private readonly g32: Tensor | null;
  constructor(readonly arena: ParamArena, readonly cfg: SgdConfig) {
    this.buf = like(arena.grads, undefined, { fill: 0, dtype: 'f32' });
    this.g32 = arena.grads.dtype === 'f32' ? null : like(arena.grads, undefined, { dtype: 'f32' });
    this.params = arena.trainableValues();
  }
  update(lr = this.cfg.lr): number {
    const norm = this.arena.trainable.length ? Math.sqrt(kernels.sumSquares(this.arena.grads)) : 0;
    const scale = this.cfg.maxGradNorm !== undefined && norm > this.cfg.maxGradNorm ? this.cfg.maxGradNorm / norm : 1;
    const grads = f32Grads(this.arena, this.g32);
    const wd = this.cfg.weightDecay ?? 0;
    for (const [range, d] of [[this.arena.decay, wd], [this.arena.noDecay, this.cfg.decayAll ? wd : 0]] as const)
      if (range.length)
        kernels.sgdStep(this.params, grads, this.buf, { lr, momentum: this.cfg.momentum ?? 0, weightDecay: d, gradScale: scale, offset: range.offset, length: range.length });
    this.arena.sync(this.arena.trainable);
    return norm;
  }
}
