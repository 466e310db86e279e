// memory.test.ts: mama.memoryPlan against measured peaks. Three small configurations (no LoRA;
// LoRA with dropout; LoRA with checkpointed encoders) run one training micro-batch (forward,
// backward, AdamW step) on the CPU in f32: the plan's arenas equal the arena's tensors exactly and
// its peak is within 10 % of memoryStats().peakBytes; the same in bf16 on CUDA (the emulated
// library without a GPU). The base preset's plan needs no allocation.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { autograd, memoryStats, mama, nn, optim, Tensor, type Device } from 'mamakit';
import { cudaTest, Rng } from '../helpers/index.js';

const test = suite('memory plan');
setFlagsFromString('--expose-gc');
// Tensors a test dropped are freed by their finalizers: collect them before measuring.
const gc = runInNewContext('gc') as () => void;

interface Case {
  name: string;
  cfg: mama.MamaConfig;
  batch: number;
  sentences: number;
}

const vit = (imageSize: number, width: number, depth: number, heads: number) =>
  ({ imageSize, patch: 8, channels: 1, width, depth, heads, mlpRatio: 4, registers: 4, layerScale: 0.1, eps: 1e-6 });
const text = (width: number, depth: number, heads: number) => ({ vocab: 788, positions: 144, width, depth, heads, eps: 1e-5, scaleByLayer: true, embdPdrop: 0.1, residPdrop: 0.1 });
const heads = { embed: 16, localHidden: 64, simclrOut: 16, maxSentences: 8 };

const cases: Case[] = [
  { name: 'no LoRA', cfg: { vit: vit(64, 32, 2, 2), text: text(32, 2, 2), ...heads, maxTokens: 48 }, batch: 16, sentences: 6 },
  { name: 'LoRA with dropout', cfg: { vit: vit(48, 48, 3, 3), text: text(64, 3, 4), lora: { rank: 4, alpha: 16, dropout: 0.1 }, ...heads, maxTokens: 64 }, batch: 12, sentences: 8 },
  { name: 'LoRA, checkpointed', cfg: { vit: vit(64, 48, 3, 3), text: text(64, 3, 4), lora: { rank: 4, alpha: 16, dropout: 0.1 }, ...heads, maxTokens: 64, checkpoint: true }, batch: 24, sentences: 5 },
];

/** A batch of B captions with `sentences` separators each, random images and tokens. */
function batchOf(c: Case, seed: number): mama.MamaBatch {
  const rng = new Rng(seed), B = c.batch, L = c.cfg.maxTokens, S2 = c.cfg.vit.imageSize ** 2;
  const lens = Int32Array.from({ length: B }, () => rng.int(c.sentences + 2, L));
  return {
    images: rng.randn(B * S2), views: rng.randn(B * S2),
    ids: Int32Array.from({ length: B * L }, () => rng.int(0, c.cfg.text.vocab - 1)), lens,
    sentences: [...lens].map((n) => Int32Array.from({ length: c.sentences }, (_, j) => Math.floor(((j + 1) * (n - 1)) / (c.sentences + 1)))),
  };
}

/** Measured bytes of one micro-batch from an empty start on `device`: the arenas' tensors and the peak. */
function measure(c: Case, device: Device, precision: 'f32' | 'bf16') {
  const stats = () => (device === 'cuda' ? memoryStats().cuda! : memoryStats());
  gc();
  const base = stats().liveBytes;
  const model = new mama.Mama(c.cfg, 0);
  const arena = new nn.ParamArena(model, { device, dtype: precision });
  const opt = new optim.AdamW(arena, { lr: 1e-3, weightDecay: 0.1, maxGradNorm: 1 });
  const batch = batchOf(c, 3);
  gc();
  memoryStats(true);
  const r = model.loss(batch, true, 1);
  autograd.backward(r.loss, Tensor.full([1], 1, { device }));
  r.inputs.forEach((t) => t.dispose());
  opt.update();
  const bytes = (t: Tensor) => t.size * (t.dtype === 'f32' ? 4 : 2);
  return {
    peak: stats().peakBytes - base,
    arenas: { values: bytes(arena.values), compute: arena.compute === arena.values ? 0 : bytes(arena.compute), grads: bytes(arena.grads), moments: bytes(opt.m) + bytes(opt.v) },
    roles: { trainable: arena.trainable.length, f32: arena.params.filter(([, p]) => p.keepF32).reduce((s, [, p]) => s + p.init.length, 0), total: arena.compute.size },
    grads: arena.grads.toArray(),
  };
}

/** The plan's arenas equal the arena's tensors, its peak is within 10 % of the measured one. */
function check(c: Case, device: Device, precision: 'f32' | 'bf16') {
  const plan = mama.memoryPlan(c.cfg, { batch: c.batch, sentences: c.sentences, device, precision });
  const m = measure(c, device, precision);
  assert.ok(m.grads.some((g) => g !== 0), 'a real backward ran');
  assert.equal(plan.arenas, m.arenas);
  const p = plan.params;
  assert.equal({ trainable: p.trainable, f32: p.f32, total: p.trainable + p.frozen + p.f32 }, m.roles);
  // Activations and the backward's transient (a recomputed block) are most of the peak here, so
  // that an error of 20 % in what the ops keep shows.
  assert.ok(plan.peakBytes - plan.staticBytes > 0.6 * plan.peakBytes, `arenas ${plan.staticBytes} of ${plan.peakBytes}`);
  const ratio = plan.peakBytes / m.peak;
  console.log(`  ${c.name}, ${precision} on ${device}: plan ${plan.peakBytes} bytes (${(plan.peakBytes / 2 ** 20).toFixed(2)} MiB), measured ${m.peak} (${(m.peak / 2 ** 20).toFixed(2)} MiB), ratio ${ratio.toFixed(4)}`);
  assert.ok(Math.abs(ratio - 1) <= 0.1, `plan ${plan.peakBytes} bytes, measured ${m.peak} (ratio ${ratio.toFixed(3)})`);
}

for (const c of cases) test(`${c.name}: the arenas as planned, the peak within 10 % of the measured one (CPU, f32)`, () => check(c, 'cpu', 'f32'));

for (const checkpoint of [false, true]) {
  const c: Case = {
    name: `LoRA, checkpointing ${checkpoint ? 'on' : 'off'}`, batch: checkpoint ? 24 : 8, sentences: 3,
    cfg: { vit: vit(32, 32, 2, 2), text: text(32, 2, 2), lora: { rank: 2, alpha: 8, dropout: 0.1 }, ...heads, maxTokens: 24, checkpoint },
  };
  cudaTest(test, `${c.name}: the arenas as planned, the peak within 10 % of the measured one (CUDA, bf16)`, () => check(c, 'cuda', 'bf16'));
}

test('the base preset plans at once, without allocating: checkpointing keeps it under 75 GiB at batch 36 in bf16', () => {
  gc();
  const before = memoryStats().liveBytes;
  const on = mama.memoryPlan(mama.mamaPresets.base, { batch: 36, device: 'cuda' });
  const off = mama.memoryPlan(mama.mamaPresets.base, { batch: 36, device: 'cuda', checkpoint: false });
  assert.is(memoryStats().liveBytes, before);
  assert.is(on.options.checkpoint, true);
  assert.is(on.options.precision, 'bf16');
  assert.ok(on.peakBytes < 75 * 2 ** 30, on.format());
  assert.ok(on.peakBytes < 0.5 * off.peakBytes, `checkpointed ${on.peakBytes}, not ${off.peakBytes}`);
  // bf16: 2 bytes per frozen parameter, 18 per trained one (f32 master, gradient, m, v and the bf16 copy).
  assert.is(on.arenas.compute, 2 * (on.params.trainable + on.params.frozen + on.params.f32));
  assert.is(on.arenas.values + on.arenas.grads + on.arenas.moments, 16 * on.params.trainable + 4 * on.params.f32);
  assert.match(on.format(), /peak +\d+\.\d\d GiB/);
  assert.throws(() => mama.memoryPlan(mama.mamaPresets.base, { batch: 36, precision: 'bf16' }), /bf16 needs device cuda/);
});

test.run();
