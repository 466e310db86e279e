// evaluate.ts: zero-shot classification with per-image prompts (MAMA.md §6), a linear probe on
// frozen features, balanced accuracy and macro one-vs-rest AUC.
import { noGrad } from '../autograd/tape.js';
import type { EmbedImage } from '../data/embed.js';
import type { Loader } from '../data/loader.js';
import { zeroShotPrompts } from '../data/report.js';
import type { CaptionTokenizer } from '../data/tokenizer.js';
import type { Mama } from './model.js';

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

export interface Features {
  /** [N, E] global image features (unit rows) */
  image: Float32Array[];
  /** [N, D] pooled encoder features, for the linear probe */
  pooled: Float32Array[];
  index: number[];
}

/** Image features of every image the loader yields (evaluation mode). */
export async function imageFeatures(model: Mama, loader: Loader): Promise<Features> {
  model.training = false;
  const out: Features = { image: [], pooled: [], index: [] };
  for await (const b of loader.epoch(0)) {
    const x = model.imageTensor(b.images);
    const r = noGrad(() => {
      const f = model.encodeImage(x);
      return { v: f.v, pooled: f.pooled };
    });
    const E = r.v.shape[1], D = r.pooled.shape[1], v = r.v.value.toArray(), p = r.pooled.value.toArray();
    for (let i = 0; i < b.lens.length; i++) {
      out.image.push(v.slice(i * E, (i + 1) * E)), out.pooled.push(p.slice(i * D, (i + 1) * D)), out.index.push(b.index[i]);
    }
    r.v.dispose(), r.pooled.dispose(), x.dispose();
  }
  model.training = true;
  return out;
}

/** Zero-shot: each image against its own prompts for every class; returns predictions and scores. */
export function zeroShot(model: Mama, tok: CaptionTokenizer, images: EmbedImage[], f: Features, task: 'density' | 'birads', maxTokens: number) {
  const labels: number[] = [], pred: number[] = [], scores: number[][] = [];
  for (let i = 0; i < f.index.length; i++) {
    const im = images[f.index[i]];
    const prompts = zeroShotPrompts(im.fields, task);
    const C = prompts.length, ids = new Int32Array(C * maxTokens), lens = new Int32Array(C);
    prompts.forEach((p, c) => {
      const e = tok.encode(p, maxTokens);
      ids.set(e.ids, c * maxTokens), (lens[c] = e.length);
    });
    const t = noGrad(() => model.encodeText(ids, lens).t);
    const tv = t.value.toArray(), E = t.shape[1], v = f.image[i];
    t.dispose();
    const s = Array.from({ length: C }, (_, c) => {
      let d = 0;
      for (let e = 0; e < E; e++) d += v[e] * tv[c * E + e];
      return d;
    });
    scores.push(s), pred.push(s.indexOf(Math.max(...s))), labels.push(task === 'density' ? im.fields.density - 1 : im.fields.birads);
  }
  return { labels, pred, scores };
}

/**
 * Linear probe: multinomial logistic regression on standardised features, trained by SGD with
 * momentum on a class-balanced sample of `fraction` of the training set (seeded).
 */
export function linearProbe(train: { x: Float32Array[]; y: number[] }, test: { x: Float32Array[]; y: number[] }, classes: number, fraction: number, seed: number) {
  let s = seed >>> 0 || 1;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  // Class-balanced subset: the same share of every class (at least one each).
  const byClass = Array.from({ length: classes }, () => [] as number[]);
  train.y.forEach((y, i) => byClass[y].push(i));
  const idx = byClass.flatMap((l) => {
    const shuffled = l.map((i) => [rand(), i]).sort((a, b) => a[0] - b[0]).map((p) => p[1]);
    return shuffled.slice(0, Math.max(1, Math.round(l.length * fraction)));
  }).filter((i) => i !== undefined);
  const D = train.x[0].length, mean = new Float64Array(D), sd = new Float64Array(D);
  for (const i of idx) for (let d = 0; d < D; d++) mean[d] += train.x[i][d] / idx.length;
  for (const i of idx) for (let d = 0; d < D; d++) sd[d] += (train.x[i][d] - mean[d]) ** 2 / idx.length;
  for (let d = 0; d < D; d++) sd[d] = Math.sqrt(sd[d]) || 1;
  const norm = (x: Float32Array) => Float64Array.from(x, (v, d) => (v - mean[d]) / sd[d]);
  const W = new Float64Array(classes * (D + 1)), M = new Float64Array(W.length);
  const logits = (x: Float64Array) => Array.from({ length: classes }, (_, c) => {
    let z = W[c * (D + 1) + D];
    for (let d = 0; d < D; d++) z += W[c * (D + 1) + d] * x[d];
    return z;
  });
  const xs = idx.map((i) => norm(train.x[i])), ys = idx.map((i) => train.y[i]);
  for (let epoch = 0; epoch < 100; epoch++) {
    const lr = 0.05 * 0.5 * (1 + Math.cos((Math.PI * epoch) / 100));
    for (let k = 0; k < xs.length; k++) {
      const j = Math.floor(rand() * xs.length), z = logits(xs[j]), m = Math.max(...z);
      const p = z.map((v) => Math.exp(v - m)), sum = p.reduce((a, b) => a + b, 0);
      for (let c = 0; c < classes; c++) {
        const g = p[c] / sum - (c === ys[j] ? 1 : 0);
        for (let d = 0; d <= D; d++) {
          const o = c * (D + 1) + d, grad = g * (d < D ? xs[j][d] : 1) + (d < D ? 1e-4 * W[o] : 0);
          M[o] = 0.9 * M[o] + grad;
          W[o] -= lr * M[o];
        }
      }
    }
  }
  const scores = test.x.map((x) => logits(norm(x)));
  return { pred: scores.map((z) => z.indexOf(Math.max(...z))), scores };
}
