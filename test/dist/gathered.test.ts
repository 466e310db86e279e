// gathered.test.ts: the loss heads over every rank's rows (ops.ntXentGathered, clipLossGathered,
// localAlignGathered: MaMA's data-parallel NT-Xent, --gather all's CLIP and local alignment) on 2
// ranks under mpirun against one process over the concatenated rows (5 on rank 0, 7 on rank 1):
// the same loss on every rank, each rank's feature gradients its rows of the one-process gradient
// times 2 and the scales'
// gradients the one-process ones (so the ranks' mean gradient is one process's). Without mpirun
// the 2-rank case is skipped, visibly.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { autograd, Tensor } from 'mamakit';
import { fromBase64 } from './inputs.js';
import { heads, rowsOf } from './gathered_inputs.js';
import { needs, noMpi, onRanks } from './mpirun.js';

const test = suite('dist gathered');
const program = join(dirname(fileURLToPath(import.meta.url)), 'programs', 'gathered.js');

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
    const cat = Float32Array.from(per.flatMap((p) => [...p[i].data]));
    return new autograd.Var(Tensor.fromArray(cat, [per.reduce((n, p) => n + p[i].shape[0], 0), ...x0.shape.slice(1)]), true);
  });
  const counts = Int32Array.from(Array.from({ length: size }, (_, r) => [...h.counts(r)]).flat());
  const loss = h.single(xs, counts), value = loss.value.toArray()[0];
  autograd.backward(loss);
  return { loss: value, grads: xs.map((x) => x.grad!.toArray()) };
}

needs(test, noMpi, '2 ranks: the losses and gradients of one process over the concatenated rows', () => {
  const size = 2, dir = mkdtempSync(join(tmpdir(), 'mamakit-gathered-'));
  try {
    const r = onRanks(size, [program, dir]);
    assert.is(r.status, 0, `${r.cmd}: ${r.error?.message ?? ''}${r.out}`);
    const ranks = Array.from({ length: size }, (_, k) => JSON.parse(readFileSync(join(dir, `rank-${k}.json`), 'utf8')) as Record<string, { loss: number; grads: string[] }>);
    for (const h of heads) {
      const one = single(h, size);
      ranks.forEach((got, k) => {
        // Given the ranks' row counts, the same bits as gathering them.
        assert.equal(got[h.name + '+rows'], got[h.name], `${h.name}: rank ${k} with the row counts given`);
        close(`${h.name}: rank ${k} loss`, Float32Array.of(got[h.name].loss), Float32Array.of(one.loss));
        one.grads.forEach((d, i) => {
          const per = h.inputs(0)[i].data.length / rowsOf(0), start = Array.from({ length: k }, (_, j) => rowsOf(j)).reduce((a, b) => a + b, 0) * per;
          const want = h.rows[i] ? d.slice(start, start + rowsOf(k) * per).map((v) => v * size) : d;
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
