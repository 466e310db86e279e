// batchnorm.test.ts: batchNorm in training (batch statistics, running-statistic update) and
// evaluation modes against float64, and both backwards against central differences; on CUDA
// both modes and their backwards against the CPU in f32, bf16 and f16.
import { suite } from '../helpers/suite.js';
import { kernels, Tensor } from 'mamakit';
import { assertClose, checkGrad, cudaTest, dot64, forEachIsa, maxAbs, Rng, throwsNamed } from '../helpers/index.js';

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

cudaTest(test, 'cuda: forward, running statistics and backward match the CPU in f32, bf16 and f16', () => {
  const cases: Array<[number, number, boolean, boolean]> = [[3, 1, true, true], [5, 3, true, false], [17, 70, true, true], [9, 33, false, true], [4, 9, false, false]];
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    const o = { device: 'cuda' as const, dtype }, f32 = { device: 'cuda' as const, dtype: 'f32' as const };
    // Outputs in the dtype are rounded once on the device; statistics are f32 on both.
    const tol = dtype === 'f32' ? 1e-5 : dtype === 'bf16' ? 2 ** -7 : 2 ** -10;
    const near = (got: Tensor, want: Tensor, t: number, what: string) => {
      const w = want.toArray();
      assertClose(got.toArray(), w, { atol: t * maxAbs(w), rtol: t, what: `cuda ${dtype} ${what}` });
    };
    for (const [R, C, training, affine] of cases) {
      const both = (v: Float32Array, shape: number[], opt = o) => {
        const g = Tensor.fromArray(v, shape, opt);
        return [g, Tensor.fromArray(g.toArray(), shape)] as const;
      };
      const [xg, xc] = both(Float32Array.from(rng.randn(R * C, 2), (v) => v + 1), [R, C]);
      const [wg, wc] = both(rng.randn(C), [C]), [bg, bc] = both(rng.randn(C), [C]);
      const [rmg, rmc] = both(rng.randn(C), [C], f32), [rvg, rvc] = both(Float32Array.from(rng.randn(C), (v) => 0.5 + Math.abs(v)), [C], f32);
      const opts = (w: Tensor, b: Tensor, rm: Tensor, rv: Tensor) => ({ weight: affine ? w : null, bias: affine ? b : null, runningMean: rm, runningVar: rv, training, momentum: 0.1, eps: 1e-5 });
      const got = kernels.batchNorm(xg, opts(wg, bg, rmg, rvg)), want = kernels.batchNorm(xc, opts(wc, bc, rmc, rvc));
      const what = `R=${R} C=${C} ${training ? 'training' : 'eval'}${affine ? ' affine' : ''}`;
      near(got.y, want.y, tol, `y ${what}`);
      near(got.mean, want.mean, 1e-5, `mean ${what}`);
      near(got.rstd, want.rstd, 1e-5, `rstd ${what}`);
      near(rmg, rmc, 1e-5, `runningMean ${what}`);
      near(rvg, rvc, 1e-5, `runningVar ${what}`);
      const [dyg, dyc] = both(rng.randn(R * C), [R, C]);
      const [dWg, dWc] = both(rng.randn(C), [C]), [dBg, dBc] = both(rng.randn(C), [C]);
      const dxg = kernels.batchNormBackward(dyg, xg, got.mean, got.rstd, { weight: affine ? wg : null, training, dWeight: dWg, dBias: dBg });
      const dxc = kernels.batchNormBackward(dyc, xc, want.mean, want.rstd, { weight: affine ? wc : null, training, dWeight: dWc, dBias: dBc });
      near(dxg, dxc, tol, `dx ${what}`);
      near(dWg, dWc, tol, `dWeight ${what}`);
      near(dBg, dBc, tol, `dBias ${what}`);
    }
  }
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
