// adamw.test.ts: optim.AdamW over a ParamArena when some parameters sit out steps (MaMA's heads
// before lateStep): they stay bit-identical, and when they join, their bias correction counts
// their own steps, as torch.optim.AdamW's per-parameter state does (float64 reference).
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { kernels, mama, nn, optim, Tensor } from 'mamakit';
import { assertIdentical, Rng } from '../helpers/index.js';

const test = suite('AdamW skip');

class Two extends nn.Module {
  readonly a: nn.Linear;
  readonly b: nn.Linear;
  constructor() {
    super();
    const rng = new nn.InitRng(3);
    this.a = this.child('a', new nn.Linear(5, 3, rng));
    this.b = this.child('b', new nn.Linear(4, 7, rng));
  }
}

test('skipped parameters stay as they are; joining later, their first step is a first step', () => {
  const m = new Two(), arena = new nn.ParamArena(m), rng = new Rng(9);
  const lr = 0.01, wd = 0.1, eps = 1e-8;
  const opt = new optim.AdamW(arena, { lr, weightDecay: wd, eps });
  const setGrads = () => {
    for (const [, p] of arena.params) {
      if (!p.grad) continue;
      const g = Tensor.fromArray(rng.randn(p.init.length).map((v) => v + 0.5), p.shape);
      kernels.copy(g, p.grad), g.dispose();
    }
  };
  const skip = m.b.namedParameters().map(([, p]) => p);
  const b0 = skip.map((p) => p.value.toArray());
  for (let s = 0; s < 3; s++) {
    setGrads();
    opt.update(lr, skip);
  }
  skip.forEach((p, i) => assertIdentical(p.value.toArray(), b0[i], 'a skipped parameter changed'));
  assert.is(opt.idleSteps(skip[0]), 3);
  setGrads();
  const grads = skip.map((p) => Float64Array.from(p.grad!.toArray()));
  opt.update(lr);
  skip.forEach((p, i) => {
    const got = p.value.toArray();
    const decay = m.b.weight === p ? wd : 0; // matrices decay, biases do not
    grads[i].forEach((g, k) => {
      // torch's first step: m̂ = g, v̂ = g², p ← p(1 − lr·wd) − lr·g/(|g| + eps)
      const want = b0[i][k] * (1 - lr * decay) - (lr * g) / (Math.abs(g) + eps);
      assert.ok(Math.abs(got[k] - want) < 1e-6, `${i}[${k}]: ${got[k]} vs ${want}`);
    });
  });
  assert.throws(() => opt.setIdleSteps(skip[0], 9), /idle steps must be an integer in \[0, 4\], got 9/);
});

test('decayAll: weight decay on every trainable parameter (biases too); the base preset is the authors\' one group, unclipped', () => {
  for (const decayAll of [false, true]) {
    const m = new Two(), arena = new nn.ParamArena(m);
    kernels.fill(arena.trainableValues(), 1), arena.zeroGrad();
    new optim.AdamW(arena, { lr: 0.01, weightDecay: 0.1, decayAll }).update();
    for (const [name, p] of arena.params) {
      const want = Math.fround(1 - (decayAll || p === m.a.weight || p === m.b.weight ? 0.01 * 0.1 : 0));
      p.value.toArray().forEach((v, k) => assert.is(v, want, `decayAll ${decayAll}, ${name}[${k}]`));
    }
  }
  const base = mama.defaultConfig('base'), tiny = mama.defaultConfig('tiny');
  assert.equal([base.decayAll, base.maxGradNorm, base.weightDecay], [true, null, 0.1]);
  assert.equal([tiny.decayAll, tiny.maxGradNorm], [false, 1]);
});

test.run();
