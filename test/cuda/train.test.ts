// train.test.ts: MaMA pre-training on CUDA (the emulated library in CI, the GPU on a GPU
// machine). A small model with both encoders, all four loss terms, LoRA with dropout and
// gradient accumulation trains 5 steps on the CPU and on CUDA from the same seed and batches:
// every loss term per step and every parameter after the last step agree within 1e-4 relative
// (f32); in bf16 (mixed precision) within what bf16 rounding explains. On CUDA a resumed run ends bit-identical to an uninterrupted one; one optimizer step
// moves a fixed, explained number of arrays between host and device and waits twice;
// `npm run pretrain -- --device cuda` writes a run folder that `mamakit eval` reads, and without
// a usable GPU it says so in one line and exits 2.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { autograd, io, kernels, mama, nn, Tensor, type Device } from 'mamakit';
import { assertClose, assertIdentical, cudaTest, matmulRef, Rng, throwsNamed } from '../helpers/index.js';

const test = suite('cuda training');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-cuda-train-'));
const data = join(dir, 'data');

const model: mama.MamaConfig = {
  vit: { imageSize: 32, patch: 8, channels: 1, width: 32, depth: 1, heads: 2, mlpRatio: 2, registers: 2, layerScale: 0.1, eps: 1e-6 },
  text: { vocab: 788, positions: 144, width: 32, depth: 1, heads: 2, eps: 1e-5, scaleByLayer: true },
  embed: 16, localHidden: 32, simclrOut: 16, maxTokens: 144, maxSentences: 12,
  lora: { rank: 2, alpha: 8, dropout: 0.1 },
};

// A language model for LoRA to adapt (without one, pretrain drops LoRA and trains the text encoder fully).
const textWeights = join(dir, 'lm.safetensors');
{
  const lm = new nn.Gpt2(model.text, { seed: 8 });
  new nn.ParamArena(lm);
  const V = model.text.vocab - 6, D = model.text.width;
  io.writeSafetensors(textWeights, lm.namedParameters().map(([n, p]) => {
    const v = p.value.toArray();
    return ['transformer.' + n, n === 'wte.weight' ? { shape: [V, D], data: v.slice(0, V * D) } : { shape: p.hfShape, data: v }];
  }));
}

// f32 unless asked (CUDA's default precision is bf16; that default is tested below).
function config(out: string, device: Device, steps: number, precision: mama.Precision = 'f32'): mama.TrainConfig {
  return Object.assign(mama.defaultConfig('tiny'), {
    model, textWeights, data, synthStudies: 16, out, steps, device, precision,
    batch: 4, accum: 2, warmup: 2, lateStep: 0, checkpointEvery: 2, evalEvery: 0, workers: 1,
    // The authors' ColorJitter (tiny turns it off), as these batches were when the bf16 bounds
    // below were measured: from step 2 the terms follow the trajectory, so other batches drift differently.
    jitter: 0.8,
  });
}

const bf16 = (x: Float32Array) => Tensor.fromArray(x, [x.length], { device: 'cuda', dtype: 'bf16' }).toArray();

const terms = ['loss', 'clip', 'clip2', 'ntxent', 'local', 'gradNorm', 'logitScale'];
const rows = (out: string) => mama.readMetrics(join(out, 'metrics.jsonl')).filter((r) => r.loss !== undefined);
const weights = (out: string) => io.readSafetensors(join(out, 'checkpoint', 'model.safetensors')).tensors;

cudaTest(test, 'f32: 5 steps on CUDA (both encoders, four terms, LoRA with dropout, accumulation 2) match the CPU within 1e-4', async () => {
  const cpu = join(dir, 'cpu'), gpu = join(dir, 'cuda');
  await mama.pretrain(config(cpu, 'cpu', 5), { log: () => {}, evaluate: false });
  await mama.pretrain(config(gpu, 'cuda', 5), { log: () => {}, evaluate: false });
  const c = rows(cpu), g = rows(gpu);
  assert.equal(g.map((r) => r.step), [1, 2, 3, 4, 5]);
  for (let i = 0; i < 5; i++)
    for (const k of terms) {
      assert.ok(Number.isFinite(c[i][k]), `cpu step ${i + 1} ${k} = ${c[i][k]}`);
      const rel = Math.abs(g[i][k] - c[i][k]) / Math.abs(c[i][k]);
      assert.ok(rel <= 1e-4, `step ${i + 1} ${k}: cuda ${g[i][k]}, cpu ${c[i][k]} (relative ${rel.toExponential(2)})`);
    }
  assert.ok(new Set(c.map((r) => r.loss)).size === 5, 'the loss moves from step to step');
  const cw = weights(cpu), gw = weights(gpu);
  assert.equal([...gw.keys()].sort(), [...cw.keys()].sort());
  // Some parameters have a gradient of exactly 0: the biases of the Linears that feed a
  // training-mode BatchNorm (the local heads' .0 and .3, as in the paper's PyTorch heads: the
  // batch mean takes them out) and the attention's key bias (it adds q·b to every logit of a row,
  // which the softmax ignores). What each backend computes for them is rounding noise, which
  // AdamW turns into steps of about ±lr, so they are held only to the distance AdamW can put
  // between two runs (2·Σ lr); so are the running means of the BatchNorms those biases feed.
  const nullGrad = /^local_(image|text)_head\.([03]\.bias|[14]\.running_mean)$|attention\.attention\.key\.bias$/, sumLr = c.reduce((s, r) => s + r.lr, 0);
  let worst = 0, where = '', nulls = 0;
  for (const [name, t] of cw) {
    const u = gw.get(name)!.data, scale = t.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    if (nullGrad.test(name)) {
      nulls++;
      for (let i = 0; i < t.data.length; i++) assert.ok(Math.abs(u[i] - t.data[i]) <= 2 * sumLr, `${name}[${i}]: cuda ${u[i]}, cpu ${t.data[i]}`);
      continue;
    }
    // AdamW normalises each gradient element, so an element whose gradient is a cancelling sum (a
    // bias: a column sum over the batch) moves by that sum's relative rounding error times lr,
    // whatever its size; in a tensor that started at 0 that is a fixed share of the tensor's
    // largest value. Hence the scale: the tensor's largest value, or 10·Σ lr (1e-3·Σ lr in all).
    const s = Math.max(scale, 10 * sumLr);
    for (let i = 0; i < t.data.length; i++) {
      const e = Math.abs(u[i] - t.data[i]) / s;
      if (e > worst) (worst = e), (where = `${name}[${i}]: cuda ${u[i]}, cpu ${t.data[i]}`);
    }
  }
  assert.is(nulls, 8 + model.vit.depth);
  assert.ok(worst <= 1e-4, `parameters after step 5: worst ${where} (${worst.toExponential(2)} of max(the tensor's largest, 10·Σ lr))`);
  console.log(`  f32 parameters after step 5: worst ${worst.toExponential(2)} of max(the tensor's largest, 10·Σ lr), at ${where}`);
  assert.ok(cw.get('text_encoder.h.0.attn.c_attn.lora_B.weight')!.data.some((v) => v !== 0), 'LoRA trained');
});

// The largest |m̂/√v̂| AdamW can take at step t (β1 0.9, β2 0.999, eps left out): by
// Cauchy–Schwarz, √(Σ_i a_i²/b_i)·√(1−β2^t)/(1−β1^t) with a_i = (1−β1)β1^(t−i), b_i = (1−β2)β2^(t−i).
function adamRatio(t: number, b1 = 0.9, b2 = 0.999): number {
  let s = 0;
  for (let i = 1; i <= t; i++) s += ((1 - b1) * b1 ** (t - i)) ** 2 / ((1 - b2) * b2 ** (t - i));
  return (Math.sqrt(s) * Math.sqrt(1 - b2 ** t)) / (1 - b1 ** t);
}

// bf16 keeps 8 significant bits (unit roundoff u = 2^-9): every activation, weight copy and
// gradient is rounded to it, against the CPU's f32. At step 1 (the same weights) that rounding
// alone separates the runs: each loss term within 4u = 2^-7, the gradient norm within 2^-6. AdamW
// then moves each weight by about ±lr whatever the size of its gradient, so wherever m̂ is near 0
// rounding can flip the sign of a step: from step 2 the losses are those of slightly different
// weights (held to 2^-5), and a weight can be as far from the CPU's as two AdamW trajectories can
// get, 2·Σ lr_t·max|m̂/√v̂|; on average they stay within 5 % of Σ lr (most steps agree in sign).
// Measured on the emulated library: losses within 1.0e-3 at step 1 and 1.5e-2 after, 4.4e-3 for the step-1
// gradient norm, a mean weight distance of 1.9 % of Σ lr.
cudaTest(test, 'bf16 (mixed precision): the same 5 steps within the tolerance bf16 rounding explains', async () => {
  const cpu = join(dir, 'cpu'), gpu = join(dir, 'cuda-bf16');
  if (!existsSync(join(cpu, 'checkpoint'))) await mama.pretrain(config(cpu, 'cpu', 5), { log: () => {}, evaluate: false });
  // No precision given: CUDA's default, bf16.
  await mama.pretrain({ ...config(gpu, 'cuda', 5), precision: undefined }, { log: () => {}, evaluate: false });
  assert.is(JSON.parse(readFileSync(join(gpu, 'config.json'), 'utf8')).precision, 'bf16', 'the default on CUDA');
  const c = rows(cpu), g = rows(gpu);
  assert.equal(g.map((r) => r.step), [1, 2, 3, 4, 5]);
  const worstRel = [0, 0];
  for (let i = 0; i < 5; i++)
    for (const k of terms.filter((k) => k !== 'gradNorm' || i === 0)) {
      const rel = Math.abs(g[i][k] - c[i][k]) / Math.abs(c[i][k]), tol = k === 'gradNorm' ? 2 ** -6 : i === 0 ? 2 ** -7 : 2 ** -5;
      assert.ok(rel <= tol, `step ${i + 1} ${k}: bf16 ${g[i][k]}, cpu ${c[i][k]} (relative ${rel.toExponential(2)} > ${tol})`);
      worstRel[i === 0 ? 0 : 1] = Math.max(worstRel[i === 0 ? 0 : 1], k === 'gradNorm' ? 0 : rel);
    }
  console.log(`  bf16 loss terms: worst ${worstRel[0].toExponential(2)} relative at step 1, ${worstRel[1].toExponential(2)} after; step-1 gradient norm ${(Math.abs(g[0].gradNorm - c[0].gradNorm) / c[0].gradNorm).toExponential(2)}`);
  const cw = weights(cpu), gw = weights(gpu), sumLr = c.reduce((s, r) => s + r.lr, 0);
  const reach = 2 * c.reduce((s, r, i) => s + r.lr * adamRatio(i + 1), 0) * 1.01;
  let sum = 0, n = 0;
  for (const [name, t] of cw) {
    const u = gw.get(name)!.data;
    // BatchNorm statistics are not AdamW's: they follow the batch (its rounding, 2^-5 of their
    // scale) and the biases before them (as far apart as AdamW takes those).
    const stat = /running_(mean|var)$/.test(name), scale = t.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const bound = stat ? reach + 2 ** -5 * scale : reach;
    for (let i = 0; i < t.data.length; i++) {
      const e = Math.abs(u[i] - t.data[i]);
      assert.ok(e <= bound, `${name}[${i}]: bf16 ${u[i]}, cpu ${t.data[i]}: ${e.toExponential(2)} apart, more than ${bound.toExponential(2)}`);
      if (!stat) (sum += e), n++;
    }
  }
  assert.ok(sum / n <= 0.05 * sumLr, `mean distance ${(sum / n).toExponential(2)} > 5 % of Σ lr (${sumLr})`);
  console.log(`  bf16 weights: mean distance ${((100 * sum) / n / sumLr).toFixed(1)} % of Σ lr`);
});

cudaTest(test, 'a bf16 arena: trainable parameters are a bf16 copy of f32 masters with f32 gradients, frozen ones bf16 alone; updates, loads and saves go through the masters', () => {
  class Net extends nn.Module {
    readonly fc = this.child('fc', new nn.Linear(5, 3, new nn.InitRng(4)));
    readonly frozen = this.child('frozen', new nn.Linear(7, 11, new nn.InitRng(5)));
    readonly bn = this.child('bn', new nn.BatchNorm1d(3));
  }
  const net = new Net();
  net.frozen.weight.requiresGrad = net.frozen.bias!.requiresGrad = false;
  const arena = new nn.ParamArena(net, { device: 'cuda', dtype: 'bf16' });
  const w = net.fc.weight, fw = net.frozen.weight;
  assert.is(arena.dtype, 'bf16');
  assert.is(w.value.dtype, 'bf16'), assert.is(w.master!.dtype, 'f32'), assert.is(w.grad!.dtype, 'f32');
  assert.is(fw.value.dtype, 'bf16'), assert.is(fw.master, null), assert.is(fw.grad, null);
  assert.is(net.bn.runningMean.value.dtype, 'f32', 'BatchNorm statistics stay f32'), assert.is(net.bn.runningMean.master, null);
  // Masters: the trainable parameters and the BatchNorm statistics, not the frozen layer's 88 values.
  const trainable = 5 * 3 + 3 + 2 * 3, stats = 2 * 3;
  assert.is(arena.values.size, trainable + stats), assert.is(arena.grads.size, trainable), assert.is(arena.compute.size, trainable + stats + 7 * 11 + 11);
  // read() and write() cover every parameter in f32, the frozen ones through their bf16 values.
  const all = arena.read();
  assert.is(all.length, arena.compute.size);
  const moved = all.map((x, i) => x + 0.25 * (i % 5));
  arena.write(moved);
  const rounded = bf16(moved);
  assertIdentical(arena.read(), moved.map((x, i) => (i < trainable + stats ? x : rounded[i])), 'write then read');
  // A value bf16 cannot hold: the master keeps it, the model reads it rounded.
  const v = Float32Array.from({ length: 15 }, (_, i) => 0.1 + i / 3);
  kernels.copy(Tensor.fromArray(v, [3, 5], { device: 'cuda' }), w.master!);
  arena.sync();
  assertIdentical(w.master!.toArray(), v, 'master');
  assertIdentical(w.value.toArray(), bf16(v), 'the bf16 copy');
  const file = join(dir, 'net.safetensors');
  nn.saveWeights(net, file);
  assertIdentical(io.readSafetensors(file).tensors.get('fc.weight')!.data, v, 'saved from the master');
  kernels.fill(w.master!, 0), arena.sync();
  nn.loadWeights(net, file);
  assertIdentical(w.master!.toArray(), v, 'loaded into the master'), assertIdentical(w.value.toArray(), bf16(v), 'and its copy');
});

// Mixed precision: a Linear's weight and bias gradients come out of the GEMM in f32 from bf16
// operands (f32 accumulation, one rounding to f32), not rounded to bf16 first: against float64 of
// the same bf16 inputs they hold to f32's 1e-5, where a bf16 intermediate would be 2^-9 off.
cudaTest(test, 'bf16 arena: a Linear\'s weight and bias gradients are f32 from the GEMM (f32 accuracy, no bf16 rounding)', () => {
  const lin = new nn.Linear(40, 24, new nn.InitRng(9));
  new nn.ParamArena(lin, { device: 'cuda', dtype: 'bf16' });
  const R = 37, rng = new Rng(71);
  const x = new autograd.Var(Tensor.fromArray(rng.randn(R * 40), [R, 40], { device: 'cuda', dtype: 'bf16' }));
  const g = Tensor.fromArray(rng.randn(R * 24), [R, 24], { device: 'cuda', dtype: 'bf16' });
  const xs = x.value.toArray(), gs = g.toArray();
  autograd.backward(lin.forward(x), g);
  const dw = lin.weight.grad!, db = lin.bias!.grad!;
  assert.is(dw.dtype, 'f32'), assert.is(db.dtype, 'f32');
  // dW [24, 40] = gᵀ·x, db = Σ_rows g.
  assertClose(dw.toArray(), matmulRef(gs, xs, 24, 40, R, { transA: true }), { atol: 1e-5, rtol: 1e-5, what: 'dW' });
  assertClose(db.toArray(), Float64Array.from({ length: 24 }, (_, j) => gs.filter((_, i) => i % 24 === j).reduce((a, b) => a + b, 0)), { atol: 1e-5, rtol: 1e-5, what: 'db' });
});

test('16-bit arenas are CUDA only: ParamArena and pretrain on the CPU say so; the CPU defaults to f32', async () => {
  const m = new nn.Linear(2, 2, new nn.InitRng(1));
  throwsNamed(() => new nn.ParamArena(m, { dtype: 'bf16' }), RangeError, /ParamArena: dtype bf16 needs device cuda/);
  const e = await mama.pretrain(config(join(dir, 'no'), 'cpu', 1, 'bf16'), { log: () => {} }).catch((x: Error) => x);
  assert.instance(e, RangeError);
  assert.match((e as Error).message, /^pretrain: precision bf16 needs device cuda/);
  const f = await mama.pretrain(config(join(dir, 'no'), 'cuda', 1, 'f16' as mama.Precision), { log: () => {} }).catch((x: Error) => x);
  assert.match((f as Error).message, /^pretrain: precision must be f32 or bf16, got f16/);
  assert.is(mama.precisionOf({ device: 'cpu' }), 'f32'), assert.is(mama.precisionOf({}), 'f32');
  assert.is(mama.precisionOf({ device: 'cuda' }), 'bf16'), assert.is(mama.precisionOf({ device: 'cuda', precision: 'f32' }), 'f32');
});

cudaTest(test, 'on CUDA a resumed run ends bit-identical to an uninterrupted one (weights, AdamW moments)', async () => {
  const whole = join(dir, 'cuda'), parts = join(dir, 'cuda-parts');
  if (!existsSync(join(whole, 'checkpoint'))) await mama.pretrain(config(whole, 'cuda', 5), { log: () => {}, evaluate: false });
  await mama.pretrain(config(parts, 'cuda', 2), { log: () => {}, evaluate: false });
  await mama.pretrain(config(parts, 'cuda', 5), { log: () => {}, evaluate: false, resume: true });
  const w = io.readSafetensors(join(whole, 'checkpoint/state.safetensors')).tensors, p = io.readSafetensors(join(parts, 'checkpoint/state.safetensors')).tensors;
  for (const k of ['values', 'adam_m', 'adam_v']) assertIdentical(p.get(k)!.data, w.get(k)!.data, k);
  assert.equal(rows(parts).map((r) => r.step), [1, 2, 3, 4, 5]);
});

// Per micro-batch (both views; LoRA, so the token and position tables are frozen): the two image
// batches; the index arrays of the four row lookups (token ids, positions, the sentences'
// separator rows, their spread to [B, S]) for the forward, and of the two sentence lookups for
// the backward (the frozen tables get no gradient); the text attention's key lengths, forward and
// backward, per text layer; the local loss's sentence counts. Per step: the
// gradient norm (clipping needs it on the host to compute its factor) and the metrics row (the
// summed loss terms and the logit scale in one array) come back, each with one wait. Nothing else
// waits: uploads are queued, frees are stream-ordered.
cudaTest(test, 'one optimizer step moves 11 arrays per micro-batch to the device, 2 back, and waits twice', async () => {
  const steps: Array<{ toDevice: number; toHost: number; syncs: number }> = [];
  await mama.pretrain(config(join(dir, 'traffic'), 'cuda', 3), { log: () => {}, evaluate: false, onStep: (s) => steps.push(s.transfers) });
  const perMicro = 2 + 4 + 2 + 2 * model.text.depth + 1;
  assert.equal(steps, Array(3).fill({ toDevice: 2 * perMicro, toHost: 2, syncs: 2 }));
});

const cli = join('dist', 'lib', 'cli', 'main.js');
const small = [
  'model.vit.imageSize=32', 'model.vit.patch=8', 'model.vit.width=32', 'model.vit.depth=1', 'model.vit.heads=2', 'model.vit.registers=2',
  'model.text.width=32', 'model.text.depth=1', 'model.text.heads=2', 'model.embed=16', 'model.localHidden=32', 'model.simclrOut=16',
].flatMap((kv) => ['--set', kv]);

cudaTest(test, 'npm run pretrain -- --device cuda --steps 3 writes a run folder that mamakit eval reads back', () => {
  const out = join(dir, 'cli');
  const r = spawnSync('npm', ['run', '--silent', 'pretrain', '--', '--device', 'cuda', '--steps', '3', '--data', data, '--synth-studies', '16',
    '--out', out, '--batch', '8', '--late-step', '1', '--eval-every', '2', '--probe-steps', '20', '--workers', '1', '--set', 'warmup=2', ...small], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr.slice(-800));
  assert.match(r.stderr, /█+ 3\/3 loss \d+\.\d{3} \(all terms\)/);
  assert.match(r.stdout, /^done: 3 steps; zero-shot density bACC \d\.\d{3}; report in /m);
  for (const f of ['checkpoint/model.safetensors', 'checkpoint/state.safetensors', 'metrics.jsonl', 'eval.json', 'report.md']) assert.ok(existsSync(join(out, f)), f);
  assert.ok(rows(out).length === 3 && mama.readMetrics(join(out, 'metrics.jsonl')).some((l) => l.val_zeroshot_density_bacc !== undefined));
  const written = readFileSync(join(out, 'eval.json'), 'utf8');
  assert.is(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).precision, 'bf16', "CUDA's default precision");
  // On CUDA eval computes in the run's bf16 and reproduces its figures; on the CPU in f32, which
  // rounds differently (on this tiny model AUCs move by up to 0.1): the same keys, valid figures.
  for (const device of ['cuda', 'cpu']) {
    const ev = spawnSync(process.execPath, [cli, 'eval', '--run', out, '--device', device], { encoding: 'utf8' });
    assert.is(ev.status, 0, ev.stderr.slice(-500));
    const again = readFileSync(join(out, 'eval.json'), 'utf8');
    if (device === 'cuda') assert.is(again, written, 'mamakit eval --device cuda reproduces eval.json');
    else {
      const a = JSON.parse(again) as Record<string, number | string>, w = JSON.parse(written) as Record<string, number | string>;
      assert.equal(Object.keys(a), Object.keys(w));
      assert.is(a.probe_protocol, 'cached');
      for (const [k, v] of Object.entries(a)) if (k !== 'probe_protocol') assert.ok(typeof v === 'number' && v >= 0 && v <= 1, `${k} = ${v}`);
    }
  }
});

test('--device cuda without a usable CUDA library: one line naming it, exit status 2', () => {
  const env = { ...process.env, MAMAKIT_CUDA_LIB: join(dir, 'no-such-libmamakit_cuda.so') };
  for (const cmd of [['pretrain', '--data', join(dir, 'none'), '--synth-studies', '0'], ['eval', '--run', join(dir, 'none')]]) {
    const r = spawnSync(process.execPath, [cli, ...cmd, '--device', 'cuda'], { encoding: 'utf8', env });
    assert.is(r.status, 2, `${cmd[0]}: status ${r.status}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^${cmd[0]}: device cuda is not available \\(.*no-such-libmamakit_cuda\\.so.*\\)\\n$`));
  }
});

test.run();
