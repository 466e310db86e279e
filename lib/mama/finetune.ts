// finetune.ts: MAMA.md §6's protocols on augmented images: a new Linear(D→C) head on the pooled
// pre-norm image feature, trained by SGD (momentum, weight decay on every parameter, linear
// warm-up then cosine to lrMin) on batches drawn class-balanced with replacement from a random
// (not stratified) share of the training labels; every step's images are freshly augmented
// (§4's training transform) and go through the image encoder, which is either frozen (the
// authors' linear probe) or trains (full fine-tune, on a copy: the caller's model is untouched).
// Tests: test/mama/finetune.test.ts.
import { availableParallelism } from 'node:os';
import * as ops from '../autograd/ops.js';
import { backward, noGrad } from '../autograd/tape.js';
import { ImagePool } from '../data/loader.js';
import { mulberry, shuffle } from '../data/rand.js';
import * as kernels from '../kernels/index.js';
import { Linear } from '../nn/layers.js';
import { InitRng, Module, ParamArena } from '../nn/module.js';
import { VisionTransformer } from '../nn/vit.js';
import { SGD, warmupCosine } from '../optim/adamw.js';
import type { Mama } from './model.js';

/** An image and its class. */
export interface Labelled {
  path: string;
  label: number;
}

export interface HeadOptions {
  /**
   * 'frozen': the caller's encoder, in evaluation mode under noGrad (the authors' linear probe);
   * 'train': a copy of it trains with the head (full fine-tune; the final LayerNorm stays frozen
   * and unused). The ViT has neither dropout nor BatchNorm, so its mode changes nothing.
   */
  encoder: 'frozen' | 'train';
  /** share of the training labels, drawn at random over all images, not per class (default 1) */
  fraction?: number;
  /** SGD steps (MAMA.md §6: 8000) */
  steps?: number;
  /** images per step (MAMA.md §6: 72, 36 per GPU × 2) */
  batch?: number;
  /** linear warm-up steps (100), then cosine from lr to lrMin at `steps` */
  warmup?: number;
  /** peak learning rate (5e-4) */
  lr?: number;
  /** the learning rate the cosine ends at (1e-5) */
  lrMin?: number;
  /** SGD momentum (0.9) */
  momentum?: number;
  /** weight decay on every trainable parameter, biases and norms included (1e-3) */
  weightDecay?: number;
  seed?: number;
  /** decoder threads when no pool is given (default: the CPUs less one) */
  workers?: number;
  /** an image pool to share across calls (its decode cache stays warm); otherwise one is made and closed */
  pool?: ImagePool;
  /** ColorJitter's probability in the training transform of a pool made here (default 0.8, the authors') */
  jitter?: number;
  log?: (line: string) => void;
}

/** The paper's settings (MAMA.md §6) for what HeadOptions leaves out. */
export const HEAD_DEFAULTS = { fraction: 1, steps: 8000, batch: 72, warmup: 100, lr: 5e-4, lrMin: 1e-5, momentum: 0.9, weightDecay: 1e-3, seed: 0 };

export interface HeadResult {
  /** the test rows scored (an unreadable image is skipped): their index in `test`, label, predicted class and softmax probabilities */
  index: number[];
  labels: number[];
  pred: number[];
  probs: number[][];
  /** the mean cross-entropy of each step's batch */
  losses: number[];
  /** the training rows drawn from (indices into `train`) */
  subset: number[];
  /** the trained copy of the encoder ('train'), else null */
  encoder: VisionTransformer | null;
  head: Linear;
}

/** round(n·fraction) of the n rows (at least one), drawn at random: not stratified, so a rare class may be left out. */
export function randomSubset(n: number, fraction: number, rand: () => number): number[] {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`randomSubset: fraction must be in (0, 1], got ${fraction}`);
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`randomSubset: n must be an integer ≥ 1, got ${n}`);
  return shuffle(Array.from({ length: n }, (_, i) => i), rand).slice(0, Math.max(1, Math.round(n * fraction)));
}

/**
 * `count` rows of `subset` drawn with replacement, each with weight 1/(its class's count in the
 * subset), as torch's WeightedRandomSampler with those weights: every class present is equally
 * likely, and within a class every row. Drawn as a class, then a row of it.
 */
export function balancedDraw(labels: ArrayLike<number>, subset: number[], count: number, rand: () => number): number[] {
  const byClass = new Map<number, number[]>();
  for (const i of subset) (byClass.get(labels[i]) ?? byClass.set(labels[i], []).get(labels[i])!).push(i);
  const pools = [...byClass.values()];
  return Array.from({ length: count }, () => {
    const pool = pools[Math.floor(rand() * pools.length)];
    return pool[Math.floor(rand() * pool.length)];
  });
}

/** The learning rate of a step: linear warm-up to lr, then cosine to lrMin at `steps`. */
export function headLr(step: number, o: { steps: number; warmup: number; lr: number; lrMin: number }): number {
  return warmupCosine(step, { lr: o.lr, warmup: o.warmup, total: o.steps, minLr: o.lrMin });
}

// The trained parameters: the head, and in fine-tune the encoder copy (its HF names under image_encoder).
class HeadNet extends Module {
  constructor(readonly encoder: VisionTransformer | null, readonly head: Linear) {
    super();
    if (encoder) this.child('image_encoder', encoder);
    this.child('head', head);
  }
}

// A new ViT holding `src`'s values (read to the host; set as its initial values before its arena exists).
function encoderCopy(src: VisionTransformer): VisionTransformer {
  const vit = new VisionTransformer(src.cfg);
  vit.checkpointBlocks = src.checkpointBlocks;
  const from = new Map(src.namedParameters());
  for (const [name, p] of vit.namedParameters()) {
    const s = from.get(name)!;
    p.init.set((s.master ?? s.value).toArray());
  }
  // MAMA.md §2: the final LayerNorm is frozen (the head reads the pooled feature before it).
  vit.norm.weight.requiresGrad = vit.norm.bias.requiresGrad = false;
  return vit;
}

function checkOptions(o: Required<Omit<HeadOptions, 'workers' | 'pool' | 'log' | 'jitter'>>, train: Labelled[], test: Labelled[], classes: number): void {
  if (o.encoder !== 'frozen' && o.encoder !== 'train') throw new RangeError(`trainHead: encoder must be frozen or train, got ${o.encoder}`);
  for (const k of ['steps', 'batch'] as const) if (!(Number.isInteger(o[k]) && o[k] >= 1)) throw new RangeError(`trainHead: ${k} must be an integer ≥ 1, got ${o[k]}`);
  for (const k of ['warmup', 'seed'] as const) if (!(Number.isInteger(o[k]) && o[k] >= 0)) throw new RangeError(`trainHead: ${k} must be an integer ≥ 0, got ${o[k]}`);
  for (const k of ['lr', 'lrMin', 'momentum', 'weightDecay'] as const) if (!(o[k] >= 0 && Number.isFinite(o[k]))) throw new RangeError(`trainHead: ${k} must be a finite number ≥ 0, got ${o[k]}`);
  if (!(o.fraction > 0 && o.fraction <= 1)) throw new RangeError(`trainHead: fraction must be in (0, 1], got ${o.fraction}`);
  if (!(Number.isInteger(classes) && classes >= 2)) throw new RangeError(`trainHead: classes must be an integer ≥ 2, got ${classes}`);
  if (!train.length) throw new RangeError('trainHead: no training images');
  for (const [set, what] of [[train, 'training'], [test, 'test']] as const)
    set.forEach((t, i) => {
      if (!(Number.isInteger(t.label) && t.label >= 0 && t.label < classes)) throw new RangeError(`trainHead: label ${t.label} of ${what} image ${i} is not in [0, ${classes})`);
    });
}

/**
 * Trains a Linear(D→C) head (PyTorch's init: U(±1/√D)) on `model`'s image encoder as MAMA.md §6
 * says, then scores `test` (test transform, evaluation mode). Runs on the model's device and
 * dtype; seeded: the subset, the draws and every augmentation follow `seed`.
 */
export async function trainHead(model: Mama, train: Labelled[], test: Labelled[], classes: number, opts: HeadOptions): Promise<HeadResult> {
  const o = { ...HEAD_DEFAULTS, ...(Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as HeadOptions) };
  checkOptions(o, train, test, classes);
  const rand = mulberry(o.seed);
  const subset = randomSubset(train.length, o.fraction, rand), labels = train.map((t) => t.label);
  const D = model.cfg.vit.width, S = model.cfg.vit.imageSize, fine = o.encoder === 'train';
  const encoder = fine ? encoderCopy(model.image) : null;
  const head = new Linear(D, classes, new InitRng(o.seed + 1));
  const bound = 1 / Math.sqrt(D), init = new InitRng(o.seed + 2);
  head.weight.init.set(init.uniform(classes * D, bound)), head.bias!.init.set(init.uniform(classes, bound));
  const arena = new ParamArena(new HeadNet(encoder, head), { device: model.device, dtype: model.dtype });
  const opt = new SGD(arena, { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay, decayAll: true });
  const pool = o.pool ?? new ImagePool(o.workers ?? Math.max(1, availableParallelism() - 1), undefined, o.jitter);
  const unreadable = new Map<string, string>();
  const load = (l: Labelled, seed: number | null) =>
    pool.load(l.path, S, seed).catch((e: Error) => (unreadable.set(l.path, e.message), null));
  // A step's rows and augmentation seeds are drawn in step order, so a run repeats whatever the decode timing.
  const draw = async () => {
    const rows = balancedDraw(labels, subset, o.batch, rand), seeds = rows.map(() => Math.floor(rand() * 2 ** 31));
    const px = await Promise.all(rows.map((r, k) => load(train[r], seeds[k])));
    const ok = rows.filter((_, k) => px[k]);
    if (!ok.length) throw new Error(`trainHead: no image of a batch could be read: ${[...unreadable.values()][0]}`);
    const images = new Float32Array(ok.length * S * S); // [B·S·S]
    px.filter((p) => p).forEach((p, k) => images.set(p!, k * S * S));
    return { images, y: Int32Array.from(ok, (r) => labels[r]) };
  };
  const was = model.training, losses: number[] = [];
  const enc = encoder ?? model.image;
  let ahead: ReturnType<typeof draw> | null = null;
  try {
    model.training = false;
    if (encoder) encoder.training = true;
    ahead = draw();
    for (let step = 0; step < o.steps; step++) {
      const b = await ahead!;
      ahead = step + 1 < o.steps ? draw() : null;
      arena.zeroGrad();
      const x = model.imageTensor(b.images); // [B, C, S, S]
      const pooled = fine ? ops.meanPool(enc.forward(x).hidden) : noGrad(() => ops.meanPool(enc.forward(x).hidden)); // [B, D]
      const logits = head.forward(pooled); // [B, C]
      const ce = kernels.softmaxCrossEntropy(logits.value, b.y);
      backward(logits, kernels.softmaxCrossEntropyBackward(logits.value, ce.lse, b.y));
      for (const t of [ce.losses, ce.lse, logits.value, x]) t.dispose();
      if (!fine) pooled.value.dispose();
      if (!Number.isFinite(ce.loss)) throw new Error(`trainHead: the loss is ${ce.loss} at step ${step + 1}; try a lower lr (now ${o.lr})`);
      opt.update(headLr(step, o));
      losses.push(ce.loss);
      if (o.log && ((step + 1) % 100 === 0 || step + 1 === o.steps)) o.log(`  step ${step + 1}/${o.steps} loss ${ce.loss.toFixed(4)}\n`);
    }
    // The test images, test transform, evaluation mode.
    enc.training = false;
    const out: HeadResult = { index: [], labels: [], pred: [], probs: [], losses, subset, encoder, head };
    for (let i0 = 0; i0 < test.length; i0 += 32) {
      const rows = test.slice(i0, i0 + 32).map((_, k) => i0 + k);
      const px = await Promise.all(rows.map((r) => load(test[r], null)));
      const ok = rows.filter((_, k) => px[k]);
      if (!ok.length) continue;
      const images = new Float32Array(ok.length * S * S);
      px.filter((p) => p).forEach((p, k) => images.set(p!, k * S * S));
      const x = model.imageTensor(images);
      const logits = noGrad(() => head.forward(ops.meanPool(enc.forward(x).hidden))); // [n, C]
      const z = logits.value.toArray();
      logits.dispose(), x.dispose();
      ok.forEach((r, k) => {
        const p = softmax(z.subarray(k * classes, (k + 1) * classes));
        out.index.push(r), out.labels.push(test[r].label), out.probs.push(p), out.pred.push(argmax(p));
      });
    }
    return out;
  } finally {
    model.training = was;
    await ahead?.catch(() => null);
    if (!o.pool) await pool.close();
  }
}

/** Class probabilities of logits z (max-shifted). */
export function softmax(z: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(z)), e = Array.from(z, (v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** The index of v's largest entry (the first of ties). */
export function argmax(v: ArrayLike<number>): number {
  let k = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[k]) k = i;
  return k;
}
