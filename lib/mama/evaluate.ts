// evaluate.ts: MAMA.md §6: zero-shot classification with per-image meta prompts, a linear
// probe on frozen pooled features (SGD, class-balanced sampling, 1/10/100 % of the labels),
// balanced accuracy and macro one-vs-rest AUC, and evaluate(), which runs them all on a split.
import { availableParallelism } from 'node:os';
import { noGrad } from '../autograd/tape.js';
import type { EmbedImage } from '../data/embed.js';
import { ImagePool, Loader } from '../data/loader.js';
import { zeroShotPrompts, type StudyFields } from '../data/report.js';
import type { CaptionTokenizer } from '../data/tokenizer.js';
import { mulberry, shuffle } from '../data/rand.js';
import { ParamArena } from '../nn/module.js';
import { Mama, type TextPooling } from './model.js';
import { argmax, softmax, trainHead, type HeadOptions, type HeadResult, type Labelled } from './finetune.js';

/** Mean over classes present of the per-class recall. */
export function balancedAccuracy(labels: ArrayLike<number>, pred: ArrayLike<number>, classes: number): number {
  const tp = new Float64Array(classes), n = new Float64Array(classes);
  for (let i = 0; i < labels.length; i++) (n[labels[i]] += 1), (tp[labels[i]] += pred[i] === labels[i] ? 1 : 0);
  let s = 0, k = 0;
  for (let c = 0; c < classes; c++) if (n[c]) (s += tp[c] / n[c]), k++;
  return k ? s / k : 0;
}

/** Macro one-vs-rest ROC AUC over classes with both positives and negatives (ties count ½). */
export function macroAuc(labels: ArrayLike<number>, scores: ArrayLike<number>[], classes: number): number {
  let s = 0, k = 0;
  for (let c = 0; c < classes; c++) {
    const pos: number[] = [], neg: number[] = [];
    for (let i = 0; i < labels.length; i++) (labels[i] === c ? pos : neg).push(scores[i][c]);
    if (!pos.length || !neg.length) continue;
    neg.sort((a, b) => a - b);
    let auc = 0;
    for (const p of pos) {
      let lo = 0, hi = neg.length;
      while (lo < hi) (neg[(lo + hi) >> 1] < p ? (lo = ((lo + hi) >> 1) + 1) : (hi = (lo + hi) >> 1));
      let eq = lo;
      while (eq < neg.length && neg[eq] === p) eq++;
      auc += lo + 0.5 * (eq - lo);
    }
    s += auc / (pos.length * neg.length), k++;
  }
  return k ? s / k : 0;
}

/**
 * Binary sensitivity (recall of class 1) and specificity (recall of class 0) of predictions;
 * NaN where the labels have no positives (sensitivity) or no negatives (specificity).
 */
export function sensitivitySpecificity(labels: ArrayLike<number>, pred: ArrayLike<number>): { sensitivity: number; specificity: number } {
  if (labels.length !== pred.length) throw new RangeError(`sensitivitySpecificity: ${labels.length} labels but ${pred.length} predictions`);
  let tp = 0, p = 0, tn = 0, n = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i], q = pred[i];
    if ((y !== 0 && y !== 1) || (q !== 0 && q !== 1)) throw new RangeError(`sensitivitySpecificity: row ${i} has label ${y} and prediction ${q}; both must be 0 or 1`);
    if (y === 1) (p += 1), (tp += q);
    else (n += 1), (tn += 1 - q);
  }
  return { sensitivity: p ? tp / p : NaN, specificity: n ? tn / n : NaN };
}

export interface Features {
  /** [N, E] global image features (unit rows) */
  image: Float32Array[];
  /** [N, D] pooled encoder features, for the linear probe */
  pooled: Float32Array[];
  index: number[];
}

/** Image features of every image the loader yields (evaluation mode). */
export async function imageFeatures(model: Mama, loader: Loader): Promise<Features> {
  return (await featuresOfModels([model], loader))[0];
}

/** The same, for several models in one pass over the loader (each image decoded once). */
export async function featuresOfModels(models: Mama[], loader: Loader): Promise<Features[]> {
  const was = models.map((m) => m.training);
  for (const m of models) m.training = false;
  try {
    const outs: Features[] = models.map(() => ({ image: [], pooled: [], index: [] }));
    for await (const b of loader.epoch(0)) {
      models.forEach((model, k) => {
        const f = encodeImageRows(model, b.images), out = outs[k];
        out.image.push(...f.image), out.pooled.push(...f.pooled), out.index.push(...b.index);
      });
    }
    return outs;
  } finally {
    models.forEach((m, k) => (m.training = was[k]));
  }
}

/** Global features [N][E] (unit rows) and pooled features [N][D] of N preprocessed images [N·S·S]. */
export function encodeImageRows(model: Mama, px: Float32Array): { image: Float32Array[]; pooled: Float32Array[] } {
  const x = model.imageTensor(px);
  const r = noGrad(() => {
    const f = model.encodeImage(x);
    return { v: f.v, pooled: f.pooled };
  });
  const N = r.v.shape[0], E = r.v.shape[1], D = r.pooled.shape[1], v = r.v.value.toArray(), p = r.pooled.value.toArray();
  r.v.dispose(), r.pooled.dispose(), x.dispose();
  return {
    image: Array.from({ length: N }, (_, i) => v.slice(i * E, (i + 1) * E)),
    pooled: Array.from({ length: N }, (_, i) => p.slice(i * D, (i + 1) * D)),
  };
}

export type Task = 'density' | 'birads';
export const TASK_CLASSES: Record<Task, number> = { density: 4, birads: 7 };

/** The class index of an image for a task (density 1–4 → 0–3; BI-RADS 0–6). */
export function taskLabel(im: EmbedImage, task: Task): number {
  return task === 'density' ? im.fields.density - 1 : im.fields.birads;
}

export interface ZeroShotOptions {
  maxTokens: number;
  /** 'mean' as in training (default) or the authors' 'first-pad' */
  pooling?: TextPooling;
  /** prompts per text-encoder call (default 64) */
  batch?: number;
}

/**
 * Zero-shot: each image against its own prompts, one per class; score = s·⟨v, t⟩ with
 * s = exp(logit_scale), softmax over the classes (the probabilities are what AUC ranks).
 */
export function zeroShot(model: Mama, tok: CaptionTokenizer, images: EmbedImage[], f: Features, task: Task, o: ZeroShotOptions) {
  const own = f.index.map((i) => images[i]);
  const probs = zeroShotProbs(model, tok, own.map((im) => im.fields), f.image, task, o);
  return { labels: own.map((im) => taskLabel(im, task)), pred: probs.map(argmax), probs };
}

/** The zero-shot class probabilities [N][C] of images with global features `image` [N][E] and meta fields `fields`. */
export function zeroShotProbs(model: Mama, tok: CaptionTokenizer, fields: StudyFields[], image: Float32Array[], task: Task, o: ZeroShotOptions): number[][] {
  const C = TASK_CLASSES[task], L = o.maxTokens, per = Math.max(1, Math.floor((o.batch ?? 64) / C));
  const scale = Math.exp(model.logitScale.value.toArray()[0]);
  const probs: number[][] = [];
  for (let i0 = 0; i0 < image.length; i0 += per) {
    const n = Math.min(per, image.length - i0), ids = new Int32Array(n * C * L), lens = new Int32Array(n * C);
    for (let i = 0; i < n; i++) {
      zeroShotPrompts(fields[i0 + i], task).forEach((p, c) => {
        const e = tok.encode(p, L);
        ids.set(e.ids, (i * C + c) * L), (lens[i * C + c] = e.length);
      });
    }
    const was = model.training;
    model.training = false; // the prompts without dropout
    const t = noGrad(() => model.encodeText(ids, lens, o.pooling).t);
    model.training = was;
    const tv = t.value.toArray(), E = t.shape[1];
    t.dispose();
    for (let i = 0; i < n; i++) {
      const v = image[i0 + i];
      const z = Array.from({ length: C }, (_, c) => {
        let d = 0;
        for (let e = 0; e < E; e++) d += v[e] * tv[(i * C + c) * E + e];
        return scale * d;
      });
      probs.push(softmax(z));
    }
  }
  return probs;
}

export { argmax } from './finetune.js';

export interface ProbeOptions {
  /** share of the training labels used, per class (at least one image of each class present) */
  fraction?: number;
  seed?: number;
  /** SGD steps (MAMA.md §6: 8000) */
  steps?: number;
  /** images per step, drawn class-balanced (default 32) */
  batch?: number;
  /** 'balanced' (default): each step draws `batch` images class-balanced; 'full': every step takes the whole subset */
  sampler?: 'balanced' | 'full';
  /** peak learning rate, cosine to 0 (5e-4) */
  lr?: number;
  momentum?: number;
  weightDecay?: number;
}

/**
 * Linear probe (MAMA.md §6): a new Linear(D→C) on frozen features, cross-entropy, SGD with
 * momentum and weight decay (PyTorch's form), cosine learning rate, on a class-stratified
 * `fraction` of the training set; each step's images are drawn class-balanced (a class uniformly,
 * then an image of it), as a weighted sampler would. Seeded; returns test predictions and
 * softmax probabilities.
 */
export function linearProbe(train: { x: Float32Array[]; y: number[] }, test: { x: Float32Array[] }, classes: number, o: ProbeOptions = {}) {
  const fraction = o.fraction ?? 1, steps = o.steps ?? 8000, B = o.batch ?? 32, lr0 = o.lr ?? 5e-4, mu = o.momentum ?? 0.9, wd = o.weightDecay ?? 1e-3;
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`linearProbe: fraction must be in (0, 1], got ${fraction}`);
  if (!train.x.length) throw new RangeError('linearProbe: no training features');
  const rand = mulberry(o.seed ?? 0);
  const byClass = Array.from({ length: classes }, () => [] as number[]);
  train.y.forEach((y, i) => {
    if (!(y >= 0 && y < classes)) throw new RangeError(`linearProbe: label ${y} of row ${i} is not in [0, ${classes})`);
    byClass[y].push(i);
  });
  // The subset: the same share of every class, shuffled with the seed.
  const pools = byClass.filter((l) => l.length).map((l) => shuffle(l.slice(), rand).slice(0, Math.max(1, Math.round(l.length * fraction))));
  const D = train.x[0].length, W = new Float64Array(classes * (D + 1)), G = new Float64Array(W.length), M = new Float64Array(W.length);
  const logits = (x: Float32Array, z: Float64Array) => {
    for (let c = 0; c < classes; c++) {
      const w = c * (D + 1);
      let s = W[w + D];
      for (let d = 0; d < D; d++) s += W[w + d] * x[d];
      z[c] = s;
    }
    return z;
  };
  const z = new Float64Array(classes), full = o.sampler === 'full', subset = pools.flat(), n = full ? subset.length : B;
  for (let step = 0; step < steps; step++) {
    G.fill(0);
    for (let b = 0; b < n; b++) {
      const pool = full ? null : pools[Math.floor(rand() * pools.length)];
      const i = pool ? pool[Math.floor(rand() * pool.length)] : subset[b], x = train.x[i];
      logits(x, z);
      let m = -Infinity, sum = 0;
      for (let c = 0; c < classes; c++) m = Math.max(m, z[c]);
      for (let c = 0; c < classes; c++) sum += (z[c] = Math.exp(z[c] - m));
      for (let c = 0; c < classes; c++) {
        const g = (z[c] / sum - (c === train.y[i] ? 1 : 0)) / n, w = c * (D + 1);
        for (let d = 0; d < D; d++) G[w + d] += g * x[d];
        G[w + D] += g;
      }
    }
    const lr = lr0 * 0.5 * (1 + Math.cos((Math.PI * step) / steps));
    for (let k = 0; k < W.length; k++) {
      M[k] = mu * M[k] + G[k] + wd * W[k];
      W[k] -= lr * M[k];
    }
  }
  const probs = test.x.map((x) => softmax(Array.from(logits(x, z))));
  return { pred: probs.map(argmax), probs };
}

export interface EvalOptions {
  imageSize: number;
  maxTokens: number;
  /** the split scored (default 'test'); probes train on 'train' */
  split?: 'test' | 'val';
  pooling?: TextPooling;
  /** probe settings (fraction and seed are set per row) */
  probe?: Omit<ProbeOptions, 'fraction'>;
  /** the tasks scored (default both) */
  tasks?: Task[];
  /** add the random-init linear-probe row (default true) */
  randomRow?: boolean;
  seed?: number;
  workers?: number;
  /** a loader over the scored split's images in their order (test transform), kept open by the caller across calls */
  loader?: Loader;
  log?: (line: string) => void;
  /**
   * the linear probe's protocol: 'cached' (default: features computed once with the test
   * transform, linearProbe) or 'authors' (MAMA.md §6: augmented images through the frozen
   * encoder every step, finetune.ts); the same keys either way
   */
  probeProtocol?: ProbeProtocol;
  /** settings of the authors' probe (the paper's where left out) */
  authorsProbe?: HeadSettings;
  /** ColorJitter's probability in the training transform of the augmented-image protocols (the run's; default 0.8) */
  jitter?: number;
  /** add the full fine-tune rows finetune{1,10,100}_{task} and random_finetune100_{task} (finetune.ts) */
  finetune?: boolean;
  finetuneOptions?: HeadSettings;
}

export type ProbeProtocol = 'cached' | 'authors';
/** What a caller sets of a head's training (encoder, fraction and pool are set per row; the pool's jitter is EvalOptions.jitter). */
export type HeadSettings = Omit<HeadOptions, 'encoder' | 'fraction' | 'pool' | 'log' | 'workers' | 'jitter'>;

/** A loader over `set` in order with the test transform (no augmentation), as evaluate reads images. */
export function evalLoader(set: EmbedImage[], tok: CaptionTokenizer, o: Pick<EvalOptions, 'imageSize' | 'maxTokens' | 'workers'>): Loader {
  return new Loader(set, tok, { size: o.imageSize, batch: 32, seed: 0, train: false, maxTokens: o.maxTokens, workers: o.workers });
}

/** Features of a set of images through each model (test transform, no augmentation). */
async function featuresOf(models: Mama[], tok: CaptionTokenizer, set: EmbedImage[], o: EvalOptions): Promise<Features[]> {
  const l = evalLoader(set, tok, o);
  try {
    return await featuresOfModels(models, l);
  } finally {
    await l.close();
  }
}

/**
 * Zero-shot density and BI-RADS on a split; with `probe`, the linear probe at 1, 10 and 100 %
 * of the training labels and (randomRow) the same probe on a randomly initialised image encoder;
 * with `finetune`, the full fine-tune rows likewise.
 * Keys: zeroshot_{task}_{bacc,auc}, probe{1,10,100}_{task}_{bacc,auc}, random_probe100_{task}_{bacc,auc},
 * finetune{1,10,100}_{task}_{bacc,auc}, random_finetune100_{task}_{bacc,auc}.
 */
export async function evaluate(model: Mama, tok: CaptionTokenizer, images: EmbedImage[], o: EvalOptions & { probes?: boolean }): Promise<Record<string, number>> {
  const log = o.log ?? (() => {});
  const split = o.split ?? 'test', seed = o.seed ?? 0;
  const test = images.filter((i) => i.split === split), train = images.filter((i) => i.split === 'train');
  if (!test.length) throw new RangeError(`evaluate: the ${split} split has no images`);
  if (o.probeProtocol !== undefined && o.probeProtocol !== 'cached' && o.probeProtocol !== 'authors') throw new RangeError(`evaluate: probeProtocol must be cached or authors, got ${o.probeProtocol}`);
  const m: Record<string, number> = {};
  // The comparison row: the same image encoder at a random initialisation. Its features come
  // from the same passes over the images as the model's.
  const probes = o.probes !== false, withRandom = probes && (o.randomRow ?? true);
  const models = withRandom ? [model, randomLike(model, seed)] : [model];
  log(`features of ${test.length} ${split} images …\n`);
  if (o.loader && (o.loader.images.length !== test.length || o.loader.images.some((im, i) => im !== test[i])))
    throw new RangeError(`evaluate: the loader given holds ${o.loader.images.length} images, not the ${test.length} of the ${split} split`);
  // The authors' protocol trains the random-init row on images, not on these features.
  const featured = o.probeProtocol === 'authors' ? [model] : models;
  const [ft, rt] = o.loader ? await featuresOfModels(featured, o.loader) : await featuresOf(featured, tok, test, o);
  const tasks = o.tasks ?? (['density', 'birads'] as const);
  for (const task of tasks) {
    const z = zeroShot(model, tok, test, ft, task, { maxTokens: o.maxTokens, pooling: o.pooling });
    m[`zeroshot_${task}_bacc`] = balancedAccuracy(z.labels, z.pred, TASK_CLASSES[task]);
    m[`zeroshot_${task}_auc`] = macroAuc(z.labels, z.probs, TASK_CLASSES[task]);
  }
  if (!probes) return m;
  if (!train.length) throw new RangeError('evaluate: the train split has no images for the linear probe');
  // The protocols on augmented images share one image pool, so each image is decoded once.
  const heads = async (kinds: Array<['probe' | 'finetune', HeadSettings | undefined]>) => {
    if (!kinds.length) return;
    const pool = new ImagePool(o.workers ?? Math.max(1, availableParallelism() - 1), undefined, o.jitter);
    try {
      for (const [kind, s = {}] of kinds) await headRows(models, train, test, tasks, kind, { ...s, seed: s.seed ?? seed + 1 }, o, m, pool);
    } finally {
      await pool.close();
    }
  };
  const finetune: Array<['finetune', HeadSettings | undefined]> = o.finetune ? [['finetune', o.finetuneOptions]] : [];
  if (o.probeProtocol === 'authors') {
    await heads([['probe', o.authorsProbe], ...finetune]);
    return m;
  }
  log(`features of ${train.length} training images; linear probes …\n`);
  const [fr, rr] = await featuresOf(models, tok, train, o);
  const probeRows = (f: { tr: Features; te: Features }, fractions: number[], prefix: string) => {
    for (const task of tasks) {
      const C = TASK_CLASSES[task], y = f.te.index.map((i) => taskLabel(test[i], task));
      for (const fraction of fractions) {
        const p = linearProbe({ x: f.tr.pooled, y: f.tr.index.map((i) => taskLabel(train[i], task)) }, { x: f.te.pooled }, C, { ...o.probe, seed: seed + 1, fraction });
        const key = `${prefix}probe${Math.round(fraction * 100)}_${task}`;
        m[`${key}_bacc`] = balancedAccuracy(y, p.pred, C);
        m[`${key}_auc`] = macroAuc(y, p.probs, C);
      }
    }
  };
  probeRows({ tr: fr, te: ft }, [0.01, 0.1, 1], '');
  if (withRandom) probeRows({ tr: rr, te: rt }, [1], 'random_');
  await heads(finetune);
  return m;
}

/**
 * The rows of a protocol on augmented images (finetune.ts): `kind` 'probe' (the authors' linear
 * probe, encoder frozen) or 'finetune' (encoder trained), at 1, 10 and 100 % of the training
 * labels, and at 100 % on the random-init encoder (models[1]) when there is one, all decoding
 * through `pool`.
 */
async function headRows(models: Mama[], train: EmbedImage[], test: EmbedImage[], tasks: readonly Task[], kind: 'probe' | 'finetune', settings: HeadSettings, o: EvalOptions, m: Record<string, number>, pool: ImagePool) {
  const encoder = kind === 'probe' ? 'frozen' : 'train';
  for (const task of tasks) {
    const C = TASK_CLASSES[task], labelled = (set: EmbedImage[]) => set.map((im) => ({ path: im.path, label: taskLabel(im, task) }));
    await protocolRows(models, labelled(train), labelled(test), C, { ...settings, encoder, pool }, (prefix, pct) => `${prefix}${kind}${pct}_${task}`,
      (r) => ({ bacc: balancedAccuracy(r.labels, r.pred, C), auc: macroAuc(r.labels, r.probs, C) }), m, o.log);
  }
}

/**
 * A head protocol's rows (trainHead): models[0] at 1, 10 and 100 % of the training labels and
 * models[1], the random-init encoder, at 100 % when there is one; each row's metrics (score: at
 * least bacc and auc) go into m under `${key(prefix, percent)}_${name}`.
 */
export async function protocolRows(models: Mama[], train: Labelled[], test: Labelled[], classes: number, settings: Omit<HeadOptions, 'fraction'>,
  key: (prefix: string, percent: number) => string, score: (r: HeadResult) => { bacc: number; auc: number } & Record<string, number>, m: Record<string, number>, log: (l: string) => void = () => {}) {
  const rows: Array<[Mama, number, string]> = [[models[0], 0.01, ''], [models[0], 0.1, ''], [models[0], 1, '']];
  if (models[1]) rows.push([models[1], 1, 'random_']);
  for (const [model, fraction, prefix] of rows) {
    const k = key(prefix, Math.round(fraction * 100)), t0 = performance.now();
    const r = await trainHead(model, train, test, classes, { ...settings, fraction });
    const s = score(r);
    for (const [name, v] of Object.entries(s)) m[`${k}_${name}`] = v;
    log(`${k}: bACC ${s.bacc.toFixed(3)}, AUC ${s.auc.toFixed(3)} (${r.losses.length} steps, ${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  }
}

/** The comparison row's encoder: the model's architecture at a random initialisation (seed + 1000), on its device and dtype. */
export function randomLike(model: Mama, seed: number): Mama {
  const random = new Mama(model.cfg, seed + 1000);
  new ParamArena(random, { device: model.device, dtype: model.dtype });
  return random;
}
