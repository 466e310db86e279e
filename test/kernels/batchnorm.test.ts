// batchnorm.test.ts: batchNorm in training (batch statistics, running-statistic update) and
// evaluation modes against float64, and both backwards against central differences.
import { suite } from '../helpers/suite.js';
import { kernels, Tensor } from 'mamakit';
import { assertClose, checkGrad, dot64, forEachIsa, Rng, throwsNamed } from '../helpers/index.js';

const test = suite('batchNorm');
const rng = new Rng(18);

function ref(x: ArrayLike<number>, w: ArrayLike<number> | null, b: ArrayLike<number> | null, R: number, C: number, eps: number,
  running?: { mean: ArrayLike<number>; var: ArrayLike<number> }) {
  const y = new Float64Array(R * C), mean = new Float64Array(C), varB = new Float64Array(C), varU = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let mu = 0;
    for (let r = 0; r < R; r++) mu += x[r * C + c];
    mu /= R;
    let v = 0;
    for (let r = 0; r < R; r++) v += (x[r * C + c] - mu) ** 2;
    mean[c] = running ? running.mean[c] : mu;
    varB[c] = running ? running.var[c] : v / R;
    varU[c] = v / (R - 1);
    for (let r = 0; r < R; r++) y[r * C + c] = ((x[r * C + c] - mean[c]) / Math.sqrt(varB[c] + eps)) * (w ? w[c] : 1) + (b ? b[c] : 0);
  }
  return { y, mean, varU };
}

forEachIsa(test, 'training: forward, running statistics, backward', () => {
  for (const [R, C] of [[2, 1], [5, 3], [16, 70], [36, 130]]) {
    for (const affine of [true, false]) {
      const x = Float64Array.from(rng.randn(R * C, 2).map((v) => v + 1));
      const w = affine ? Float64Array.from(rng.randn(C)) : null, b = affine ? Float64Array.from(rng.randn(C)) : null;
      const rm0 = rng.randn(C), rv0 = Float32Array.from(rng.randn(C), (v) => 1 + Math.abs(v));
      const runningMean = Tensor.fromArray(rm0, [C]), runningVar = Tensor.fromArray(rv0, [C]);
      const tx = Tensor.fromArray(Float32Array.from(x), [R, C]);
      const tw = w && Tensor.fromArray(Float32Array.from(w), [C]), tb = b && Tensor.fromArray(Float32Array.from(b), [C]);
      const out = kernels.batchNorm(tx, { weight: tw, bias: tb, runningMean, runningVar, training: true, momentum: 0.1, eps: 1e-5 });
      const e = ref(x, w, b, R, C, 1e-5);
      assertClose(out.y.toArray(), e.y, { atol: 2e-5, rtol: 1e-5, what: `y R=${R} C=${C}` });
      assertClose(runningMean.toArray(), Array.from(rm0, (v, c) => 0.9 * v + 0.1 * e.mean[c]), { atol: 1e-6, rtol: 1e-5, what: 'runningMean' });
      assertClose(runningVar.toArray(), Array.from(rv0, (v, c) => 0.9 * v + 0.1 * e.varU[c]), { atol: 1e-6, rtol: 1e-5, what: 'runningVar (unbiased)' });
      if (R * C > 200) continue;
      const g = rng.randn(R * C);
      const dW = Tensor.zeros([C]), dB = Tensor.zeros([C]);
      const dx = kernels.batchNormBackward(Tensor.fromArray(g, [R, C]), tx, out.mean, out.rstd, { weight: tw, training: true, dWeight: dW, dBias: dB });
      checkGrad((v) => dot64(ref(v, w, b, R, C, 1e-5).y, g), x, dx.toArray(), { what: 'dx', atol: 3e-4, rtol: 2e-2 });
      if (w) checkGrad((v) => dot64(ref(x, v, b, R, C, 1e-5).y, g), w, dW.toArray(), { what: 'dWeight', atol: 3e-4 });
      if (b) checkGrad((v) => dot64(ref(x, w, v, R, C, 1e-5).y, g), b, dB.toArray(), { what: 'dBias', atol: 3e-4 });
    }
  }
});

forEachIsa(test, 'evaluation: running statistics normalise; backward', () => {
  const R = 4, C = 9;
  const x = Float64Array.from(rng.randn(R * C)), w = Float64Array.from(rng.randn(C)), b = Float64Array.from(rng.randn(C));
  const rm = rng.randn(C), rv = Float32Array.from(rng.randn(C), (v) => 0.5 + Math.abs(v));
  const running = { mean: rm, var: rv };
  const tx = Tensor.fromArray(Float32Array.from(x), [R, C]), tw = Tensor.fromArray(Float32Array.from(w), [C]);
  const runningMean = Tensor.fromArray(rm, [C]), runningVar = Tensor.fromArray(rv, [C]);
  const out = kernels.batchNorm(tx, { weight: tw, bias: Tensor.fromArray(Float32Array.from(b), [C]), runningMean, runningVar, training: false });
  assertClose(out.y.toArray(), ref(x, w, b, R, C, 1e-5, running).y, { atol: 1e-5, rtol: 1e-5, what: 'eval y' });
  assertClose(runningMean.toArray(), rm, { atol: 0, rtol: 0, what: 'running mean unchanged' });
  const g = rng.randn(R * C);
  const dx = kernels.batchNormBackward(Tensor.fromArray(g, [R, C]), tx, out.mean, out.rstd, { weight: tw, training: false });
  checkGrad((v) => dot64(ref(v, w, b, R, C, 1e-5, running).y, g), x, dx.toArray(), { what: 'eval dx', atol: 2e-4 });
});

test('bad arguments are named', () => {
  const x = Tensor.fromArray(rng.randn(6), [2, 3]);
  throwsNamed(() => kernels.batchNorm(Tensor.fromArray(rng.randn(3), [1, 3])), RangeError, /training needs at least 2 rows/);
  throwsNamed(() => kernels.batchNorm(x, { training: false }), TypeError, /evaluation mode needs runningMean and runningVar/);
  throwsNamed(() => kernels.batchNorm(x, { runningMean: Tensor.zeros([3]) }), TypeError, /both runningMean and runningVar/);
  throwsNamed(() => kernels.batchNorm(x, { momentum: 2 }), RangeError, /momentum must be in \[0, 1\]/);
  throwsNamed(() => kernels.batchNorm(x, { weight: Tensor.zeros([2]) }), RangeError, /weight must have shape \[3\]/);
});

test.run();
