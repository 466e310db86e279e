// nccl_emu.test.ts: `mamakit pretrain --device cuda` on 2 ranks under mpirun with the NCCL
// backend (native/dist/nccl.cu) of the emulated CUDA library, against the stand-in NCCL over MPI
// (native/tests/nccl_mpi_standin.cpp): 3 steps of the small model (--gather all --sync-bn, every
// term from step 1, f32) match the same 2-rank run on the CPU (MPI) within test/cuda/train.test.ts's
// f32 bounds for CUDA against the CPU: every loss term within 1e-4 relative, every weight within
// 1e-4 of max(its tensor's largest, 10·Σ lr). What CUDA's collectives carry in training (the
// gradient arena's all-reduce, the gathered features, the synchronised BatchNorm statistics) goes
// through our NCCL backend; the stand-in checks every call (not NCCL itself: see dist.test.ts).
// Skipped, visibly, without the emulated library, the stand-in or mpirun.
import { suite } from '../helpers/suite.js';
import { smallMama } from '../helpers/index.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'mamakit';
import { needs as needsOn, noStandin, onRanks, ranksEnv, standin } from './mpirun.js';

const test = suite('dist nccl (emulated CUDA)');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-nccl-emu-'));
const main = join('dist', 'lib', 'cli', 'main.js');
const embed = join(dir, 'embed');

/** `mamakit pretrain` of 3 steps on 2 ranks under mpirun on `device`, with the ranks' env. */
function pretrain(device: 'cpu' | 'cuda', out: string, env: NodeJS.ProcessEnv) {
  const argv = [main, 'pretrain', '--data', embed, '--synth-studies', '16', '--out', out, '--batch', '4', '--late-step', '0', '--steps', '3',
    '--gather', 'all', '--sync-bn', '--device', device, '--precision', 'f32', '--eval-every', '0', '--no-eval', '--workers', '1', ...smallMama];
  return onRanks(2, argv, 120_000, env);
}
const rows = (run: string) => readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((r) => r.loss !== undefined);
const weights = (run: string) => io.readSafetensors(join(run, 'checkpoint', 'model.safetensors')).tensors;

needsOn(test, noStandin, '2 ranks, --device cuda on the emulated library with the stand-in NCCL: 3 steps (--gather all --sync-bn, f32) match the 2-rank CPU run', () => {
  const cpu = join(dir, 'cpu'), cuda = join(dir, 'cuda');
  for (const [device, out] of [['cpu', cpu], ['cuda', cuda]] as const) {
    const r = pretrain(device, out, ranksEnv(standin));
    if (r.error || r.status !== 0) throw new Error(`${r.cmd}: ${r.error?.message ?? `exit ${r.status ?? r.signal}`}\n${r.out.slice(-2000)}`);
    assert.match(r.out, /2 ranks \(Open MPI[^)]*\): .*every term over all 8 pairs, BatchNorm of the patch and SimCLR heads over every rank's rows/);
    assert.not.match(r.out, /mamakit NCCL stand-in/, 'the stand-in refused no call, and the communicator was destroyed');
  }
  const c = rows(cpu), g = rows(cuda);
  assert.equal(g.map((r) => r.step), [1, 2, 3]);
  let worstTerm = 0;
  for (let i = 0; i < 3; i++)
    for (const k of ['loss', 'clip', 'clip2', 'ntxent', 'local', 'gradNorm', 'logitScale']) {
      assert.ok(Number.isFinite(c[i][k]), `cpu step ${i + 1} ${k} = ${c[i][k]}`);
      const rel = Math.abs(g[i][k] - c[i][k]) / Math.abs(c[i][k]);
      assert.ok(rel <= 1e-4, `step ${i + 1} ${k}: cuda ${g[i][k]}, cpu ${c[i][k]} (relative ${rel.toExponential(2)})`);
      worstTerm = Math.max(worstTerm, rel);
    }
  assert.ok(new Set(c.map((r) => r.loss)).size === 3, 'the loss moves from step to step');
  // As in test/cuda/train.test.ts: the parameters whose gradient is exactly 0 (the biases of the
  // Linears before a training-mode BatchNorm, the key bias) follow rounding noise, held to 2·Σ lr
  // (as are the running means of those BatchNorms); the rest to 1e-4 of max(the tensor's largest, 10·Σ lr).
  // Without LoRA the text encoder trains too: its key bias is the middle third of c_attn.bias.
  const nullGrad = /^local_(image|text)_head\.([03]\.bias|[14]\.running_mean)$|attention\.attention\.key\.bias$/;
  const isNull = (name: string, i: number, n: number) => nullGrad.test(name) || (/attn\.c_attn\.bias$/.test(name) && i >= n / 3 && i < (2 * n) / 3);
  const sumLr = c.reduce((s, r) => s + r.lr, 0), cw = weights(cpu), gw = weights(cuda);
  assert.equal([...gw.keys()].sort(), [...cw.keys()].sort());
  let worst = 0, where = '';
  for (const [name, t] of cw) {
    const u = gw.get(name)!.data, n = t.data.length;
    const s = Math.max(t.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0), 10 * sumLr);
    for (let i = 0; i < n; i++) {
      if (isNull(name, i, n)) {
        assert.ok(Math.abs(u[i] - t.data[i]) <= 2 * sumLr, `${name}[${i}]: cuda ${u[i]}, cpu ${t.data[i]}`);
        continue;
      }
      const e = Math.abs(u[i] - t.data[i]) / s;
      if (e > worst) (worst = e), (where = `${name}[${i}]: cuda ${u[i]}, cpu ${t.data[i]}`);
    }
  }
  assert.ok(worst <= 1e-4, `parameters after step 3: worst ${where} (${worst.toExponential(2)} of max(the tensor's largest, 10·Σ lr))`);
  console.log(`  loss terms within ${worstTerm.toExponential(2)} relative; parameters after step 3 within ${worst.toExponential(2)} of max(the tensor's largest, 10·Σ lr), worst at ${where}`);
  // The CUDA run's collectives went through NCCL: without one named, the first of them fails.
  const none = pretrain('cuda', join(dir, 'no-nccl'), ranksEnv(null));
  assert.ok(none.status !== 0, none.out);
  assert.match(none.out, /CUDA tensors need NCCL: the emulated CUDA library opens no NCCL but a stand-in that MAMAKIT_NCCL_LIB names/, none.out.slice(-2000));
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
