#!/usr/bin/env node
// main.ts: the `mamakit` command (argument parsing only; the work is in lib/).
//   mamakit synth --out DIR [--studies N] [--size S] [--seed K]
import { parseArgs } from 'node:util';
import { generateStudies } from '../data/synth.js';
import { mamaPresets } from '../mama/model.js';
import { defaultConfig, pretrain } from '../mama/train.js';

const usage = `usage: mamakit pretrain [--preset tiny|base] [--steps N] [--batch N] [--lr X] [--late-step N] [--data DIR]
                        [--out DIR] [--seed K] [--synth-studies N] [--set a.b.c=value ...] [--resume] [--no-eval]
                        [--ablation clip-only]
       mamakit synth --out DIR [--studies N] [--size S] [--seed K]
  pretrain  train MaMA (default: the tiny preset on synthetic studies, generated when absent),
            evaluate, and write a run folder (checkpoint, config.json, metrics.jsonl, report.md,
            loss.svg); Ctrl-C saves a checkpoint, --resume continues it; --set overrides any
            field of the config (e.g. --set model.vit.depth=6)
  synth   write N synthetic screening studies (4 images each, 16-bit PNG) with EMBED-format
          metadata.csv and clinical.csv under DIR (defaults: 1000 studies, 224 px, seed 0)`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === 'pretrain') {
    const { values } = parseArgs({
      args: rest,
      options: {
        preset: { type: 'string', default: 'tiny' }, steps: { type: 'string' }, batch: { type: 'string' }, lr: { type: 'string' },
        'late-step': { type: 'string' }, data: { type: 'string' }, out: { type: 'string' }, seed: { type: 'string' },
        'synth-studies': { type: 'string' }, set: { type: 'string', multiple: true }, resume: { type: 'boolean' }, 'no-eval': { type: 'boolean' },
        ablation: { type: 'string' },
      },
    });
    if (!(values.preset! in mamaPresets)) throw new RangeError(`mamakit pretrain: --preset must be one of ${Object.keys(mamaPresets).join(', ')}, got ${values.preset}`);
    const cfg = defaultConfig(values.preset as keyof typeof mamaPresets) as unknown as Record<string, unknown>;
    const num = (name: string, v: string) => {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new RangeError(`mamakit pretrain: --${name} must be a number, got ${v}`);
      return n;
    };
    for (const [flag, key] of [['steps', 'steps'], ['batch', 'batch'], ['lr', 'lr'], ['late-step', 'lateStep'], ['seed', 'seed'], ['synth-studies', 'synthStudies']] as const) {
      const v = values[flag];
      if (v !== undefined) cfg[key] = num(flag, v);
    }
    if (values.ablation !== undefined) {
      // CLIP-only: the image-text term alone for the whole run (no second view, no local loss).
      if (values.ablation !== 'clip-only') throw new RangeError(`mamakit pretrain: --ablation must be clip-only, got ${values.ablation}`);
      cfg.lateStep = Number.MAX_SAFE_INTEGER;
      cfg.out = `${cfg.out}-clip-only`;
    }
    if (values.data) cfg.data = values.data;
    if (values.out) cfg.out = values.out;
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
      o[last] = typeof o[last] === 'number' ? num(`set ${kv}`, raw) : typeof o[last] === 'boolean' ? raw === 'true' : raw;
    }
    const r = await pretrain(cfg as unknown as Parameters<typeof pretrain>[0], { resume: values.resume, evaluate: !values['no-eval'] });
    if (!r.interrupted) {
      const m = r.metrics;
      console.log(`done: ${r.steps} steps; zero-shot density bACC ${m.zeroshot_density_bacc?.toFixed(3) ?? '—'}; report in ${r.out}/report.md`);
    }
    return 0;
  }
  if (cmd === 'synth') {
    const { values } = parseArgs({ args: rest, options: { out: { type: 'string' }, studies: { type: 'string', default: '1000' }, size: { type: 'string', default: '224' }, seed: { type: 'string', default: '0' } } });
    const int = (name: string, v: string | undefined, lo: number, hi: number) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < lo || n > hi) throw new RangeError(`mamakit synth: --${name} must be an integer in [${lo}, ${hi}], got ${v}`);
      return n;
    };
    if (!values.out) throw new RangeError('mamakit synth: --out DIR is required');
    const o = { out: values.out, studies: int('studies', values.studies, 1, 10_000_000), size: int('size', values.size, 16, 4096), seed: int('seed', values.seed, 0, 2 ** 31 - 1) };
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
