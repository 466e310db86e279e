// pretrain.test.ts: `mamakit pretrain` on 2 ranks under mpirun (Open MPI), a tiny model. Rank r's
// k-th micro-batch is the one-process epoch's batch 2k + r and the ranks average their gradients,
// so 2 ranks of batch b are 1 process of batch b with 2 micro-batches per step (each weighed ½):
// the same loss terms, gradient norms and weights within f32 rounding, BatchNorm, dropout and
// all. A 1-rank checkpoint resumed by 2 ranks continues that run; rank 0 alone writes the folder.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data, dist, io } from 'mamakit';

const test = suite('dist pretrain');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-dist-pretrain-'));
const main = join('dist', 'lib', 'cli', 'main.js');
const small = [
  'model.vit.imageSize=32', 'model.vit.patch=8', 'model.vit.width=32', 'model.vit.depth=1', 'model.vit.heads=2', 'model.vit.registers=2',
  'model.text.width=32', 'model.text.depth=1', 'model.text.heads=2', 'model.embed=16', 'model.localHidden=32', 'model.simclrOut=16',
  // a constant learning rate after one warm-up step: a run of 2 steps resumed to 4 takes the 4-step run's steps
  'warmup=1', 'minLr=0.0005', 'lr=0.0005',
].flatMap((kv) => ['--set', kv]);
const embed = join(dir, 'embed');

/** `mamakit pretrain …` on np ranks under mpirun (null: one plain process), bounded to 60 s. */
function pretrain(np: number | null, out: string, ...args: string[]) {
  const argv = [main, 'pretrain', '--data', embed, '--synth-studies', '16', '--out', out, '--batch', '4', '--late-step', '2',
    '--eval-every', '0', '--no-eval', '--workers', '1', '--set', 'checkpointEvery=2', ...small, ...args];
  const cmd = np === null ? [process.execPath, ...argv] : ['mpirun', '--oversubscribe', '--allow-run-as-root', '-np', String(np), process.execPath, ...argv];
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', timeout: 60_000 });
  const out_ = `${r.stdout}${r.stderr}`;
  if (r.error || r.status !== 0) throw new Error(`${cmd.join(' ')}: ${r.error?.message ?? `exit ${r.status ?? r.signal}`}\n${out_.slice(-1500)}`);
  return out_;
}
const rows = (run: string) => readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
const weights = (run: string) => io.readSafetensors(join(run, 'checkpoint', 'state.safetensors')).tensors.get('values')!.data;

function close(what: string, got: number, want: number, rel = 1e-5) {
  assert.ok(Math.abs(got - want) <= rel * Math.abs(want) + 1e-7, `${what}: ${got}, the one-process run's ${want}`);
}

const noMpi = spawnSync('mpirun', ['--version']).error
  ? 'mpirun is not installed (Debian: apt-get install openmpi-bin libopenmpi-dev)'
  : !dist.status().mpi.built ? `libmamakit_mpi.so is not built (${dist.status().mpi.detail}); install libopenmpi-dev and rebuild` : null;
const needs = (name: string, fn: () => void) => (noMpi ? (console.log(`  skip: ${name} (${noMpi})`), test.skip(name, fn)) : test(name, fn));

needs('2 ranks × batch 4 = 1 process × 2 micro-batches of 4; a 1-rank checkpoint resumed by 2 ranks', () => {
  const one = join(dir, 'one'), two = join(dir, 'two'), resumed = join(dir, 'resumed');
  pretrain(null, one, '--steps', '2', '--accum', '2');
  const train = data.loadEmbed(join(embed, 'metadata.csv'), join(embed, 'clinical.csv'), embed, 0).images.filter((i) => i.split === 'train').length;
  assert.ok(train >= 4 * 2 * 4, `${train} training images: the 4 steps stay in one epoch`);
  cpSync(one, resumed, { recursive: true });
  const log = pretrain(2, two, '--steps', '4');
  assert.match(log, /2 ranks \(Open MPI[^)]*\): 4 images per micro-batch and rank/);
  assert.is(log.match(/^done: /gm)?.length, 1, 'rank 0 alone reports');
  pretrain(2, resumed, '--steps', '4', '--resume');
  const ref = rows(one), got = rows(two), cont = rows(resumed);
  assert.equal(got.map((r) => r.step), [1, 2, 3, 4], 'one row per step: rank 0 alone writes metrics.jsonl');
  assert.equal(cont.map((r) => r.step), [1, 2, 3, 4]);
  for (const k of ['loss', 'clip', 'gradNorm', 'logitScale']) for (const s of [0, 1]) close(`step ${s + 1} ${k}`, got[s][k], ref[s][k]);
  // Steps 3 and 4 (all four terms) of the resumed run against the 2-rank run.
  for (const k of ['loss', 'clip', 'clip2', 'ntxent', 'local', 'gradNorm']) for (const s of [2, 3]) close(`step ${s + 1} ${k}`, cont[s][k], got[s][k]);
  const [a, b] = [weights(two), weights(resumed)];
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / (1e-5 * Math.abs(a[i]) + 1e-7));
  assert.ok(worst <= 1, `weights after 4 steps: ${worst.toFixed(2)} × the tolerance 1e-5 relative`);
  assert.ok(existsSync(join(two, 'report.md')));
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
