// vit.bench.ts: one training step (forward, backward, AdamW) of the small ViT that
// `npm run pretrain` trains on the CPU — 6 layers, width 192, 3 heads, 4 registers, 8 grayscale
// 224-px images, patch 16 — against the same model in PyTorch on 2 threads (goal: at most 0.6×
// its time). Run: npm run bench -- vit
import { autograd, memoryStats, nn, optim, Tensor } from 'mamakit';
import { compareRounds, measure, Recorder } from './harness.js';

const rec = new Recorder(import.meta.url);
const cfg = nn.vitPresets['vit-tiny-reg4'];
const B = 8, E = 128;

class Probe extends nn.Module {
  readonly vit = this.child('vit', new nn.VisionTransformer(cfg, 1));
  readonly head = this.child('head', new nn.Linear(cfg.width, E, new nn.InitRng(2)));
  readonly scale = this.param('scale', [1], Math.log(1 / 0.07), false);
}
const model = new Probe();
const arena = new nn.ParamArena(model);
const opt = new optim.AdamW(arena, { lr: 1e-4, weightDecay: 0.05 });
const images = Tensor.fromArray(new Float32Array(B * cfg.imageSize ** 2).map(() => Math.random() * 2 - 1), [B, 1, cfg.imageSize, cfg.imageSize]);
const txtHost = new Float32Array(B * E).map(() => Math.random() - 0.5);
const txt = new autograd.Var(Tensor.fromArray(txtHost, [B, E]));
const { ops, backward } = autograd;

function step() {
  arena.zeroGrad();
  const { hidden, normed } = model.vit.forward(images);
  normed.dispose(); // not part of this loss; its node is freed by backward
  const v = ops.l2Normalize(model.head.forward(ops.meanPool(hidden)));
  const loss = ops.clipLoss(v, txt, model.scale);
  backward(loss);
  loss.dispose();
  opt.update();
}

const cases = [{ name: 'train step ViT 6×192, 3 heads, 4 reg, 8×1×224² p16' }];
const best = compareRounds({
  cases,
  peer: { name: 'torch', op: 'vit_step', arg: () => ({ B, size: cfg.imageSize, patch: cfg.patch, channels: 1, width: cfg.width, depth: cfg.depth, heads: cfg.heads, registers: cfg.registers, E }) },
  ours: (c) => measure(c.name, step, { maxTime: 3 }),
});
// Time per step; the ratio is ours over the peer's throughput (steps/s), so ≥ 1/0.6 = 1.67 meets the goal.
rec.add(cases[0].name, 'steps/s', 1e9, best[0].ours, best[0].peer != null ? { name: 'torch', seconds: best[0].peer! } : null);
console.log(`  mamakit ${(best[0].ours.seconds * 1e3).toFixed(0)} ms/step, torch ${best[0].peer != null ? (best[0].peer * 1e3).toFixed(0) : '—'} ms/step`);
// Peak tensor memory of one step above what the model and optimiser hold, plain and with
// every block checkpointed.
for (const ckpt of [false, true]) {
  model.vit.checkpointBlocks = ckpt;
  step();
  memoryStats(true);
  const base = memoryStats().liveBytes;
  step();
  console.log(`  peak tensor memory per step${ckpt ? ' (blocks checkpointed)' : ''}: ${((memoryStats().peakBytes - base) / 2 ** 20).toFixed(1)} MiB`);
}
rec.save();
