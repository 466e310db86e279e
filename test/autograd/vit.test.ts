// vit.test.ts: the autograd tape through the DINOv2 ViT: every parameter's gradient against
// central differences of the whole model, an over-fitted batch, noGrad, the tape emptied by
// backward, and Hugging Face parameter names.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { autograd, kernels, memoryStats, nn, optim, Tensor } from 'mamakit';
import { checkParamGrads, Rng } from '../helpers/index.js';

const test = suite('vit');
const rng = new Rng(2024);
const { Var, backward, noGrad, ops, tapeLength } = autograd;

const small: nn.VitConfig = { imageSize: 8, patch: 4, channels: 2, width: 8, depth: 2, heads: 2, mlpRatio: 2, registers: 2, layerScale: 0.5, eps: 1e-6 };

// A scalar head: mean-pool the pre-norm tokens and the normed ones, project, normalise, InfoNCE.
class Probe extends nn.Module {
  readonly vit: nn.VisionTransformer;
  readonly head: nn.Linear;
  readonly scale: nn.Param;
  constructor(cfg: nn.VitConfig, E: number) {
    super();
    this.vit = this.child('vit', new nn.VisionTransformer(cfg, 7));
    this.head = this.child('head', new nn.Linear(cfg.width, E, new nn.InitRng(3), { std: 0.3 }));
    this.scale = this.param('scale', [1], Math.log(1 / 0.07), false);
  }
  loss(images: Tensor, txt: autograd.Var): autograd.Var {
    const { hidden, normed, patches } = this.vit.forward(images);
    const pooled = ops.add(ops.add(ops.meanPool(hidden), ops.meanPool(normed)), ops.meanPool(patches));
    return ops.clipLoss(ops.l2Normalize(this.head.forward(pooled)), txt, this.scale);
  }
}


test('parameter names follow Hugging Face DINOv2-with-registers', () => {
  const names = new nn.VisionTransformer(small).namedParameters().map(([n]) => n);
  for (const n of ['embeddings.cls_token', 'embeddings.register_tokens', 'embeddings.position_embeddings',
    'embeddings.patch_embeddings.projection.weight', 'encoder.layer.0.norm1.weight', 'encoder.layer.0.attention.attention.query.weight',
    'encoder.layer.1.attention.attention.value.bias', 'encoder.layer.1.attention.output.dense.weight', 'encoder.layer.0.layer_scale1.lambda1',
    'encoder.layer.1.mlp.fc2.bias', 'encoder.layer.1.layer_scale2.lambda1', 'layernorm.bias'])
    assert.ok(names.includes(n), `missing ${n}`);
});

test('every parameter gradient matches central differences of the whole model (each entry, and each tensor as a whole)', () => {
  const B = 3, E = 5;
  const model = new Probe(small, E);
  const arena = new nn.ParamArena(model);
  // DINOv2 starts CLS and registers at 1e-6, where the first LayerNorm divides by ~√eps and
  // the loss is far from linear over any step f32 can resolve; well-scaled tokens here. Its
  // weights start at std 0.02, where attention is nearly uniform and the query and key
  // gradients (~1e-3) sit at f32's difference noise; 1/√in here makes them O(1).
  for (const p of [model.vit.cls, model.vit.reg!]) kernels.copy(Tensor.fromArray(rng.randn(p.value.size, 0.5), p.shape), p.value);
  for (const [name, p] of model.vit.namedParameters())
    if (/(query|key|value|dense|fc1|fc2)\.weight$/.test(name)) kernels.copy(Tensor.fromArray(rng.randn(p.value.size, 1 / Math.sqrt(p.shape[1])), p.shape), p.value);
  const images = Tensor.fromArray(rng.randn(B * 2 * 8 * 8), [B, 2, 8, 8]);
  const txt = new Var(Tensor.fromArray(rng.unitRows(B, E), [B, E]));
  const loss = model.loss(images, txt);
  backward(loss);
  assert.is(tapeLength(), 0);
  const f = () => noGrad(() => {
    const l = model.loss(images, txt);
    const v = l.value.toArray()[0];
    l.dispose();
    return v;
  });
  // A key bias adds the same logit to every key of a query: softmax is blind to it.
  const checked = checkParamGrads(arena.params, f, { zero: /attention\.key\.bias$/, rng });
  assert.is(checked, model.parameterCount());
});

test('a small ViT over-fits one batch with AdamW', () => {
  const B = 8, E = 16;
  const cfg: nn.VitConfig = { imageSize: 32, patch: 8, channels: 1, width: 32, depth: 2, heads: 2, mlpRatio: 4, registers: 4, layerScale: 1e-1, eps: 1e-6 };
  const model = new Probe(cfg, E);
  const arena = new nn.ParamArena(model);
  const opt = new optim.AdamW(arena, { lr: 3e-3, weightDecay: 0.05, maxGradNorm: 1 });
  const images = Tensor.fromArray(rng.randn(B * 32 * 32), [B, 1, 32, 32]);
  const txt = new Var(Tensor.fromArray(rng.unitRows(B, E), [B, E]));
  const losses: number[] = [];
  for (let step = 0; step < 40; step++) {
    arena.zeroGrad();
    const loss = model.loss(images, txt);
    losses.push(loss.value.toArray()[0]);
    backward(loss);
    loss.dispose();
    opt.update(optim.warmupCosine(step, { lr: 3e-3, warmup: 5, total: 40 }));
  }
  assert.ok(losses[39] < 0.3 * losses[0], `loss ${losses[0].toFixed(3)} → ${losses[39].toFixed(3)}`);
});

test('noGrad records nothing; frozen parameters get no gradient', () => {
  const model = new Probe(small, 4);
  const arena = new nn.ParamArena(model);
  const images = Tensor.fromArray(rng.randn(2 * 2 * 64), [2, 2, 8, 8]);
  const txt = new Var(Tensor.fromArray(rng.unitRows(2, 4), [2, 4]));
  noGrad(() => model.loss(images, txt).dispose());
  assert.is(tapeLength(), 0);
  assert.ok(arena.trainable.length > 0 && arena.decay.length > 0 && arena.noDecay.length > 0);
});

test('another image size resamples the position embedding; its gradient matches central differences', () => {
  const B = 2, E = 3;
  const model = new Probe(small, E);
  const arena = new nn.ParamArena(model);
  const images = Tensor.fromArray(rng.randn(B * 2 * 12 * 8), [B, 2, 12, 8]); // a 3×2 grid, trained at 2×2
  const txt = new Var(Tensor.fromArray(rng.unitRows(B, E), [B, E]));
  backward(model.loss(images, txt));
  const p = model.vit.pos, grad = p.grad!.toArray(), value = p.value.toArray();
  const f = () => noGrad(() => model.loss(images, txt).value.toArray()[0]);
  for (const i of [0, 3, 9, 20, 33]) {
    const at = (d: number) => {
      const w = value.slice();
      w[i] += d;
      kernels.copy(Tensor.fromArray(w, p.shape), p.value);
      return f();
    };
    const num = (at(1e-3) - at(-1e-3)) / 2e-3;
    at(0);
    assert.ok(Math.abs(num - grad[i]) <= 3e-3 + 0.05 * Math.abs(num), `pos[${i}]: analytic ${grad[i]}, numeric ${num}`);
  }
  assert.ok(arena.params.length > 0);
  assert.throws(() => noGrad(() => model.vit.forward(Tensor.zeros([1, 2, 10, 8]))), /10×8 images are not in whole 4-pixel patches/);
});

test('BatchNorm1d (training and eval) and Dropout backward match central differences', () => {
  class Net extends nn.Module {
    readonly fc = this.child('fc', new nn.Linear(5, 4, new nn.InitRng(1), { std: 0.5 }));
    readonly bn = this.child('bn', new nn.BatchNorm1d(4));
    readonly drop = new nn.Dropout(0.3);
  }
  const net = new Net();
  const arena = new nn.ParamArena(net);
  const x = new Var(Tensor.fromArray(rng.randn(6 * 5), [6, 5]));
  const target = new Var(Tensor.fromArray(rng.unitRows(6, 4), [6, 4]));
  const scale = new Var(Tensor.fromArray(Float32Array.of(1), [1]));
  for (const training of [true, false]) {
    net.bn.training = training;
    arena.zeroGrad();
    const loss = () => ops.clipLoss(ops.l2Normalize(net.drop.forward(net.bn.forward(net.fc.forward(x)), 11)), target, scale);
    // Running statistics move in training mode; snapshot them so every evaluation sees the same.
    const rm = net.bn.runningMean.value.toArray(), rv = net.bn.runningVar.value.toArray();
    const reset = () => (kernels.copy(Tensor.fromArray(rm, [4]), net.bn.runningMean.value), kernels.copy(Tensor.fromArray(rv, [4]), net.bn.runningVar.value));
    backward(loss());
    for (const p of [net.fc.weight, net.bn.weight!, net.bn.bias!]) {
      const value = p.value.toArray(), grad = p.grad!.toArray();
      for (let i = 0; i < Math.min(6, value.length); i++) {
        const at = (d: number) => {
          const w = value.slice();
          w[i] += d;
          kernels.copy(Tensor.fromArray(w, p.shape), p.value);
          reset();
          return noGrad(() => loss().value.toArray()[0]);
        };
        const num = (at(1e-3) - at(-1e-3)) / 2e-3;
        at(0);
        assert.ok(Math.abs(num - grad[i]) <= 3e-3 + 0.05 * Math.abs(num), `training=${training} ${p.name}[${i}]: analytic ${grad[i]}, numeric ${num}`);
      }
    }
    reset();
  }
});

test('checkpointed blocks give the same gradients with a lower peak of tensor memory', () => {
  const B = 4, E = 8;
  const cfg: nn.VitConfig = { imageSize: 32, patch: 4, channels: 1, width: 32, depth: 4, heads: 2, mlpRatio: 4, registers: 4, layerScale: 0.1, eps: 1e-6 };
  const images = Tensor.fromArray(rng.randn(B * 32 * 32), [B, 1, 32, 32]);
  const txtHost = rng.unitRows(B, E);
  const run = (ckpt: boolean) => {
    const model = new Probe(cfg, E);
    model.vit.checkpointBlocks = ckpt;
    const arena = new nn.ParamArena(model);
    const txt = new Var(Tensor.fromArray(txtHost, [B, E]));
    memoryStats(true);
    const base = memoryStats().liveBytes;
    backward(model.loss(images, txt));
    return { grads: arena.grads.toArray(), peak: memoryStats().peakBytes - base };
  };
  const plain = run(false), ckpt = run(true);
  for (let i = 0; i < plain.grads.length; i++)
    if (Math.abs(plain.grads[i] - ckpt.grads[i]) > 1e-5 + 1e-4 * Math.abs(plain.grads[i])) assert.unreachable(`grad[${i}] ${plain.grads[i]} vs ${ckpt.grads[i]}`);
  assert.ok(ckpt.peak < 0.7 * plain.peak, `peak ${ckpt.peak} vs ${plain.peak} bytes`);
  console.log(`  peak tensor memory of forward + backward: ${(plain.peak / 2 ** 20).toFixed(2)} MiB, checkpointed ${(ckpt.peak / 2 ** 20).toFixed(2)} MiB`);
});

test('parameter counts: the formula matches built models; ViT-B/14 with registers is DINOv2 base, 86.6 M', () => {
  for (const c of [small, nn.vitPresets['vit-tiny-reg4']]) assert.is(new nn.VisionTransformer(c).parameterCount(), nn.vitParamCount(c));
  // Hugging Face's Dinov2WithRegistersModel (base) has these plus a 768-wide mask token.
  assert.is(nn.vitParamCount(nn.vitPresets['vit-b14-reg4']), 86_582_784);
});

test('gradients accumulate over micro-batches until zeroGrad; SGD steps', () => {
  const model = new Probe(small, 4);
  const arena = new nn.ParamArena(model);
  const images = Tensor.fromArray(rng.randn(2 * 2 * 64), [2, 2, 8, 8]);
  const txt = new Var(Tensor.fromArray(rng.unitRows(2, 4), [2, 4]));
  backward(model.loss(images, txt));
  const once = arena.grads.toArray();
  backward(model.loss(images, txt));
  const twice = arena.grads.toArray();
  for (let i = 0; i < once.length; i++) if (Math.abs(twice[i] - 2 * once[i]) > 1e-6 + 1e-5 * Math.abs(once[i])) assert.unreachable(`grad[${i}]`);
  const before = arena.values.toArray();
  new optim.SGD(arena, { lr: 0.1, momentum: 0.9 }).update();
  const after = arena.values.toArray();
  const t = arena.trainable;
  for (let i = t.offset; i < t.offset + t.length; i++)
    if (Math.abs(after[i] - (before[i] - 0.1 * twice[i])) > 1e-6 + 1e-6 * Math.abs(before[i] - 0.1 * twice[i])) assert.unreachable(`sgd[${i}]: ${before[i]} - 0.1·${twice[i]} → ${after[i]}`);
  arena.zeroGrad();
  assert.ok(arena.grads.toArray().every((v) => v === 0));
});

test.run();
