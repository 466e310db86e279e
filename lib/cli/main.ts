#!/usr/bin/env node
// main.ts: the `mamakit` command (argument parsing only; the work is in lib/).
import { parseArgs } from 'node:util';
import { generateRsna, generateStudies } from '../data/synth.js';
import { formatBytes, memoryPlan } from '../mama/memory.js';
import { mamaPresets, type MamaConfig } from '../mama/model.js';
import { runEval, defaultConfig, pretrain, TINY_HEADS, type EvalHeadFlags, type TrainConfig } from '../mama/train.js';
import { runEvalRsna } from '../mama/rsna_eval.js';
import { loadRun, META_KEYS, TASK_CLASS_NAMES, type ImageMeta } from '../mama/predict.js';
import type { Task } from '../mama/evaluate.js';
import { launchedSize } from '../dist/index.js';

const usage = `usage: mamakit pretrain [--preset tiny|base] [--steps N] [--batch N] [--accum N] [--lr X] [--late-step N]
                        [--data DIR] [--out DIR] [--seed K] [--synth-studies N] [--eval-every N] [--probe-steps N]
                        [--probe-lr X] [--pooling mean|first-pad] [--set a.b.c=value ...] [--resume] [--no-eval]
                        [--ablation clip-only] [--image-weights FILE] [--text-weights FILE] [--tokenizer FILE]
                        [--workers N] [--device cpu|cuda] [--precision f32|bf16] [--checkpoint on|off] [--dry-run]
                        [--gather ntxent|all|none] [--sync-bn]
       mamakit eval --run DIR [--weights FILE] [--data DIR] [--split test|val] [--pooling mean|first-pad]
                    [--probe-steps N] [--probe-lr X] [--probe-protocol cached|authors] [--finetune]
                    [--finetune-steps N] [--finetune-lr X] [--head-batch N] [--head-warmup N] [--device cpu|cuda]
       mamakit eval --run DIR --dataset rsna --data DIR [--weights FILE] [--probe-steps N] [--probe-lr X] [--finetune ...] [--device cpu|cuda]
       mamakit predict --run DIR [--weights FILE] [--device cpu|cuda] [--meta field=value ...] [--json] IMAGE...
       mamakit synth --out DIR [--studies N] [--size S] [--seed K] [--format embed|rsna] [--images dcm|png]
  pretrain  train MaMA (default: the tiny preset on synthetic studies, generated when absent),
            evaluate, and write a run folder (checkpoint/, config.json, metrics.jsonl, eval.json,
            report.md, loss.svg, metrics.svg); Ctrl-C saves a checkpoint, --resume continues it;
            --batch is the micro-batch (the contrastive negatives), --accum micro-batches per step;
            --workers sets the data loader's threads (default: the CPUs less one);
            --image-weights / --text-weights start from pre-trained encoders (safetensors with Hugging
            Face names: DINOv2 with registers, GPT-2; LoRA applies only to a loaded language model);
            --set overrides any field of the config (e.g. --set model.vit.depth=6);
            --device cuda trains and evaluates on the GPU (or, for tests, the emulated CUDA library);
            --precision bf16 (CUDA's default) is mixed precision: bf16 weights and activations, f32
            accumulation, master weights, gradients and optimizer state; f32 (the CPU's) computes in f32;
            --checkpoint on|off recomputes encoder blocks in backward (default: on for base, off for tiny);
            --dry-run prints the memory plan of a training micro-batch (parameters, gradients, AdamW
            state, activations, peak) for these options and exits without training;
            under mpirun (mpirun -np N mamakit pretrain …) each rank trains on its shard with --batch
            images per micro-batch and the ranks average their gradients; --gather ntxent (default,
            MaMA's) computes NT-Xent over every rank's pairs, all every term, none no term; --sync-bn
            normalises the patch and SimCLR heads' BatchNorm over every rank's rows (SyncBatchNorm);
            a step is batch × accum × ranks images (base's accum defaults to 8 on one process and to
            round(8 / ranks) under mpirun: the paper's 288 images on 1, 2, 4 or 8 ranks);
            to stop, kill -USR1 <mpirun's pid> (every rank stops after the step, rank 0 saves; Ctrl-C
            on mpirun kills the job without a checkpoint); MAMAKIT_DIST_TIMEOUT (300 s) bounds each wait
  eval      evaluate a run folder's checkpoint again (zero-shot with per-image meta prompts, linear
            probe at 1/10/100 % of the training labels, random-init row); writes eval.json (or
            eval-val.json) and report.md; --probe-protocol authors trains the probe as the authors
            do (augmented images through the frozen encoder every step, batch 72, warm-up, cosine to
            1e-5, random label fractions) instead of on cached features; --probe-steps and --probe-lr
            set the protocol's (cached: 8000, 5e-4; authors: ${TINY_HEADS.probeSteps}, ${TINY_HEADS.probeLr} on tiny, 8000, 5e-4 on base);
            --finetune adds full fine-tune rows (the same protocol with the image encoder training,
            and from a random-init encoder; --finetune-steps N, --finetune-lr X: ${TINY_HEADS.finetuneSteps}, ${TINY_HEADS.finetuneLr} on
            tiny, 8000, 5e-4 on base); --head-batch N (72) and --head-warmup N (100, or 1/80 of a
            shorter run) set both
            --dataset rsna: RSNA Screening Mammography (Kaggle's train.csv and
            train_images/<patient>/<image>.dcm or .png under --data), cancer by the linear probe on a
            seeded 85/15 patient split, and with --finetune the full fine-tune (bACC, AUC, sensitivity,
            specificity); writes eval-rsna.json
            and report.md's RSNA section
  predict   zero-shot density (A–D) and BI-RADS (0–6) probabilities of each image (PNG, JPEG or
            DICOM) from a run folder's checkpoint, with evaluation's prompts and preprocessing: a table,
            or with --json one JSON document; --meta sets a prompt's meta field for every image
            (${META_KEYS.join(', ')}; default unknown); an unreadable image is named on stderr,
            the others are still scored, and the exit status is 1
  synth     write N synthetic screening studies (4 images each, 16-bit PNG) with EMBED-format
            metadata.csv and clinical.csv under DIR (defaults: 1000 studies, 224 px, seed 0);
            --format rsna: N patients in RSNA's Kaggle layout (train.csv, train_images/, DICOM or
            with --images png 16-bit PNG), cancer as a visible mass in 30 % of the patients`;

const num = (cmd: string, name: string, v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new RangeError(`mamakit ${cmd}: --${name} must be a number, got ${v}`);
  return n;
};

function device(cmd: string, v: string | undefined) {
  if (v !== undefined && v !== 'cpu' && v !== 'cuda') throw new RangeError(`mamakit ${cmd}: --device must be cpu or cuda, got ${v}`);
  return v;
}

function pooling(cmd: string, v: string | undefined) {
  if (v !== undefined && v !== 'mean' && v !== 'first-pad') throw new RangeError(`mamakit ${cmd}: --pooling must be mean or first-pad, got ${v}`);
  return v;
}

// The memory plan of the run these options describe (nothing is allocated); the image-text term
// alone when the run never reaches lateStep (--ablation clip-only).
function dryRun(cfg: TrainConfig): number {
  const opts = { batch: cfg.batch, device: cfg.device ?? 'cpu', precision: cfg.precision, late: cfg.lateStep < cfg.steps };
  process.stdout.write(memoryPlan(cfg.model, opts).format());
  const ranks = launchedSize() ?? 1;
  console.log(`a step: ${cfg.batch} images × ${cfg.accum} micro-batches${ranks > 1 ? ` × ${ranks} ranks` : ''} = ${cfg.batch * cfg.accum * ranks} images`);
  if (cfg.model.lora && !cfg.textWeights) {
    const full = memoryPlan({ ...cfg.model, lora: undefined }, opts);
    console.log(`(LoRA adapts the language model given by --text-weights; without it pretrain trains the whole text encoder: peak ${formatBytes(full.peakBytes)})`);
  }
  return 0;
}

// mamakit eval's flags of the authors' probe and the fine-tune, checked.
function headFlags(v: Record<string, string | boolean | undefined>): EvalHeadFlags {
  const out: EvalHeadFlags = {};
  const p = v['probe-protocol'];
  if (p !== undefined && p !== 'cached' && p !== 'authors') throw new RangeError(`mamakit eval: --probe-protocol must be cached or authors, got ${p}`);
  if (p !== undefined) out.probeProtocol = p;
  if (v.finetune) out.finetune = true;
  for (const [flag, key, min] of [['finetune-steps', 'finetuneSteps', 1], ['head-batch', 'headBatch', 1], ['head-warmup', 'headWarmup', 0]] as const) {
    const s = v[flag] as string | undefined;
    if (s === undefined) continue;
    const n = num('eval', flag, s);
    if (!(Number.isInteger(n) && n >= min)) throw new RangeError(`mamakit eval: --${flag} must be an integer ≥ ${min}, got ${s}`);
    out[key] = n;
  }
  if (v['finetune-lr'] !== undefined) {
    const x = num('eval', 'finetune-lr', v['finetune-lr'] as string);
    if (!(x >= 0)) throw new RangeError(`mamakit eval: --finetune-lr must be ≥ 0, got ${v['finetune-lr']}`);
    out.finetuneLr = x;
  }
  if ((out.finetuneSteps !== undefined || out.finetuneLr !== undefined) && !out.finetune) throw new RangeError('mamakit eval: --finetune-steps and --finetune-lr need --finetune');
  if ((out.headBatch !== undefined || out.headWarmup !== undefined) && !out.finetune && out.probeProtocol !== 'authors')
    throw new RangeError('mamakit eval: --head-batch and --head-warmup need --finetune or --probe-protocol authors');
  return out;
}

function metaOf(kvs: string[]): ImageMeta {
  const meta: Record<string, string> = {};
  for (const kv of kvs) {
    const eq = kv.indexOf('='), k = kv.slice(0, eq);
    if (eq < 0 || !(META_KEYS as readonly string[]).includes(k)) throw new RangeError(`mamakit predict: --meta takes field=value with a field of ${META_KEYS.join(', ')}, got ${kv}`);
    meta[k] = kv.slice(eq + 1);
  }
  return meta;
}

// Each readable image scored; an unreadable one named on stderr (exit status 1), the rest still printed.
async function predict(dir: string, paths: string[], o: { weights?: string; device?: 'cpu' | 'cuda'; meta: ImageMeta; json: boolean }): Promise<number> {
  const run = loadRun(dir, o);
  const ok: string[] = [], px: Float32Array[] = [], errors: Array<{ path: string; error: string }> = [];
  for (const path of paths) {
    try {
      px.push(await run.readImage(path)), ok.push(path);
    } catch (e) {
      const error = (e as Error).message.split('\n')[0];
      errors.push({ path, error }), console.error(`mamakit predict: ${error}`);
    }
  }
  const f = await run.encodeImages(px), tasks = ['density', 'birads'] as const;
  const [density, birads] = await Promise.all(tasks.map((task) => run.zeroShot(f, { task, meta: o.meta })));
  const named = (task: Task, p: number[]) => Object.fromEntries(TASK_CLASS_NAMES[task].map((c, k) => [c, p[k]]));
  if (o.json) {
    const images = ok.map((path, i) => ({ path, density: named('density', density[i]), birads: named('birads', birads[i]) }));
    console.log(JSON.stringify({ run: dir, images, errors }, null, 1));
  } else if (ok.length) {
    // Per task: the most probable class, then each class's probability.
    const block = (task: Task, p: number[] | null) =>
      (p ? TASK_CLASS_NAMES[task][p.indexOf(Math.max(...p))] : 'best').padEnd(6) + (p ? p.map((v) => v.toFixed(3)) : TASK_CLASS_NAMES[task]).map((c) => c.padStart(6)).join('');
    const w = Math.max(5, ...ok.map((p) => p.length)), dw = block('density', null).length + 4;
    console.log(`${''.padEnd(w)}  ${'density'.padEnd(dw)}BI-RADS`);
    console.log(`${'image'.padEnd(w)}  ${block('density', null).padEnd(dw)}${block('birads', null)}`);
    ok.forEach((path, i) => console.log(`${path.padEnd(w)}  ${block('density', density[i]).padEnd(dw)}${block('birads', birads[i])}`));
  }
  return errors.length ? 1 : 0;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(usage);
    return 0;
  }
  if (cmd === 'pretrain') {
    const { values } = parseArgs({
      args: rest,
      options: {
        preset: { type: 'string', default: 'tiny' }, steps: { type: 'string' }, batch: { type: 'string' }, lr: { type: 'string' },
        'late-step': { type: 'string' }, data: { type: 'string' }, out: { type: 'string' }, seed: { type: 'string' },
        'synth-studies': { type: 'string' }, set: { type: 'string', multiple: true }, resume: { type: 'boolean' }, 'no-eval': { type: 'boolean' },
        ablation: { type: 'string' }, 'image-weights': { type: 'string' }, 'text-weights': { type: 'string' }, tokenizer: { type: 'string' }, accum: { type: 'string' }, 'eval-every': { type: 'string' }, 'probe-steps': { type: 'string' }, 'probe-lr': { type: 'string' }, pooling: { type: 'string' }, workers: { type: 'string' }, device: { type: 'string' }, precision: { type: 'string' },
        checkpoint: { type: 'string' }, 'dry-run': { type: 'boolean' }, gather: { type: 'string' }, 'sync-bn': { type: 'boolean' },
      },
    });
    if (!(values.preset! in mamaPresets)) throw new RangeError(`mamakit pretrain: --preset must be one of ${Object.keys(mamaPresets).join(', ')}, got ${values.preset}`);
    const cfg = defaultConfig(values.preset as keyof typeof mamaPresets) as unknown as Record<string, unknown>;
    const flags = [['steps', 'steps'], ['batch', 'batch'], ['accum', 'accum'], ['lr', 'lr'], ['late-step', 'lateStep'], ['seed', 'seed'],
      ['synth-studies', 'synthStudies'], ['eval-every', 'evalEvery'], ['probe-steps', 'probeSteps'], ['probe-lr', 'probeLr'], ['workers', 'workers']] as const;
    for (const [flag, key] of flags) {
      const v = values[flag];
      if (v !== undefined) cfg[key] = num('pretrain', flag, v);
    }
    // base: the paper's 288 images a step are 8 micro-batches of 36 on one device; under mpirun the
    // ranks share them (round(8 / ranks), at least 1: 2, 4 and 8 ranks step on 288).
    const ranks = launchedSize();
    if (values.preset === 'base' && values.accum === undefined && ranks !== null && ranks > 1) cfg.accum = Math.max(1, Math.round(8 / ranks));
    if (values.pooling !== undefined) cfg.pooling = pooling('pretrain', values.pooling);
    if (values.gather !== undefined) {
      if (!['ntxent', 'all', 'none'].includes(values.gather)) throw new RangeError(`mamakit pretrain: --gather must be ntxent, all or none, got ${values.gather}`);
      cfg.gather = values.gather;
    }
    if (values['sync-bn']) cfg.syncBn = true;
    if (values.device !== undefined) cfg.device = device('pretrain', values.device);
    if (values.precision !== undefined) {
      if (values.precision !== 'f32' && values.precision !== 'bf16') throw new RangeError(`mamakit pretrain: --precision must be f32 or bf16, got ${values.precision}`);
      cfg.precision = values.precision;
    }
    if (values.checkpoint !== undefined) {
      if (values.checkpoint !== 'on' && values.checkpoint !== 'off') throw new RangeError(`mamakit pretrain: --checkpoint must be on or off, got ${values.checkpoint}`);
      cfg.model = { ...(cfg.model as MamaConfig), checkpoint: values.checkpoint === 'on' };
    }
    if (values.ablation !== undefined) {
      // CLIP-only: the image-text term alone for the whole run (no second view, no local loss).
      if (values.ablation !== 'clip-only') throw new RangeError(`mamakit pretrain: --ablation must be clip-only, got ${values.ablation}`);
      cfg.lateStep = Number.MAX_SAFE_INTEGER;
      cfg.out = `${cfg.out}-clip-only`;
    }
    if (values.data) cfg.data = values.data;
    if (values.out) cfg.out = values.out;
    if (values['image-weights']) cfg.imageWeights = values['image-weights'];
    if (values['text-weights']) cfg.textWeights = values['text-weights'];
    if (values.tokenizer) cfg.tokenizer = values.tokenizer;
    for (const kv of values.set ?? []) {
      const eq = kv.indexOf('=');
      if (eq < 0) throw new RangeError(`mamakit pretrain: --set takes key=value, got ${kv}`);
      const path = kv.slice(0, eq).split('.'), raw = kv.slice(eq + 1);
      let o = cfg as Record<string, unknown>;
      for (const k of path.slice(0, -1)) {
        if (typeof o[k] !== 'object' || o[k] === null) throw new RangeError(`mamakit pretrain: --set ${kv}: no field ${k}`);
        o = o[k] = { ...(o[k] as object) } as Record<string, unknown>;
      }
      const last = path[path.length - 1];
      if (!(last in o)) throw new RangeError(`mamakit pretrain: --set ${kv}: no field ${last}`);
      // null is an unset number (maxGradNorm: no clipping)
      if (raw === 'null' && (o[last] === null || typeof o[last] === 'number')) o[last] = null;
      else if (typeof o[last] === 'boolean') {
        if (raw !== 'true' && raw !== 'false') throw new RangeError(`mamakit pretrain: --set ${kv}: ${last} must be true or false, got ${raw}`);
        o[last] = raw === 'true';
      } else o[last] = typeof o[last] === 'number' || o[last] === null ? num('pretrain', `set ${kv}`, raw) : raw;
    }
    if (values['dry-run']) return dryRun(cfg as unknown as TrainConfig);
    const r = await pretrain(cfg as unknown as TrainConfig, { resume: values.resume, evaluate: !values['no-eval'] });
    if (!r.interrupted && r.rank === 0) {
      const m = r.metrics;
      console.log(`done: ${r.steps} steps; zero-shot density bACC ${m.zeroshot_density_bacc?.toFixed(3) ?? '—'}; report in ${r.out}/report.md`);
    }
    return 0;
  }
  if (cmd === 'eval') {
    const { values } = parseArgs({
      args: rest,
      options: { run: { type: 'string' }, weights: { type: 'string' }, data: { type: 'string' }, split: { type: 'string', default: 'test' }, pooling: { type: 'string' }, 'probe-steps': { type: 'string' }, 'probe-lr': { type: 'string' }, device: { type: 'string' },
        'probe-protocol': { type: 'string' }, finetune: { type: 'boolean' }, 'finetune-steps': { type: 'string' }, 'finetune-lr': { type: 'string' }, 'head-batch': { type: 'string' }, 'head-warmup': { type: 'string' },
        dataset: { type: 'string', default: 'embed' } },
    });
    if (!values.run) throw new RangeError('mamakit eval: --run DIR is required (the folder pretrain wrote)');
    if (values.dataset !== 'embed' && values.dataset !== 'rsna') throw new RangeError(`mamakit eval: --dataset must be embed or rsna, got ${values.dataset}`);
    if (values.split !== 'test' && values.split !== 'val') throw new RangeError(`mamakit eval: --split must be test or val, got ${values.split}`);
    const probeSteps = values['probe-steps'] === undefined ? undefined : num('eval', 'probe-steps', values['probe-steps']);
    const probeLr = values['probe-lr'] === undefined ? undefined : num('eval', 'probe-lr', values['probe-lr']);
    if (values.dataset === 'rsna') {
      if (!values.data) throw new RangeError('mamakit eval: --dataset rsna needs --data DIR (the folder holding train.csv and train_images/)');
      if (values.split !== 'test') throw new RangeError(`mamakit eval: --dataset rsna has a train and a test split only; --split ${values.split} does not apply`);
      if (values.pooling !== undefined) throw new RangeError('mamakit eval: --pooling is for zero-shot prompts; --dataset rsna has no zero-shot');
      const heads = headFlags(values);
      if (heads.probeProtocol === 'authors') throw new RangeError('mamakit eval: --dataset rsna runs the cached-feature linear probe; --probe-protocol authors is for EMBED');
      const m = await runEvalRsna(values.run, { data: values.data, weights: values.weights, probeSteps, probeLr, device: device('eval', values.device) as 'cpu' | 'cuda' | undefined, ...heads });
      const f = (k: string) => m[k]?.toFixed(3) ?? '—', row = (key: string) => `bACC ${f(`${key}_bacc`)} AUC ${f(`${key}_auc`)} sensitivity ${f(`${key}_sens`)} specificity ${f(`${key}_spec`)}`;
      console.log(`rsna test (${m.rsna_test_images} images, ${m.rsna_test_cancer} cancer): linear probe 100 %: ${row('rsna_probe100_cancer')}; ` +
        `random-init encoder: ${row('rsna_random_probe100_cancer')}; ` + (heads.finetune ? `full fine-tune 100 %: ${row('rsna_finetune100_cancer')}; ` : '') + `report in ${values.run}/report.md`);
      return 0;
    }
    const m = await runEval(values.run, { weights: values.weights, data: values.data, split: values.split, pooling: pooling('eval', values.pooling), probeSteps, probeLr,
      device: device('eval', values.device) as 'cpu' | 'cuda' | undefined, ...headFlags(values) });
    const f = (k: string) => m[k]?.toFixed(3) ?? '—';
    console.log(`${values.split}: zero-shot density bACC ${f('zeroshot_density_bacc')} AUC ${f('zeroshot_density_auc')}, BI-RADS bACC ${f('zeroshot_birads_bacc')} AUC ${f('zeroshot_birads_auc')}; ` +
      `linear probe 100 %: density bACC ${f('probe100_density_bacc')}, BI-RADS bACC ${f('probe100_birads_bacc')}; ` +
      (values.finetune ? `full fine-tune 100 %: density bACC ${f('finetune100_density_bacc')}, BI-RADS bACC ${f('finetune100_birads_bacc')}; ` : '') +
      `${values.split === 'test' ? `report in ${values.run}/report.md` : `eval-val.json in ${values.run}`}`);
    return 0;
  }
  if (cmd === 'predict') {
    const { values, positionals } = parseArgs({
      args: rest, allowPositionals: true,
      options: { run: { type: 'string' }, weights: { type: 'string' }, device: { type: 'string' }, meta: { type: 'string', multiple: true }, json: { type: 'boolean' } },
    });
    if (!values.run) throw new RangeError('mamakit predict: --run DIR is required (the folder pretrain wrote)');
    if (!positionals.length) throw new RangeError('mamakit predict: give one or more IMAGE files');
    return predict(values.run, positionals, { weights: values.weights, device: device('predict', values.device) as 'cpu' | 'cuda' | undefined, meta: metaOf(values.meta ?? []), json: !!values.json });
  }
  if (cmd === 'synth') {
    const { values } = parseArgs({
      args: rest,
      options: { out: { type: 'string' }, studies: { type: 'string', default: '1000' }, size: { type: 'string', default: '224' }, seed: { type: 'string', default: '0' }, format: { type: 'string', default: 'embed' }, images: { type: 'string' } },
    });
    const int = (name: string, v: string | undefined, lo: number, hi: number) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < lo || n > hi) throw new RangeError(`mamakit synth: --${name} must be an integer in [${lo}, ${hi}], got ${v}`);
      return n;
    };
    if (!values.out) throw new RangeError('mamakit synth: --out DIR is required');
    if (values.format !== 'embed' && values.format !== 'rsna') throw new RangeError(`mamakit synth: --format must be embed or rsna, got ${values.format}`);
    if (values.images !== undefined && (values.format !== 'rsna' || (values.images !== 'dcm' && values.images !== 'png')))
      throw new RangeError(`mamakit synth: --images takes dcm or png, with --format rsna only; got --images ${values.images} with --format ${values.format}`);
    const o = { out: values.out, studies: int('studies', values.studies, 1, 10_000_000), size: int('size', values.size, 16, 4096), seed: int('seed', values.seed, 0, 2 ** 31 - 1) };
    if (values.format === 'rsna') {
      const r = await generateRsna({ out: o.out, patients: o.studies, size: o.size, seed: o.seed, images: values.images as 'dcm' | 'png' | undefined });
      console.log(`wrote ${r.images} images (${r.cancer} with cancer) of ${o.studies} patients (${o.size} px) in RSNA's layout to ${o.out} in ${r.seconds.toFixed(1)} s`);
      return 0;
    }
    const r = await generateStudies(o);
    console.log(`wrote ${r.images} images of ${o.studies} studies (${o.size} px) to ${o.out} in ${r.seconds.toFixed(1)} s`);
    return 0;
  }
  console.error(usage);
  return cmd === undefined || cmd === '--help' || cmd === '-h' ? 0 : 2;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e) => {
    console.error((e as Error).message);
    process.exitCode = 2;
  },
);
