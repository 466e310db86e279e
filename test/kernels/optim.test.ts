// optim.test.ts: AdamW and SGD steps against float64 re-implementations of torch.optim's
// update rules over several steps and parameter groups; sumSquares and globalNorm. On CUDA the
// steps (f32 arenas) and sumSquares (f32, bf16, f16) against the CPU.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { kernels, Tensor } from 'mamakit';
import { assertClose, cudaTest, forEachIsa, maxAbs, Rng, throwsNamed } from '../helpers/index.js';

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

// The same f32 values on the device and on the CPU.
function pair(x: Float32Array, device: 'cuda' | 'cpu') {
  return Tensor.fromArray(x, [x.length], { device });
}

function near(got: Tensor, want: Tensor, what: string) {
  const w = want.toArray();
  assertClose(got.toArray(), w, { atol: 1e-5 * maxAbs(w), rtol: 1e-5, what });
}

cudaTest(test, 'cuda: adamwStep over 3 steps and two groups (decay, gradient scale) matches the CPU', () => {
  for (const n of [1, 257, 3001]) {
    const p0 = rng.randn(n), m0 = rng.randn(n, 0.1), v0 = Float32Array.from(rng.randn(n, 0.01), (x) => Math.abs(x) + 1e-5);
    const [pg, mg, vg] = [p0, m0, v0].map((x) => pair(x, 'cuda')), [pc, mc, vc] = [p0, m0, v0].map((x) => pair(x, 'cpu'));
    const split = Math.floor(n / 2);
    for (let step = 1; step <= 3; step++) {
      const g = rng.randn(n), gg = pair(g, 'cuda'), gc = pair(g, 'cpu');
      const groups = split ? [{ offset: 0, length: split, weightDecay: 0.1, gradScale: 0.5 }, { offset: split, length: n - split, weightDecay: 0, gradScale: 1 }]
        : [{ offset: 0, length: n, weightDecay: 0.05, gradScale: 2 }];
      for (const gr of groups) {
        kernels.adamwStep(pg, gg, mg, vg, { lr: 1e-2, step, ...gr });
        kernels.adamwStep(pc, gc, mc, vc, { lr: 1e-2, step, ...gr });
      }
    }
    near(pg, pc, `cuda adamw params n=${n}`), near(mg, mc, `cuda adamw m n=${n}`), near(vg, vc, `cuda adamw v n=${n}`);
  }
});

cudaTest(test, 'cuda: sgdStep with momentum and decay, and without a buffer, matches the CPU', () => {
  for (const n of [1, 257, 3001]) {
    const p0 = rng.randn(n), b0 = rng.randn(n, 0.1);
    const pg = pair(p0, 'cuda'), bg = pair(b0, 'cuda'), pc = pair(p0, 'cpu'), bc = pair(b0, 'cpu');
    const qg = pair(p0, 'cuda'), qc = pair(p0, 'cpu');
    for (let step = 0; step < 3; step++) {
      const g = rng.randn(n), gg = pair(g, 'cuda'), gc = pair(g, 'cpu');
      const o = { lr: 0.1, momentum: 0.9, weightDecay: 1e-2, gradScale: 0.5 };
      kernels.sgdStep(pg, gg, bg, o), kernels.sgdStep(pc, gc, bc, o);
      kernels.sgdStep(qg, gg, null, { lr: 0.05, weightDecay: 1e-3 }), kernels.sgdStep(qc, gc, null, { lr: 0.05, weightDecay: 1e-3 });
    }
    near(pg, pc, `cuda sgd params n=${n}`), near(bg, bc, `cuda sgd buffer n=${n}`), near(qg, qc, `cuda plain sgd n=${n}`);
  }
});

cudaTest(test, 'cuda: sumSquares matches the CPU in f32, bf16 and f16', () => {
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    for (const n of [1, 7, 1000, 300_001]) {
      const xg = Tensor.fromArray(rng.randn(n), [n], { device: 'cuda', dtype });
      const got = kernels.sumSquares(xg), want = kernels.sumSquares(Tensor.fromArray(xg.toArray(), [n]));
      assert.ok(got > 0 && Math.abs(got - want) <= 1e-6 * want, `cuda ${dtype} sumSquares n=${n}: ${got} vs ${want}`);
    }
  }
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
