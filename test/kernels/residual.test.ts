// residual.test.ts: residual (LayerScale gamma or scalar alpha) against float64 and its
// backward against central differences, on every ISA; on CUDA in f32, bf16 and f16 against the CPU.
import { suite } from '../helpers/suite.js';
import { kernels, Tensor } from 'mamakit';
import { assertClose, checkGrad, cudaTest, cudaTol, dot64, forEachIsa, Rng, throwsNamed } from '../helpers/index.js';

const test = suite('residual');
const rng = new Rng(15);

const ref = (x: ArrayLike<number>, h: ArrayLike<number>, gamma: ArrayLike<number> | null, alpha: number, D: number) =>
  Float64Array.from(x, (v, i) => v + (gamma ? gamma[i % D] : alpha) * h[i]);

forEachIsa(test, 'forward and backward with gamma and with alpha', () => {
  for (const [R, D] of [[1, 1], [3, 5], [7, 19], [16, 192]]) {
    for (const useGamma of [true, false]) {
      const x = rng.randn(R * D), h = Float64Array.from(rng.randn(R * D)), g = rng.randn(R * D);
      const gamma = useGamma ? Float64Array.from(rng.randn(D)) : null, alpha = 0.7;
      const tg = gamma ? Tensor.fromArray(Float32Array.from(gamma), [D]) : null;
      const th = Tensor.fromArray(Float32Array.from(h), [R, D]);
      const out = kernels.residual(Tensor.fromArray(x, [R, D]), th, { gamma: tg, alpha });
      assertClose(out.toArray(), ref(x, h, gamma, alpha, D), { atol: 1e-6, rtol: 1e-6, what: 'out' });
      const dg0 = rng.randn(D);
      const dGamma = useGamma ? Tensor.fromArray(dg0, [D]) : null;
      const dh = kernels.residualBackward(Tensor.fromArray(g, [R, D]), th, { gamma: tg, alpha, dGamma }).toArray();
      checkGrad((v) => dot64(ref(x, v, gamma, alpha, D), g), h, dh, { what: 'dh', samples: 300 });
      if (gamma) checkGrad((v) => dot64(ref(x, h, v, alpha, D), g), gamma, dGamma!.toArray().map((v, i) => v - dg0[i]), { what: 'dGamma' });
    }
  }
});

test('bad arguments are named', () => {
  const x = Tensor.fromArray(rng.randn(6), [2, 3]);
  throwsNamed(() => kernels.residual(x, Tensor.fromArray(rng.randn(6), [3, 2])), RangeError, /residual: h must have shape \[2,3\]/);
  throwsNamed(() => kernels.residual(x, x, { gamma: Tensor.fromArray(rng.randn(2), [2]) }), RangeError, /gamma must have shape \[3\]/);
  throwsNamed(() => kernels.residual(x, x, { alpha: NaN }), RangeError, /alpha must be in/);
});


for (const dtype of ['f32', 'bf16', 'f16'] as const) {
  cudaTest(test, `cuda ${dtype}: forward and backward match the CPU on the same values (gamma with dGamma accumulated, and alpha)`, () => {
    const o = { device: 'cuda' as const, dtype };
    const round = (a: Float32Array) => Tensor.fromArray(a, [a.length], o).toArray();
    for (const [R, D, useGamma] of [[5, 37, true], [3, 300, true], [4, 33, false]] as const) {
      const x = round(rng.randn(R * D)), h = round(rng.randn(R * D)), g = round(rng.randn(R * D));
      const gamma = round(rng.randn(D)), dg0 = round(rng.randn(D)), alpha = -0.7;
      const run = (opt: { device?: 'cuda'; dtype?: 'f32' | 'bf16' | 'f16' }) => {
        const th = Tensor.fromArray(h, [R, D], opt), tg = useGamma ? Tensor.fromArray(gamma, [D], opt) : null;
        const dGamma = useGamma ? Tensor.fromArray(dg0, [D], opt) : null;
        const out = kernels.residual(Tensor.fromArray(x, [R, D], opt), th, { gamma: tg, alpha }).toArray();
        const dh = kernels.residualBackward(Tensor.fromArray(g, [R, D], opt), th, { gamma: tg, alpha, dGamma }).toArray();
        return { out, dh, dGamma: dGamma?.toArray() };
      };
      const c = run({}), r = run(o), what = `cuda ${dtype} R=${R} D=${D} ${useGamma ? 'gamma' : 'alpha'}`;
      assertClose(r.out, c.out, { ...cudaTol(dtype), what: `out ${what}` });
      assertClose(r.dh, c.dh, { ...cudaTol(dtype), what: `dh ${what}` });
      if (useGamma) assertClose(r.dGamma!, c.dGamma!, { ...cudaTol(dtype, 1e-4), what: `dGamma ${what}` });
    }
  });
}

test.run();
