// gathered.test.ts: the loss heads over every rank's rows (ops.ntXentGathered, clipLossGathered,
// localAlignGathered: MaMA's data-parallel NT-Xent, --gather all's CLIP and local alignment) on 2
// ranks under mpirun against one process over the concatenated rows: the same loss on every rank,
// each rank's feature gradients its rows of the one-process gradient times 2 and the scales'
// gradients the one-process ones (so the ranks' mean gradient is one process's). Without mpirun
// the 2-rank case is skipped, visibly.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { autograd, dist, Tensor } from 'mamakit';
import { fromBase64 } from './inputs.js';
import { heads } from './gathered_inputs.js';

const test = suite('dist gathered');
const program = join(dirname(fileURLToPath(import.meta.url)), 'programs', 'gathered.js');
const noMpi = spawnSync('mpirun', ['--version']).error
  ? 'mpirun is not installed (Debian: apt-get install openmpi-bin libopenmpi-dev)'
  : !dist.status().mpi.built ? `libmamakit_mpi.so is not built (${dist.status().mpi.detail}); install libopenmpi-dev and rebuild` : null;
const needs = (name: string, fn: () => void) => (noMpi ? (console.log(`  skip: ${name} (${noMpi})`), test.skip(name, fn)) : test(name, fn));

/** |got − want| ≤ rel·|want| + abs, element by element. */
function close(what: string, got: Float32Array, want: Float32Array, rel = 1e-5, abs = 1e-7) {
  assert.is(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++)
    if (!(Math.abs(got[i] - want[i]) <= rel * Math.abs(want[i]) + abs)) assert.unreachable(`${what}: [${i}] = ${got[i]}, one process over the concatenated rows: ${want[i]}`);
}

/** One process over the ranks' rows concatenated: the loss and the gradient of each input. */
function single(h: (typeof heads)[number], size: number) {
  const per = Array.from({ length: size }, (_, r) => h.inputs(r));
  const xs = per[0].map((x0, i) => {
    if (!h.rows[i]) return new autograd.Var(Tensor.fromArray(x0.data, x0.shape), true);
    const cat = new Float32Array(size * x0.data.length);
    per.forEach((p, r) => cat.set(p[i].data, r * x0.data.length));
    return new autograd.Var(Tensor.fromArray(cat, [size * x0.shape[0], ...x0.shape.slice(1)]), true);
  });
  const counts = Int32Array.from(Array.from({ length: size }, (_, r) => [...h.counts(r)]).flat());
  const loss = h.single(xs, counts), value = loss.value.toArray()[0];
  autograd.backward(loss);
  return { loss: value, grads: xs.map((x) => x.grad!.toArray()) };
}

needs('2 ranks: the losses and gradients of one process over the concatenated rows', () => {
  const size = 2, dir = mkdtempSync(join(tmpdir(), 'mamakit-gathered-'));
  try {
    const r = spawnSync('mpirun', ['--oversubscribe', '--allow-run-as-root', '-np', String(size), process.execPath, program, dir], { encoding: 'utf8', timeout: 60_000 });
    assert.is(r.status, 0, `${r.error?.message ?? ''}${r.stdout}${r.stderr}`);
    const ranks = Array.from({ length: size }, (_, k) => JSON.parse(readFileSync(join(dir, `rank-${k}.json`), 'utf8')) as Record<string, { loss: number; grads: string[] }>);
    for (const h of heads) {
      const one = single(h, size);
      ranks.forEach((got, k) => {
        close(`${h.name}: rank ${k} loss`, Float32Array.of(got[h.name].loss), Float32Array.of(one.loss));
        one.grads.forEach((d, i) => {
          const n = d.length / (h.rows[i] ? size : 1);
          const want = h.rows[i] ? d.slice(k * n, (k + 1) * n).map((v) => v * size) : d;
          close(`${h.name}: rank ${k} gradient of input ${i}`, fromBase64(got[h.name].grads[i]), want);
        });
      });
      // Not the rank's own rows alone: their loss is another.
      const own = h.inputs(0).map((x) => new autograd.Var(Tensor.fromArray(x.data, x.shape), true));
      const alone = autograd.noGrad(() => h.single(own, h.counts(0)).value.toArray()[0]);
      assert.ok(Math.abs(alone - one.loss) > 1e-3, `${h.name}: rank 0's own rows give ${alone}, the gathered batch ${one.loss}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('one process: the gathered heads are the plain ones', () => {
  const alone = { rank: 0, size: 1, allGather: (t: Tensor) => t };
  for (const h of heads) {
    const run = (f: (xs: InstanceType<typeof autograd.Var>[]) => InstanceType<typeof autograd.Var>) => {
      const xs = h.inputs(0).map((x) => new autograd.Var(Tensor.fromArray(x.data, x.shape), true));
      const loss = f(xs), value = loss.value.toArray()[0];
      autograd.backward(loss); // backward walks the whole tape: one loss at a time
      return { value, grads: xs.map((x) => x.grad!.toArray()) };
    };
    const a = run((xs) => h.gathered(xs, h.counts(0), alone)), b = run((xs) => h.single(xs, h.counts(0)));
    assert.is(a.value, b.value, h.name);
    a.grads.forEach((g, i) => close(`${h.name} gradient ${i}`, g, b.grads[i], 0, 0));
  }
});

test.run();
