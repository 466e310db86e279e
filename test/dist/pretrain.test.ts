// pretrain.test.ts: `mamakit pretrain` on 2 ranks under mpirun (Open MPI), a tiny model. Rank r's
// k-th micro-batch is the one-process epoch's batch 2k + r and the ranks average their gradients,
// so 2 ranks of batch b with every term per rank (--gather none) are 1 process of batch b with 2
// micro-batches per step (each weighed ½): the same loss terms, gradient norms and weights within
// f32 rounding, BatchNorm included (dropout off: the ranks draw the masks of their joint batch of
// 2b). With --gather all --sync-bn, 2 ranks of batch b are 1 process of batch 2b, dropout
// included. By default NT-Xent spans both ranks' pairs. A 1-rank checkpoint resumed by 2 ranks
// continues as the 2-rank run, at the checkpoint's sample whatever the batch per step; rank 0
// alone writes the folder. Unreadable images that leave a rank's batch short are skipped by both.
import { suite } from '../helpers/suite.js';
import { smallMama } from '../helpers/index.js';
import * as assert from 'uvu/assert';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data, io } from 'mamakit';
import { needs as needsOn, noMpi, onRanks } from './mpirun.js';

const test = suite('dist pretrain');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-dist-pretrain-'));
const main = join('dist', 'lib', 'cli', 'main.js');
const small = [...smallMama, ...[
  // a constant learning rate after one warm-up step: a run of 2 steps resumed to 4 takes the 4-step run's steps
  'warmup=1', 'minLr=0.0005', 'lr=0.0005',
].flatMap((kv) => ['--set', kv])];
const embed = join(dir, 'embed');
const noDropout = ['embdPdrop', 'attnPdrop', 'residPdrop'].flatMap((k) => ['--set', `model.text.${k}=0`]);

/** `mamakit pretrain …` on np ranks under mpirun (null: one plain process), bounded to 60 s. */
function pretrain(np: number | null, out: string, ...args: string[]) {
  const argv = [main, 'pretrain', '--data', embed, '--synth-studies', '16', '--out', out, '--batch', '4', '--late-step', '2',
    '--eval-every', '0', '--no-eval', '--workers', '1', '--set', 'checkpointEvery=2', ...small, ...args];
  const r = onRanks(np, argv);
  if (r.error || r.status !== 0) throw new Error(`${r.cmd}: ${r.error?.message ?? `exit ${r.status ?? r.signal}`}\n${r.out.slice(-1500)}`);
  return r.out;
}
const rows = (run: string) => readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
/** A run checkpoint's trainable weights and AdamW's first moments (BatchNorm's running statistics are each rank's own). */
function state(run: string) {
  const t = io.readSafetensors(join(run, 'checkpoint', 'state.safetensors')).tensors, m = t.get('adam_m')!.data;
  return { w: t.get('values')!.data.subarray(0, m.length), m };
}
function close(what: string, got: number, want: number, rel = 1e-5) {
  assert.ok(Math.abs(got - want) <= rel * Math.abs(want) + 1e-7, `${what}: ${got}, the one-process run's ${want}`);
}

const needs = (name: string, fn: () => void | Promise<void>) => needsOn(test, noMpi, name, fn);

needs('2 ranks × batch 4 = 1 process × 2 micro-batches of 4; NT-Xent over both ranks; a 1-rank checkpoint resumed by 2 ranks', () => {
  const one = join(dir, 'one'), half = join(dir, 'half'), none = join(dir, 'none'), two = join(dir, 'two'), resumed = join(dir, 'resumed');
  pretrain(null, one, '--steps', '4', '--accum', '2', ...noDropout);
  const train = data.loadEmbed(join(embed, 'metadata.csv'), join(embed, 'clinical.csv'), embed, 0).images.filter((i) => i.split === 'train').length;
  assert.ok(train >= 4 * 2 * 4, `${train} training images: the 4 steps stay in one epoch`);
  pretrain(null, half, '--steps', '2', '--accum', '2', ...noDropout);
  cpSync(half, resumed, { recursive: true });
  pretrain(2, none, '--steps', '4', '--gather', 'none', ...noDropout);
  const log = pretrain(2, two, '--steps', '4', ...noDropout);
  assert.match(log, /2 ranks \(Open MPI[^)]*\): 4 images per micro-batch and rank, gradients averaged over the ranks, NT-Xent over all 8 pairs/);
  assert.is(log.match(/^done: /gm)?.length, 1, 'rank 0 alone reports');
  assert.match(pretrain(2, resumed, '--steps', '4', '--resume', ...noDropout), new RegExp(`resuming at step 2: epoch 0, sample 16 of ${train}`));
  const ref = rows(one), per = rows(none), got = rows(two), cont = rows(resumed);
  for (const r of [per, got, cont]) assert.equal(r.map((x) => x.step), [1, 2, 3, 4], 'one row per step: rank 0 alone writes metrics.jsonl');
  const all = ['loss', 'clip', 'clip2', 'ntxent', 'local', 'gradNorm', 'logitScale'];
  // Every term per rank: one process's steps, image-text (1, 2) and all four terms (3, 4).
  for (const k of all) for (const s of [0, 1, 2, 3]) if (k in ref[s]) close(`--gather none, step ${s + 1} ${k}`, per[s][k], ref[s][k]);
  assertWeights('--gather none against one process', state(none), state(one));
  // NT-Xent over both ranks' pairs: another loss from step 3 on.
  for (const k of all) for (const s of [0, 1]) if (k in ref[s]) close(`step ${s + 1} ${k}`, got[s][k], ref[s][k]);
  for (const s of [2, 3]) assert.ok(Math.abs(got[s].ntxent - ref[s].ntxent) > 1e-3, `step ${s + 1}: NT-Xent over 8 pairs ${got[s].ntxent}, over 4 ${ref[s].ntxent}`);
  // The 1-rank checkpoint of step 2 continued by 2 ranks: the 2-rank run's steps 3 and 4.
  for (const k of all) for (const s of [2, 3]) close(`resumed, step ${s + 1} ${k}`, cont[s][k], got[s][k]);
  assertWeights('resumed against 2 ranks', state(resumed), state(two));
  assert.ok(existsSync(join(two, 'report.md')));
});

/**
 * The first moments (the steps' mean gradients) within mRel relative plus mRms of their RMS, and
 * the weights within 1e-5 relative plus wAbs, except where the gradient is rounding alone (|m| below 1e-5 of
 * the RMS: Linear biases before BatchNorm, whose gradient is 0 in exact arithmetic), where AdamW's
 * normalised step follows the rounding: those within steps·lr.
 */
needs('--gather all: 2 ranks × batch 4 = 1 process × batch 8 over 5 image-text steps', () => {
  // Before lateStep (the local and SimCLR heads' BatchNorm would normalise each rank's batch): the
  // encoders have LayerNorm only; the text dropout masks are the batch of 8's.
  const same = ['--steps', '5', '--late-step', '5'];
  const one = join(dir, 'one8'), two = join(dir, 'all4');
  pretrain(null, one, '--batch', '8', ...same);
  const log = pretrain(2, two, '--batch', '4', '--gather', 'all', ...same);
  assert.match(log, /every term over all 8 pairs/);
  const ref = rows(one), got = rows(two);
  assert.equal(got.map((r) => r.step), [1, 2, 3, 4, 5]);
  for (const k of ['loss', 'clip', 'gradNorm', 'logitScale']) for (let s = 0; s < 5; s++) close(`step ${s + 1} ${k}`, got[s][k], ref[s][k]);
  // Unlike accumulation (the same micro-batches), a batch of 8 against two of 4 sums the rows in
  // other orders in every matmul: the moments' f32 rounding drifts to ≈ 2e-5 relative over the 5
  // steps, and where they are small by up to ≈ 1.2e-5 of their RMS (with text dropout on; the
  // wrong masks change the loss by 2 % at step 1), and the weights near 0 by ≈ 1e-4 relative
  // (AdamW's m/√v where m is small): those within 0.1 % of the most 5 steps can move a weight (5·lr).
  assertWeights('--gather all against one process of batch 8', state(two), state(one), 5, 1e-4, 1e-3 * 5 * 5e-4, 3e-5);
});

needs('--gather all --sync-bn: 2 ranks × batch 4 = 1 process × batch 8 over 5 steps with every term', () => {
  // All four terms from step 1 (lateStep 0); the patch and SimCLR heads' BatchNorm over both ranks'
  // rows (the sentence head's is per caption either way); text dropout on (the batch of 8's masks).
  const same = ['--steps', '5', '--late-step', '0'];
  const one = join(dir, 'one8late'), two = join(dir, 'sync4');
  pretrain(null, one, '--batch', '8', ...same);
  const log = pretrain(2, two, '--batch', '4', '--gather', 'all', '--sync-bn', ...same);
  assert.match(log, /every term over all 8 pairs, BatchNorm of the patch and SimCLR heads over every rank's rows/);
  const ref = rows(one), got = rows(two);
  assert.equal(got.map((r) => r.step), [1, 2, 3, 4, 5]);
  for (const k of ['loss', 'clip', 'clip2', 'ntxent', 'local', 'gradNorm', 'logitScale']) {
    assert.ok(k in ref[0], `${k} from step 1`);
    for (let s = 0; s < 5; s++) close(`step ${s + 1} ${k}`, got[s][k], ref[s][k]);
  }
  // The tolerances of the image-text case above, for the same reason (rows summed in other orders).
  assertWeights('--gather all --sync-bn against one process of batch 8', state(two), state(one), 5, 1e-4, 1e-3 * 5 * 5e-4, 3e-5);
});

needs('a resume continues at the checkpoint\'s sample: 1 process × batch 4 for 2 steps, then 2 ranks × 4 (--gather all --sync-bn) = then 1 process × 8', () => {
  // The step-2 checkpoint has consumed samples 0–7; both continue with samples 8–15, 16–23.
  const ckpt = join(dir, 'b4'), wide = join(dir, 'b4-then-8'), ranks = join(dir, 'b4-then-2x4');
  pretrain(null, ckpt, '--steps', '2');
  cpSync(ckpt, wide, { recursive: true }), cpSync(ckpt, ranks, { recursive: true });
  const train = data.loadEmbed(join(embed, 'metadata.csv'), join(embed, 'clinical.csv'), embed, 0).images.filter((i) => i.split === 'train').length;
  const at = new RegExp(`resuming at step 2: epoch 0, sample 8 of ${train}`);
  assert.match(pretrain(null, wide, '--steps', '4', '--batch', '8', '--resume'), at);
  assert.match(pretrain(2, ranks, '--steps', '4', '--batch', '4', '--gather', 'all', '--sync-bn', '--resume'), at);
  const ref = rows(wide), got = rows(ranks);
  for (const k of ['loss', 'clip', 'clip2', 'ntxent', 'local', 'gradNorm', 'logitScale']) for (const s of [2, 3]) close(`step ${s + 1} ${k}`, got[s][k], ref[s][k]);
});

needs('unreadable images: a rank\'s short batch joins the gathered terms, a batch short of 2 on one rank is skipped by both, unreadable.txt counts every rank\'s', async () => {
  // Which images each rank takes first: the loader's own epoch 0 (seed 0) on each shard.
  const broken = join(dir, 'broken');
  cpSync(embed, broken, { recursive: true });
  const train = data.loadEmbed(join(broken, 'metadata.csv'), join(broken, 'clinical.csv'), broken, 0).images.filter((i) => i.split === 'train');
  const first = async (rank: number, k: number) => {
    const loader = new data.Loader(train, null, { size: 32, batch: 4, seed: 0, train: true, workers: 1, shard: { rank, size: 2 } });
    let i = 0, got: number[] = [];
    try {
      for await (const b of loader.epoch(0)) if (i++ === k) (got = [...b.index]);
    } finally {
      await loader.close();
    }
    return got;
  };
  // Rank 1's first batch keeps at most one image; rank 0's second batch loses one (3 rows against 4).
  const bad = [...(await first(1, 0)).slice(0, 3), (await first(0, 1))[0]];
  for (const i of bad) writeFileSync(train[i].path, 'not an image');
  const out = join(dir, 'broken-run');
  const log = pretrain(2, out, '--data', broken, '--steps', '4', '--late-step', '0', '--gather', 'all', '--sync-bn');
  assert.match(log, /skipping a micro-batch on every rank: rank 1 has [01] readable image\(s\) of 4/);
  assert.equal(rows(out).map((r) => r.step), [1, 2, 3, 4]);
  // 4 steps of 2 × 4 samples and one group skipped: epoch 0 to its end (5 groups of 8 in 40
  // samples). Skipping rank 0's 3-row batch too would have taken the run into epoch 1.
  const position = JSON.parse(io.readSafetensors(join(out, 'checkpoint', 'state.safetensors')).metadata.state!);
  assert.equal([position.epoch, position.sample], [0, 40]);
  assert.is(train.length, 40);
  assert.match(readFileSync(join(out, 'unreadable.txt'), 'utf8'), new RegExp(`^4 of ${train.length} images could not be read on 2 ranks \\(skipped\\): `));
});

function assertWeights(what: string, got: ReturnType<typeof state>, want: ReturnType<typeof state>, steps = 4, mRel = 1e-5, wAbs = 1e-7, mRms = 1e-5) {
  const rms = Math.sqrt(want.m.reduce((s, v) => s + v * v, 0) / want.m.length);
  let worstM = 0, worstW = 0, noise = 0;
  for (let i = 0; i < want.m.length; i++) {
    worstM = Math.max(worstM, Math.abs(got.m[i] - want.m[i]) / (mRel * Math.abs(want.m[i]) + mRms * rms));
    const dw = Math.abs(got.w[i] - want.w[i]);
    if (Math.abs(want.m[i]) < 1e-5 * rms) noise = Math.max(noise, dw / (steps * 5e-4));
    else worstW = Math.max(worstW, dw / (1e-5 * Math.abs(want.w[i]) + wAbs));
  }
  assert.ok(worstM <= 1, `${what}: AdamW's first moments differ by ${worstM.toFixed(2)} × the tolerance (${mRel} relative + ${mRms} of their RMS)`);
  assert.ok(worstW <= 1, `${what}: weights after ${steps} steps differ by ${worstW.toFixed(2)} × the tolerance (1e-5 relative + ${wAbs})`);
  assert.ok(noise <= 1, `${what}: weights of rounding-level gradients differ by ${noise.toFixed(2)} × steps·lr`);
}

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
