// train-tokenizer.mjs: the CPU presets' vocabulary, a byte-level BPE trained on the report
// corpus: captions of every density, BI-RADS, side, view and finding wording, with the meta
// fields both filled and masked ("unknown"). Writes assets/tokenizer-tiny.json.
// Run: node scripts/train-tokenizer.mjs [merges]   (after npm run build)
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { caption, maskMeta, reasonOf } from '../dist/lib/data/report.js';
import { trainBpe } from '../dist/lib/data/tokenizer.js';

const merges = Number(process.argv[2] ?? 1500);
const races = ['White', 'African American  or Black', 'Asian', 'Native Hawaiian or Other Pacific Islander', 'Unknown, Unavailable or Unreported'];
const ethnic = ['Non-Hispanic or Latino', 'Hispanic or Latino'];
const masses = [[], ['oval', 'equal density'], ['round', 'low density'], ['irregular', 'high density'], ['spiculated', 'high density'], ['lobulated', 'fat-containing']];
const calcs = [[], ['pleomorphic', 'clustered'], ['amorphous', 'grouped'], ['fine linear', 'segmental'], ['coarse heterogeneous', 'regional']];
let state = 1;
const rand = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const corpus = [];
for (let density = 1; density <= 4; density++)
  for (let birads = 0; birads <= 6; birads++)
    for (const [i, [massShape, massDensity]] of masses.entries())
      for (const [j, [calcType, calcDistribution]] of calcs.entries()) {
        const f = {
          procedure: rand() < 0.7 ? 'MG Screening Bilateral' : `MG Diagnostic ${rand() < 0.5 ? 'Left' : 'Right'}`,
          reason: '', race: races[(i + j) % races.length], ethnicity: ethnic[(i + 2 * j) % ethnic.length],
          age: String(40 + Math.floor(rand() * 50)), imageType: '2D', side: rand() < 0.5 ? 'left' : 'right', view: rand() < 0.5 ? 'CC' : 'MLO',
          density, birads, massShape, massDensity, calcType, calcDistribution,
        };
        f.reason = reasonOf(f.procedure);
        corpus.push(caption(f), caption(maskMeta(f, rand)));
      }
const json = trainBpe(corpus, merges);
const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'assets', 'tokenizer-tiny.json');
writeFileSync(out, JSON.stringify(json) + '\n');
console.log(`wrote ${out}: ${Object.keys(json.model.vocab).length} tokens + ${json.added_tokens.length} special, from ${corpus.length} captions`);
