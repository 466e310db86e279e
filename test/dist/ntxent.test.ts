// ntxent.test.ts: NT-Xent over every rank's pairs (ops.ntXentGathered, MaMA's data-parallel
// NT-Xent) on 2 ranks under mpirun against one process over the concatenated features: the
// same loss on every rank, and each rank's gradients are its rows of the one-process gradient
// times 2 (the ranks' mean gradient is the one process's). Without mpirun it is skipped, visibly.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { autograd, dist, kernels, Tensor } from 'mamakit';
import { fromBase64, rankInput } from './inputs.js';

const test = suite('dist ntxent');
const program = join(dirname(fileURLToPath(import.meta.url)), 'programs', 'ntxent.js');
const noMpi = spawnSync('mpirun', ['--version']).error
  ? 'mpirun is not installed (Debian: apt-get install openmpi-bin libopenmpi-dev)'
  : !dist.status().mpi.built ? `libmamakit_mpi.so is not built (${dist.status().mpi.detail}); install libopenmpi-dev and rebuild` : null;
const needs = (name: string, fn: () => void) => (noMpi ? (console.log(`  skip: ${name} (${noMpi})`), test.skip(name, fn)) : test(name, fn));

/** |got − want| ≤ rel·|want| + abs, element by element. */
function close(what: string, got: Float32Array, want: Float32Array, rel = 1e-5, abs = 1e-7) {
  assert.is(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++)
    if (!(Math.abs(got[i] - want[i]) <= rel * Math.abs(want[i]) + abs)) assert.unreachable(`${what}: [${i}] = ${got[i]}, one process over the concatenated features: ${want[i]}`);
}

needs('2 ranks: the loss and gradients of one process over the concatenated features', () => {
  const B = 6, E = 8, size = 2, dir = mkdtempSync(join(tmpdir(), 'mamakit-ntxent-'));
  try {
    const r = spawnSync('mpirun', ['--oversubscribe', '--allow-run-as-root', '-np', String(size), process.execPath, program, String(B), String(E), dir], { encoding: 'utf8', timeout: 60_000 });
    assert.is(r.status, 0, `${r.error?.message ?? ''}${r.stdout}${r.stderr}`);
    const ranks = Array.from({ length: size }, (_, k) => JSON.parse(readFileSync(join(dir, `rank-${k}.json`), 'utf8')) as Record<string, string | number>);
    const cat = (what: string) => {
      const x = new Float32Array(size * B * E);
      for (let k = 0; k < size; k++) x.set(rankInput(what, k, B * E), k * B * E);
      return Tensor.fromArray(x, [size * B, E]);
    };
    const one = kernels.ntXent(cat('z0'), cat('z1'), 0.5), d0 = one.dZ0.toArray(), d1 = one.dZ1.toArray();
    ranks.forEach((got, k) => {
      close(`rank ${k} loss`, Float32Array.of(got.loss as number), Float32Array.of(one.loss));
      const mine = (d: Float32Array) => d.slice(k * B * E, (k + 1) * B * E).map((v) => v * size);
      close(`rank ${k} dZ0`, fromBase64(got.dZ0 as string), mine(d0));
      close(`rank ${k} dZ1`, fromBase64(got.dZ1 as string), mine(d1));
    });
    // Not the rank's own pairs alone: their NT-Xent is another loss.
    const own = kernels.ntXent(Tensor.fromArray(rankInput('z0', 0, B * E), [B, E]), Tensor.fromArray(rankInput('z1', 0, B * E), [B, E]), 0.5).loss;
    assert.ok(Math.abs(own - one.loss) > 1e-3, `rank 0's own pairs give ${own}, the gathered batch ${one.loss}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('one process: ntXentGathered is ntXent', () => {
  const z = (what: string) => new autograd.Var(Tensor.fromArray(rankInput(what, 0, 4 * 8), [4, 8]), true);
  const single = { rank: 0, size: 1, allGather: (t: Tensor) => t };
  const a = [z('a'), z('b')], b = [z('a'), z('b')];
  const la = autograd.ops.ntXentGathered(a[0], a[1], 0.5, single), va = la.value.toArray()[0];
  autograd.backward(la); // backward walks the whole tape: one loss at a time
  const lb = autograd.ops.ntXent(b[0], b[1], 0.5);
  assert.is(va, lb.value.toArray()[0]);
  autograd.backward(lb);
  close('dZ0', a[0].grad!.toArray(), b[0].grad!.toArray(), 0, 0);
});

test.run();
