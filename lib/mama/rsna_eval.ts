// rsna_eval.ts: RSNA Screening Mammography (MAMA.md §6): out of domain, binary cancer label, no
// zero-shot; the linear probe (1/10/100 % of the training labels) on the run's frozen image
// encoder and on a random-init one, scored by bACC, the AUC of the cancer probability, and the
// sensitivity and specificity of the argmax. runEvalRsna is `mamakit eval --dataset rsna`.
// Tested by test/mama/rsna_eval.test.ts.
import { existsSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ImagePool, Loader } from '../data/loader.js';
import { loadRsna, type RsnaImage } from '../data/rsna.js';
import type { Device } from '../tensor.js';
import { argmax, balancedAccuracy, featuresOfModels, linearProbe, macroAuc, protocolRows, randomLike, sensitivitySpecificity, type Features, type HeadSettings, type ProbeOptions } from './evaluate.js';
import type { Mama } from './model.js';
import { writeRsnaSection } from './runfolder.js';
import { applyHeadFlags, checkConfig, headOptions, loadRunModel, readRunConfig, usable, type EvalHeadFlags } from './train.js';

/** bACC, AUC of the cancer probability (probs[i][1]), sensitivity and specificity of the argmax. */
export function cancerMetrics(labels: number[], probs: ArrayLike<number>[]): { bacc: number; auc: number; sens: number; spec: number } {
  const pred = probs.map(argmax), { sensitivity, specificity } = sensitivitySpecificity(labels, pred);
  // Class 0 scored by −p and class 1 by p: both one-vs-rest AUCs are then exactly the AUC of p.
  const auc = macroAuc(labels, probs.map((p) => [-p[1], p[1]]), 2);
  return { bacc: balancedAccuracy(labels, pred, 2), auc, sens: sensitivity, spec: specificity };
}

export interface RsnaEvalOptions {
  imageSize: number;
  /** probe settings (fraction and seed are set per row) */
  probe?: Omit<ProbeOptions, 'fraction'>;
  /** add the random-init linear-probe row (default true) */
  randomRow?: boolean;
  seed?: number;
  workers?: number;
  /** full fine-tune rows (finetune.ts: the image encoder trains with the head on augmented images) with these settings */
  finetune?: HeadSettings;
  /** ColorJitter's probability in the fine-tune's training transform (the run's; default 0.8) */
  jitter?: number;
  log?: (line: string) => void;
}

export interface RsnaEvalResult {
  /** rsna_probe{1,10,100}_cancer_{bacc,auc,sens,spec}, rsna_random_probe100_cancer_…, with `finetune` rsna_finetune{1,10,100}_… and rsna_random_finetune100_…, and the counts rsna_{train,test}_{images,cancer}, rsna_unreadable */
  metrics: Record<string, number>;
  /** the loaders' "N of M images could not be read …" lines (train, test), '' when all could */
  unreadable: string[];
}

/** Pooled features of the readable images of `set` through each model (test transform, no captions). */
async function features(models: Mama[], set: RsnaImage[], o: RsnaEvalOptions): Promise<{ f: Features[]; note: string; unreadable: number }> {
  const l = new Loader(set, null, { size: o.imageSize, batch: 32, seed: 0, train: false, workers: o.workers });
  try {
    return { f: await featuresOfModels(models, l), note: l.unreadableNote(), unreadable: l.unreadable.size };
  } finally {
    await l.close();
  }
}

/** The linear probe on cancer at 1, 10 and 100 % of the training labels (and the random-init row) on `images`' train and test splits. */
export async function evaluateRsna(model: Mama, images: RsnaImage[], o: RsnaEvalOptions): Promise<RsnaEvalResult> {
  const log = o.log ?? (() => {}), seed = o.seed ?? 0;
  const test = images.filter((i) => i.split === 'test'), train = images.filter((i) => i.split === 'train');
  const models = o.randomRow ?? true ? [model, randomLike(model, seed)] : [model];
  log(`features of ${test.length} RSNA test and ${train.length} training images …\n`);
  const te = await features(models, test, o), tr = await features(models, train, o);
  const yTe = te.f[0].index.map((i) => test[i].cancer), yTr = tr.f[0].index.map((i) => train[i].cancer);
  for (const [what, y] of [['test', yTe], ['train', yTr]] as const) {
    const pos = y.filter((v) => v === 1).length;
    if (pos === 0 || pos === y.length)
      throw new RangeError(`evaluateRsna: the ${what} split has ${y.length} readable images, ${pos} with cancer: it needs both classes (AUC, sensitivity and specificity are undefined otherwise)`);
  }
  const m: Record<string, number> = {
    rsna_train_images: yTr.length, rsna_train_cancer: yTr.filter((v) => v === 1).length,
    rsna_test_images: yTe.length, rsna_test_cancer: yTe.filter((v) => v === 1).length, rsna_unreadable: te.unreadable + tr.unreadable,
  };
  log(`linear probes on ${yTr.length} training images …\n`);
  const rows = (k: number, fractions: number[], prefix: string) => {
    for (const fraction of fractions) {
      const p = linearProbe({ x: tr.f[k].pooled, y: yTr }, { x: te.f[k].pooled }, 2, { ...o.probe, seed: seed + 1, fraction });
      const r = cancerMetrics(yTe, p.probs), key = `rsna_${prefix}probe${Math.round(fraction * 100)}_cancer`;
      for (const [name, v] of Object.entries(r)) m[`${key}_${name}`] = v;
    }
  };
  rows(0, [0.01, 0.1, 1], '');
  if (models.length > 1) rows(1, [1], 'random_');
  if (o.finetune) {
    // The same protocol as EMBED's fine-tune rows: one image pool for every row, each image decoded once.
    const pool = new ImagePool(o.workers ?? Math.max(1, availableParallelism() - 1), undefined, o.jitter);
    const labelled = (set: RsnaImage[]) => set.map((im) => ({ path: im.path, label: im.cancer }));
    try {
      await protocolRows(models, labelled(train), labelled(test), 2, { ...o.finetune, seed: o.finetune.seed ?? seed + 1, encoder: 'train', pool },
        (prefix, pct) => `rsna_${prefix}finetune${pct}_cancer`, (r) => cancerMetrics(r.labels, r.probs), m, log);
    } finally {
      await pool.close();
    }
  }
  return { metrics: m, unreadable: [tr.note, te.note] };
}

/**
 * `mamakit eval --dataset rsna --data DIR`: a run folder's checkpoint (or `weights`) evaluated on
 * the RSNA folder DIR (train.csv, train_images/); writes eval-rsna.json and report.md's RSNA section.
 */
export async function runEvalRsna(run: string, o: { data: string; weights?: string; probeSteps?: number; probeLr?: number; device?: Device; log?: (l: string) => void } & Omit<EvalHeadFlags, 'probeProtocol'>): Promise<Record<string, number>> {
  const log = o.log ?? ((l: string) => process.stderr.write(l));
  const device = usable('eval', o.device);
  const cfg = readRunConfig(run, 'eval');
  if (o.probeSteps !== undefined) cfg.probeSteps = o.probeSteps;
  if (o.probeLr !== undefined) cfg.probeLr = o.probeLr;
  applyHeadFlags(cfg, o);
  checkConfig(cfg);
  const heads = headOptions(cfg);
  const csv = join(o.data, 'train.csv');
  if (!existsSync(csv)) throw new Error(`eval: ${csv} not found (--data is the RSNA folder holding train.csv and train_images/)`);
  const model = loadRunModel(cfg, o.weights ?? join(run, 'checkpoint', 'model.safetensors'), device, 'eval');
  const { images, skipped } = loadRsna(csv, o.data, cfg.seed);
  const nSkipped = Object.values(skipped).reduce((a, b) => a + b, 0);
  log(`RSNA: ${images.length} images${nSkipped ? `; table rows left out: ${JSON.stringify(skipped)}` : ''}\n`);
  const r = await evaluateRsna(model, images, { imageSize: cfg.model.vit.imageSize, probe: { steps: cfg.probeSteps, lr: cfg.probeLr }, seed: cfg.seed, workers: cfg.workers, log,
    finetune: heads.finetune ? heads.finetuneOptions : undefined, jitter: cfg.jitter });
  for (const note of r.unreadable) if (note) log(`${note}\n`);
  const metrics: Record<string, number> = { ...r.metrics, rsna_skipped_rows: nSkipped };
  writeFileSync(join(run, 'eval-rsna.json'), JSON.stringify(metrics, null, 1) + '\n');
  writeRsnaSection(run, metrics);
  return metrics;
}
