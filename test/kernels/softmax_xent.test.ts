// softmax_xent.test.ts: softmax cross-entropy against float64, ignored rows, and the backward
// against central differences, on every ISA; on CUDA against the CPU in f32, bf16 and f16.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { kernels, Tensor } from 'mamakit';
import { assertClose, checkGrad, cudaTest, forEachIsa, maxAbs, Rng, throwsNamed } from '../helpers/index.js';

const test = suite('softmaxCrossEntropy');
const rng = new Rng(13);

function meanLoss(x: ArrayLike<number>, t: Int32Array, R: number, C: number): number {
  let s = 0, n = 0;
  for (let r = 0; r < R; r++) {
    if (t[r] < 0) continue;
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, x[r * C + c]);
    let z = 0;
    for (let c = 0; c < C; c++) z += Math.exp(x[r * C + c] - m);
    s += m + Math.log(z) - x[r * C + t[r]];
    n++;
  }
  return n ? s / n : 0;
}

function targets(R: number, C: number, ignore = 0.2): Int32Array {
  return Int32Array.from({ length: R }, () => (rng.next() < ignore ? -1 : rng.int(0, C - 1)));
}

forEachIsa(test, 'loss and lse match float64, large logits and ignored rows included', () => {
  for (const [R, C] of [[1, 1], [1, 2], [5, 7], [9, 33], [16, 1000]]) {
    const x = rng.randn(R * C, 4);
    x[0] += 60; // far from 0: needs the max subtraction
    const t = targets(R, C);
    const r = kernels.softmaxCrossEntropy(Tensor.fromArray(x, [R, C]), t);
    assert.ok(Math.abs(r.loss - meanLoss(x, t, R, C)) <= 1e-5 * Math.max(1, Math.abs(r.loss)), `loss ${r.loss} vs ${meanLoss(x, t, R, C)}`);
    const losses = r.losses.toArray();
    for (let i = 0; i < R; i++) if (t[i] < 0) assert.is(losses[i], 0);
    const lse = Array.from({ length: R }, (_, i) => {
      let m = -Infinity;
      for (let c = 0; c < C; c++) m = Math.max(m, x[i * C + c]);
      let z = 0;
      for (let c = 0; c < C; c++) z += Math.exp(x[i * C + c] - m);
      return m + Math.log(z);
    });
    assertClose(r.lse.toArray(), lse, { atol: 1e-5, rtol: 1e-6, what: 'lse' });
  }
});

forEachIsa(test, 'backward matches finite differences of the mean loss', () => {
  for (const [R, C] of [[3, 4], [6, 11], [2, 40]]) {
    const x = Float64Array.from(rng.randn(R * C, 2)), t = targets(R, C, 0.25);
    t[0] = 1;
    const tx = Tensor.fromArray(Float32Array.from(x), [R, C]);
    const { lse } = kernels.softmaxCrossEntropy(tx, t);
    const d = kernels.softmaxCrossEntropyBackward(tx, lse, t).toArray();
    checkGrad((v) => meanLoss(v, t, R, C), x, d, { what: 'dlogits', atol: 1e-5, rtol: 1e-3 });
    for (let r = 0; r < R; r++) if (t[r] < 0) for (let c = 0; c < C; c++) assert.is(d[r * C + c], 0);
  }
});

cudaTest(test, 'cuda: loss, lse and the backward match the CPU in f32, bf16 and f16 (ignored rows)', () => {
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    const o = { device: 'cuda' as const, dtype };
    // Statistics are f32 on both from the same inputs; dlogits are rounded to the dtype once.
    const rtol = dtype === 'f32' ? 1e-5 : dtype === 'bf16' ? 2 ** -8 : 2 ** -11;
    for (const [R, C] of [[1, 1], [5, 7], [9, 33], [6, 1000]]) {
      const raw = rng.randn(R * C, 3);
      raw[0] += 40;
      const xg = Tensor.fromArray(raw, [R, C], o), x = xg.toArray(), xc = Tensor.fromArray(x, [R, C]);
      const t = targets(R, C, 0.3);
      t[0] = 0;
      if (R > 1) t[R - 1] = -1;
      const got = kernels.softmaxCrossEntropy(xg, t), want = kernels.softmaxCrossEntropy(xc, t);
      assert.ok(Math.abs(got.loss - want.loss) <= 1e-5 * Math.max(1, Math.abs(want.loss)), `cuda ${dtype} loss ${got.loss} vs ${want.loss}`);
      assertClose(got.losses.toArray(), want.losses.toArray(), { atol: 1e-5 * maxAbs(want.losses.toArray()), rtol: 1e-5, what: `cuda ${dtype} losses R=${R} C=${C}` });
      assertClose(got.lse.toArray(), want.lse.toArray(), { atol: 1e-5, rtol: 1e-6, what: `cuda ${dtype} lse R=${R} C=${C}` });
      const d = kernels.softmaxCrossEntropyBackward(xg, got.lse, t, { scale: 0.5 }).toArray();
      const dw = kernels.softmaxCrossEntropyBackward(xc, want.lse, t, { scale: 0.5 }).toArray();
      assertClose(d, dw, { atol: 1e-5 * maxAbs(dw), rtol, what: `cuda ${dtype} dlogits R=${R} C=${C}` });
      if (R > 1) for (let c = 0; c < C; c++) assert.is(d[(R - 1) * C + c], 0);
    }
  }
});

test('bad arguments are named', () => {
  const x = Tensor.fromArray(rng.randn(6), [2, 3]);
  throwsNamed(() => kernels.softmaxCrossEntropy(x, new Int32Array([0, 3])), RangeError, /targets\[1\] = 3 is outside \[0, 2\]/);
  throwsNamed(() => kernels.softmaxCrossEntropy(x, new Int32Array([0])), RangeError, /targets must have 2 elements, got 1/);
  throwsNamed(() => kernels.softmaxCrossEntropy(x, [0, 1] as never), TypeError, /targets must be an Int32Array, got an array/);
  throwsNamed(() => kernels.softmaxCrossEntropy(Tensor.fromArray(rng.randn(6), [6]), new Int32Array(6)), RangeError, /logits must be 2-D/);
});

test.run();
