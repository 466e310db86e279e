// train.ts: MaMA pre-training and evaluation (MAMA.md §5–6), the work behind `mamakit
// pretrain`: synthetic data when none is given, the training loop (two views, the loss
// schedule, AdamW with warm-up and cosine), a progress line, checkpoints (weights, AdamW
// moments and the loop's position; Ctrl-C saves one), --resume, evaluation and a run folder
// with config.json, metrics.jsonl, report.md and loss.svg.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backward } from '../autograd/tape.js';
import { loadEmbed } from '../data/embed.js';
import { Loader } from '../data/loader.js';
import { generateStudies } from '../data/synth.js';
import { CaptionTokenizer } from '../data/tokenizer.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import * as kernels from '../kernels/index.js';
import { ParamArena } from '../nn/module.js';
import { AdamW, warmupCosine } from '../optim/adamw.js';
import { Tensor } from '../tensor.js';
import { balancedAccuracy, imageFeatures, linearProbe, macroAuc, zeroShot } from './evaluate.js';
import { Mama, mamaPresets, type MamaConfig } from './model.js';

export interface TrainConfig {
  preset: keyof typeof mamaPresets;
  model: MamaConfig;
  data: string;
  /** synthetic studies to generate when `data` has none */
  synthStudies: number;
  tokenizer: string;
  out: string;
  steps: number;
  batch: number;
  lr: number;
  warmup: number;
  lateStep: number;
  weightDecay: number;
  seed: number;
  checkpointEvery: number;
  workers?: number;
}

export function defaultConfig(preset: keyof typeof mamaPresets = 'tiny'): TrainConfig {
  const tiny = preset === 'tiny';
  return {
    preset, model: mamaPresets[preset] as MamaConfig, data: 'data/synth', synthStudies: tiny ? 600 : 0, tokenizer: 'assets/tokenizer-tiny.json',
    out: 'runs/mama-' + preset, steps: tiny ? 600 : 40000, batch: tiny ? 16 : 36, lr: tiny ? 5e-4 : 4e-5, warmup: tiny ? 30 : 1000,
    lateStep: tiny ? 150 : 8000, weightDecay: 0.05, seed: 0, checkpointEvery: tiny ? 200 : 2000,
  };
}

function saveCheckpoint(dir: string, arena: ParamArena, opt: AdamW, state: object): void {
  mkdirSync(dir, { recursive: true });
  const t = (name: string, x: Tensor): [string, { shape: number[]; data: Float32Array }] => [name, { shape: [x.size], data: x.toArray() }];
  writeSafetensors(join(dir, 'state.safetensors'), [t('values', arena.values), t('adam_m', opt.m), t('adam_v', opt.v)], { state: JSON.stringify(state) });
  const weights: Array<[string, { shape: number[]; data: Float32Array }]> = arena.params.map(([n, p]) => [n, { shape: p.hfShape, data: p.value.toArray() }]);
  writeSafetensors(join(dir, 'model.safetensors'), weights, { format: 'pt' });
}

function loadCheckpoint(dir: string, arena: ParamArena, opt: AdamW): { step: number } {
  const { tensors, metadata } = readSafetensors(join(dir, 'state.safetensors'));
  for (const [name, dst] of [['values', arena.values], ['adam_m', opt.m], ['adam_v', opt.v]] as const) {
    const t = tensors.get(name);
    if (!t || t.data.length !== dst.size) throw new Error(`${dir}: checkpoint ${name} does not match this model (${t?.data.length} values, ${dst.size} expected)`);
    const src = Tensor.fromArray(t.data, [t.data.length]);
    kernels.copy(src, dst);
    src.dispose();
  }
  const state = JSON.parse(metadata.state ?? '{}') as { step?: number };
  opt.step = state.step ?? 0;
  return { step: state.step ?? 0 };
}

function svgPlot(series: Array<[string, number[]]>, title: string): string {
  const W = 640, H = 320, pad = 40;
  const all = series.flatMap(([, v]) => v).filter(Number.isFinite);
  const lo = Math.min(...all), hi = Math.max(...all), n = Math.max(...series.map(([, v]) => v.length));
  const x = (i: number) => pad + ((W - 2 * pad) * i) / Math.max(1, n - 1), y = (v: number) => H - pad - ((H - 2 * pad) * (v - lo)) / (hi - lo || 1);
  const colours = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
  const lines = series.map(([name, v], k) => `<polyline fill="none" stroke="${colours[k % 4]}" stroke-width="1.5" points="${v.map((p, i) => `${x(i).toFixed(1)},${y(p).toFixed(1)}`).join(' ')}"/><text x="${W - pad - 120}" y="${pad + 14 * k}" fill="${colours[k % 4]}" font-size="12">${name}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="100%" height="100%" fill="white"/><text x="${pad}" y="20" font-size="14">${title}</text>` +
    `<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="black"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="black"/>` +
    `<text x="4" y="${pad}" font-size="11">${hi.toPrecision(3)}</text><text x="4" y="${H - pad}" font-size="11">${lo.toPrecision(3)}</text>` +
    `<text x="${W - pad - 40}" y="${H - 10}" font-size="11">step ${n}</text>${lines.join('')}</svg>\n`;
}

export interface RunResult {
  steps: number;
  metrics: Record<string, number>;
  out: string;
  interrupted: boolean;
}

/** Trains (or resumes) and evaluates; writes the run folder. */
export async function pretrain(cfg: TrainConfig, opts: { resume?: boolean; log?: (line: string) => void; evaluate?: boolean } = {}): Promise<RunResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l));
  if (!existsSync(join(cfg.data, 'metadata.csv'))) {
    if (!cfg.synthStudies) throw new Error(`pretrain: ${cfg.data}/metadata.csv not found (give --data, or --synth-studies N to generate)`);
    log(`generating ${cfg.synthStudies} synthetic studies in ${cfg.data} …\n`);
    await generateStudies({ out: cfg.data, studies: cfg.synthStudies, size: Math.max(cfg.model.vit.imageSize, 64), seed: cfg.seed });
  }
  mkdirSync(cfg.out, { recursive: true });
  writeFileSync(join(cfg.out, 'config.json'), JSON.stringify(cfg, null, 1) + '\n');
  const { images, skipped } = loadEmbed(join(cfg.data, 'metadata.csv'), join(cfg.data, 'clinical.csv'), cfg.data, cfg.seed);
  const tok = CaptionTokenizer.fromFile(cfg.tokenizer);
  if (tok.vocabSize > cfg.model.text.vocab) throw new Error(`pretrain: the tokenizer has ${tok.vocabSize} tokens, the text encoder ${cfg.model.text.vocab}`);
  const split = (s: string) => images.filter((i) => i.split === s);
  const train = split('train');
  const model = new Mama(cfg.model, cfg.seed);
  const arena = new ParamArena(model);
  const opt = new AdamW(arena, { lr: cfg.lr, weightDecay: cfg.weightDecay, maxGradNorm: 1 });
  let step = 0;
  const ckpt = join(cfg.out, 'checkpoint');
  if (opts.resume && existsSync(join(ckpt, 'state.safetensors'))) step = loadCheckpoint(ckpt, arena, opt).step;
  const metricsPath = join(cfg.out, 'metrics.jsonl');
  if (!opts.resume) writeFileSync(metricsPath, '');
  const loader = new Loader(train, tok, { size: cfg.model.vit.imageSize, batch: cfg.batch, seed: cfg.seed, train: true, maxTokens: cfg.model.maxTokens, workers: cfg.workers });
  const perEpoch = Math.floor(train.length / cfg.batch);
  if (perEpoch < 1) throw new Error(`pretrain: ${train.length} training images are fewer than one batch of ${cfg.batch}`);
  let stop = false;
  const onSigint = () => {
    stop = true;
  };
  process.once('SIGINT', onSigint);
  const t0 = performance.now(), start = step;
  try {
    while (step < cfg.steps && !stop) {
      const epoch = Math.floor(step / perEpoch);
      let k = 0;
      for await (const batch of loader.epoch(epoch)) {
        // Resuming mid-epoch: batches before the saved position are drawn (the same ones) and skipped.
        if (k++ < step - epoch * perEpoch) continue;
        const late = step >= cfg.lateStep;
        arena.zeroGrad();
        const r = model.loss(batch, late);
        const parts = Object.fromEntries(Object.entries(r.parts).map(([n, v]) => [n, v.value.toArray()[0]]));
        const loss = r.loss.value.toArray()[0];
        backward(r.loss);
        r.inputs.forEach((t) => t.dispose());
        const lr = warmupCosine(step, { lr: cfg.lr, warmup: cfg.warmup, total: cfg.steps, minLr: cfg.lr * 0.01 });
        const gradNorm = opt.update(lr);
        step++;
        writeFileSync(metricsPath, JSON.stringify({ step, loss, ...parts, lr, gradNorm, logitScale: model.logitScale.value.toArray()[0] }) + '\n', { flag: 'a' });
        const secs = (performance.now() - t0) / 1000, rate = ((step - start) * cfg.batch) / secs;
        const left = ((cfg.steps - step) * cfg.batch) / rate;
        const bar = '█'.repeat(Math.round((20 * step) / cfg.steps)).padEnd(20, '░');
        log(`\r${bar} ${step}/${cfg.steps} loss ${loss.toFixed(3)} ${late ? '(all terms)' : '(image-text)'} ${rate.toFixed(1)} samples/s, ${Math.ceil(left)} s left   `);
        if (step % cfg.checkpointEvery === 0 || step === cfg.steps || stop) saveCheckpoint(ckpt, arena, opt, { step });
        if (step >= cfg.steps || stop) break;
      }
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
    await loader.close();
  }
  log('\n');
  if (stop) {
    saveCheckpoint(ckpt, arena, opt, { step });
    log(`interrupted at step ${step}; checkpoint saved in ${ckpt} (continue with --resume)\n`);
    return { steps: step, metrics: {}, out: cfg.out, interrupted: true };
  }
  const metrics = opts.evaluate === false ? {} : await evaluateRun(model, tok, images, cfg, log);
  writeReport(cfg, metricsPath, metrics, skipped, images.length);
  return { steps: step, metrics, out: cfg.out, interrupted: false };
}

async function evaluateRun(model: Mama, tok: CaptionTokenizer, images: ReturnType<typeof loadEmbed>['images'], cfg: TrainConfig, log: (l: string) => void) {
  log('evaluating …\n');
  const feats = async (subset: typeof images) => {
    const l = new Loader(subset, tok, { size: cfg.model.vit.imageSize, batch: 32, seed: 0, train: false, maxTokens: cfg.model.maxTokens, workers: cfg.workers });
    try {
      return await imageFeatures(model, l);
    } finally {
      await l.close();
    }
  };
  const test = images.filter((i) => i.split === 'test'), train = images.filter((i) => i.split === 'train');
  const ft = await feats(test), fr = await feats(train);
  const m: Record<string, number> = {};
  // The comparison row: the same image encoder at its random initialisation, linear probe.
  const random = new Mama(cfg.model, cfg.seed + 1000);
  new ParamArena(random);
  const rl = async (subset: typeof images) => {
    const l = new Loader(subset, tok, { size: cfg.model.vit.imageSize, batch: 32, seed: 0, train: false, maxTokens: cfg.model.maxTokens, workers: cfg.workers });
    try {
      return await imageFeatures(random, l);
    } finally {
      await l.close();
    }
  };
  const rt = await rl(test), rr = await rl(train);
  for (const task of ['density', 'birads'] as const) {
    const C = task === 'density' ? 4 : 7;
    const z = zeroShot(model, tok, test, ft, task, cfg.model.maxTokens);
    m[`zeroshot_${task}_bacc`] = balancedAccuracy(z.labels, z.pred, C);
    m[`zeroshot_${task}_auc`] = macroAuc(z.labels, z.scores, C);
    const y = (f: typeof ft, set: typeof images) => f.index.map((i) => (task === 'density' ? set[i].fields.density - 1 : set[i].fields.birads));
    for (const frac of [0.01, 0.1, 1]) {
      const p = linearProbe({ x: fr.pooled, y: y(fr, train) }, { x: ft.pooled, y: y(ft, test) }, C, frac, cfg.seed + 1);
      m[`probe${frac * 100}_${task}_bacc`] = balancedAccuracy(y(ft, test), p.pred, C);
      m[`probe${frac * 100}_${task}_auc`] = macroAuc(y(ft, test), p.scores, C);
    }
    const pr = linearProbe({ x: rr.pooled, y: y(rr, train) }, { x: rt.pooled, y: y(rt, test) }, C, 1, cfg.seed + 1);
    m[`random_probe100_${task}_bacc`] = balancedAccuracy(y(rt, test), pr.pred, C);
    m[`random_probe100_${task}_auc`] = macroAuc(y(rt, test), pr.scores, C);
  }
  writeFileSync(join(cfg.out, 'eval.json'), JSON.stringify(m, null, 1) + '\n');
  return m;
}

function writeReport(cfg: TrainConfig, metricsPath: string, m: Record<string, number>, skipped: Record<string, number>, n: number) {
  const rows = readFileSync(metricsPath, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>);
  const smooth = (v: number[]) => v.map((_, i) => v.slice(Math.max(0, i - 19), i + 1).reduce((a, b) => a + b, 0) / Math.min(i + 1, 20));
  writeFileSync(join(cfg.out, 'loss.svg'), svgPlot([['loss (mean of 20)', smooth(rows.map((r) => r.loss))], ['image-text (mean of 20)', smooth(rows.map((r) => r.clip))]], `MaMA ${cfg.preset}: training loss`));
  const pct = (v: number | undefined) => (v === undefined ? '—' : (100 * v).toFixed(1));
  let md = `# MaMA pre-training: ${cfg.preset}\n\n${rows.length} steps of ${cfg.batch}, lr ${cfg.lr}, lateStep ${cfg.lateStep}, seed ${cfg.seed}; data ${cfg.data} (${n} images`;
  md += Object.keys(skipped).length ? `, skipped: ${JSON.stringify(skipped)})` : ')';
  md += '\n\n![loss](loss.svg)\n\n| test split | density bACC | density AUC | BI-RADS bACC | BI-RADS AUC |\n|---|---|---|---|---|\n';
  md += `| zero-shot | ${pct(m.zeroshot_density_bacc)} | ${pct(m.zeroshot_density_auc)} | ${pct(m.zeroshot_birads_bacc)} | ${pct(m.zeroshot_birads_auc)} |\n`;
  for (const f of [1, 10, 100]) md += `| linear probe ${f} % | ${pct(m[`probe${f}_density_bacc`])} | ${pct(m[`probe${f}_density_auc`])} | ${pct(m[`probe${f}_birads_bacc`])} | ${pct(m[`probe${f}_birads_auc`])} |\n`;
  md += `| random-init encoder, linear probe 100 % | ${pct(m.random_probe100_density_bacc)} | ${pct(m.random_probe100_density_auc)} | ${pct(m.random_probe100_birads_bacc)} | ${pct(m.random_probe100_birads_auc)} |\n`;
  md += '\nbACC: balanced accuracy (chance 25 % for density, 14.3 % for BI-RADS); AUC: macro one-vs-rest.\n';
  writeFileSync(join(cfg.out, 'report.md'), md);
}
