// syncbn.test.ts: ops.syncBatchNorm (--sync-bn) on 2 ranks under mpirun against ops.batchNorm in
// one process over the concatenated rows: each rank's y and dx its rows of one process's, the
// ranks' dWeight and dBias summing to one process's (the data-parallel mean of gradients scaled
// as the gathered heads scale them), the running statistics one process's on every rank. On one
// rank, and in evaluation, it is batchNorm bit for bit. Without mpirun the 2-rank case is
// skipped, visibly.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { autograd, Tensor } from 'mamakit';
import { fromBase64 } from './inputs.js';
import * as I from './syncbn_inputs.js';
import { needs, noMpi, onRanks } from './mpirun.js';

const test = suite('dist syncbn');
const program = join(dirname(fileURLToPath(import.meta.url)), 'programs', 'syncbn.js');
type Comm = Parameters<typeof autograd.ops.syncBatchNorm>[3]['comm'];

/** |got − want| ≤ rel·|want| + abs, element by element (abs: the f32 rounding of values O(1) that cancel to near 0). */
function close(what: string, got: Float32Array, want: Float32Array, rel = 1e-5, abs = 1e-6) {
  assert.is(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++)
    if (!(Math.abs(got[i] - want[i]) <= rel * Math.abs(want[i]) + abs)) assert.unreachable(`${what}: [${i}] = ${got[i]}, one process over the concatenated rows: ${want[i]}`);
}

/** `calls` forward/backward passes of f over rows(rank) for each rank in `ranks`, concatenated. */
function run(ranks: number[], f: (x: InstanceType<typeof autograd.Var>, w: InstanceType<typeof autograd.Var>, b: InstanceType<typeof autograd.Var>, running: [Tensor, Tensor]) => InstanceType<typeof autograd.Var>) {
  const R = ranks.reduce((s, r) => s + I.rows(r), 0), running: [Tensor, Tensor] = [Tensor.full([I.C], 0), Tensor.full([I.C], 1)];
  const cat = (g: (r: number) => Float32Array) => Float32Array.from(ranks.flatMap((r) => [...g(r)]));
  const calls = Array.from({ length: I.calls }, (_, k) => {
    const x = new autograd.Var(Tensor.fromArray(cat((r) => I.x(r, k)), [R, I.C]), true);
    const w = new autograd.Var(Tensor.fromArray(I.weight(), [I.C]), true), b = new autograd.Var(Tensor.fromArray(I.bias(), [I.C]), true);
    const y = f(x, w, b, running), yv = y.value.toArray();
    autograd.backward(y, Tensor.fromArray(cat((r) => I.dy(r, k)), [R, I.C]));
    return { y: yv, dx: x.grad!.toArray(), dw: w.grad!.toArray(), db: b.grad!.toArray() };
  });
  return { calls, running: running.map((t) => t.toArray()) };
}
const plain = (training: boolean) => run([0, 1], (x, w, b, running) => autograd.ops.batchNorm(x, w, b, { running, training, momentum: I.momentum, eps: I.eps }));

needs(test, noMpi, '2 ranks: y, dx, dWeight, dBias and the running statistics of one process over the concatenated rows', () => {
  const size = 2, dir = mkdtempSync(join(tmpdir(), 'mamakit-syncbn-'));
  try {
    const r = onRanks(size, [program, dir]);
    assert.is(r.status, 0, `${r.cmd}: ${r.error?.message ?? ''}${r.out}`);
    const ranks = Array.from({ length: size }, (_, k) => JSON.parse(readFileSync(join(dir, `rank-${k}.json`), 'utf8')) as Record<string, Record<string, string> & string[]>);
    const one = plain(true);
    one.calls.forEach((want, k) => {
      let at = 0;
      const sums = { dw: new Float32Array(I.C), db: new Float32Array(I.C) };
      ranks.forEach((got, rank) => {
        const c = got[`call${k}`], n = I.rows(rank) * I.C, mine = (a: Float32Array) => a.slice(at, at + n);
        close(`call ${k}, rank ${rank}: y`, fromBase64(c.y), mine(want.y));
        close(`call ${k}, rank ${rank}: dx`, fromBase64(c.dx), mine(want.dx));
        for (const g of ['dw', 'db'] as const) fromBase64(c[g]).forEach((v, i) => (sums[g][i] += v));
        at += n;
      });
      close(`call ${k}: the ranks' dWeight summed`, sums.dw, want.dw);
      close(`call ${k}: the ranks' dBias summed`, sums.db, want.db);
    });
    ranks.forEach((got, rank) => one.running.forEach((want, i) => close(`rank ${rank}: running ${['mean', 'var'][i]}`, fromBase64(got.running[i]), want)));
    // Not each rank's own rows: their statistics are others.
    const own = run([0], (x, w, b, running) => autograd.ops.batchNorm(x, w, b, { running, training: true, momentum: I.momentum, eps: I.eps }));
    assert.ok(Math.abs(own.calls[0].y[0] - one.calls[0].y[0]) > 1e-3, `rank 0's own rows give y ${own.calls[0].y[0]}, every rank's ${one.calls[0].y[0]}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('one rank: batchNorm bit for bit; evaluation: batchNorm without a collective', () => {
  const alone: Comm = { rank: 0, size: 1, allGather: (t) => t, allReduce: (t) => t };
  const never: Comm = { rank: 0, size: 2, allGather: () => assert.unreachable('allGather in evaluation') as never, allReduce: () => assert.unreachable('allReduce in evaluation') as never };
  for (const [training, comm] of [[true, alone], [false, never]] as const) {
    const got = run([0, 1], (x, w, b, running) => autograd.ops.syncBatchNorm(x, w, b, { running, training, momentum: I.momentum, eps: I.eps, comm }));
    const want = plain(training);
    got.calls.forEach((c, k) => (['y', 'dx', 'dw', 'db'] as const).forEach((g) => close(`training ${training}, call ${k}: ${g}`, c[g], want.calls[k][g], 0, 0)));
    got.running.forEach((r, i) => close(`training ${training}: running ${i}`, r, want.running[i], 0, 0));
  }
});

test('bad x: a named error', () => {
  const two: Comm = { rank: 0, size: 2, allGather: (t) => t, allReduce: (t) => t };
  const x = new autograd.Var(Tensor.fromArray(new Float32Array(8).map((_, i) => i), [2, 2, 2]), false);
  assert.throws(() => autograd.ops.syncBatchNorm(x, null, null, { training: true, comm: two }), /syncBatchNorm: x must be 2-D/);
});

test.run();
