// optim.test.ts: AdamW and SGD steps against float64 re-implementations of torch.optim's
// update rules over several steps and parameter groups; sumSquares and globalNorm.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { kernels, Tensor } from 'mamakit';
import { assertClose, forEachIsa, Rng, throwsNamed } from '../helpers/index.js';

const test = suite('optim');
const rng = new Rng(20);

forEachIsa(test, 'AdamW over 5 steps, two groups with different decay, gradient scale', () => {
  const n = 1037, split = 600;
  const p0 = rng.randn(n), m = new Float64Array(n), v = new Float64Array(n), p = Float64Array.from(p0);
  const tp = Tensor.fromArray(p0, [n]), tm = Tensor.zeros([n]), tv = Tensor.zeros([n]);
  // β rounded to f32 as the kernel holds them; 1 − β is then exact in f32.
  const lr = 1e-2, b1 = Math.fround(0.9), b2 = Math.fround(0.999), eps = 1e-8, scale = 0.5;
  for (let step = 1; step <= 5; step++) {
    const g = rng.randn(n);
    const tg = Tensor.fromArray(g, [n]);
    const groups = [{ offset: 0, length: split, wd: 0.1 }, { offset: split, length: n - split, wd: 0 }];
    for (const gr of groups) {
      kernels.adamwStep(tp, tg, tm, tv, { lr, step, beta1: b1, beta2: b2, eps, weightDecay: gr.wd, gradScale: scale, offset: gr.offset, length: gr.length });
      for (let i = gr.offset; i < gr.offset + gr.length; i++) {
        const gi = g[i] * scale;
        p[i] *= 1 - lr * gr.wd;
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        p[i] -= (lr * (m[i] / (1 - b1 ** step))) / (Math.sqrt(v[i] / (1 - b2 ** step)) + eps);
      }
    }
  }
  assertClose(tp.toArray(), p, { atol: 1e-6, rtol: 1e-5, what: 'params' });
  assertClose(tm.toArray(), m, { atol: 1e-7, rtol: 1e-5, what: 'm' });
  assertClose(tv.toArray(), v, { atol: 1e-9, rtol: 1e-5, what: 'v' });
});

forEachIsa(test, 'SGD with momentum and weight decay over 4 steps; plain SGD without a buffer', () => {
  const n = 333, p = Float64Array.from(rng.randn(n)), buf = new Float64Array(n);
  const tp = Tensor.fromArray(Float32Array.from(p), [n]), tb = Tensor.zeros([n]);
  for (let step = 0; step < 4; step++) {
    const g = rng.randn(n);
    kernels.sgdStep(tp, Tensor.fromArray(g, [n]), tb, { lr: 0.1, momentum: 0.9, weightDecay: 1e-3 });
    for (let i = 0; i < n; i++) {
      buf[i] = 0.9 * buf[i] + g[i] + 1e-3 * p[i];
      p[i] -= 0.1 * buf[i];
    }
  }
  assertClose(tp.toArray(), p, { atol: 1e-5, rtol: 1e-5, what: 'sgd params' });
  const q = rng.randn(10), g = rng.randn(10), tq = Tensor.fromArray(q, [10]);
  kernels.sgdStep(tq, Tensor.fromArray(g, [10]), null, { lr: 0.5 });
  assertClose(tq.toArray(), Array.from(q, (v, i) => v - 0.5 * g[i]), { what: 'plain sgd' });
});

forEachIsa(test, 'sumSquares and globalNorm in double', () => {
  for (const n of [1, 7, 1000, 300_001]) {
    const x = rng.randn(n);
    let s = 0;
    for (const v of x) s += v * v;
    const got = kernels.sumSquares(Tensor.fromArray(x, [n]));
    assert.ok(Math.abs(got - s) <= 1e-6 * s, `sumSquares n=${n}: ${got} vs ${s}`);
  }
  const a = rng.randn(50), b = rng.randn(70);
  const norm = kernels.globalNorm([Tensor.fromArray(a, [50]), Tensor.fromArray(b, [7, 10])]);
  const want = Math.sqrt([...a, ...b].reduce((s, v) => s + v * v, 0));
  assert.ok(Math.abs(norm - want) <= 1e-6 * want);
});

test('bad arguments are named', () => {
  const p = Tensor.fromArray(rng.randn(8), [8]), g = Tensor.fromArray(rng.randn(8), [8]);
  const m = Tensor.zeros([8]), v = Tensor.zeros([8]);
  throwsNamed(() => kernels.adamwStep(p, g, m, v, { lr: 1e-3, step: 0 }), RangeError, /step must be an integer ≥ 1/);
  throwsNamed(() => kernels.adamwStep(p, g, m, Tensor.zeros([7]), { lr: 1e-3, step: 1 }), RangeError, /adamw: v has 7 elements but params has 8/);
  throwsNamed(() => kernels.adamwStep(p, g, m, m, { lr: 1e-3, step: 1 }), RangeError, /m must not be the same tensor as v/);
  throwsNamed(() => kernels.adamwStep(p, g, m, v, { lr: NaN, step: 1 }), RangeError, /lr must be in/);
  throwsNamed(() => kernels.adamwStep(p, g, m, v, { lr: 1e-3, step: 1, offset: 8 }), RangeError, /offset must be an integer in \[0, 7\]/);
  throwsNamed(() => kernels.adamwStep(p, g, m, v, { lr: 1e-3, step: 1, offset: 4, length: 5 }), RangeError, /length must be an integer in \[1, 4\]/);
  throwsNamed(() => kernels.sgdStep(p, g, null, { lr: 0.1, momentum: 0.9 }), TypeError, /momentum 0.9 needs a momentumBuffer/);
});

test.run();
