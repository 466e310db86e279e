#!/usr/bin/env node
// main.ts: the `mamakit` command (argument parsing only; the work is in lib/).
//   mamakit synth --out DIR [--studies N] [--size S] [--seed K]
import { parseArgs } from 'node:util';
import { generateStudies } from '../data/synth.js';

const usage = `usage: mamakit synth --out DIR [--studies N] [--size S] [--seed K]
  synth   write N synthetic screening studies (4 images each, 16-bit PNG) with EMBED-format
          metadata.csv and clinical.csv under DIR (defaults: 1000 studies, 224 px, seed 0)`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
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
