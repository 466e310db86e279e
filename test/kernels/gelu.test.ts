// gelu.test.ts: gelu (erf and tanh forms) against float64 references and their backward
// against central differences, on every ISA, with lengths that leave vector tails; on CUDA in
// f32, bf16 and f16 against the CPU.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { kernels, Tensor } from 'mamakit';
import { assertClose, checkGrad, cudaTest, cudaTol, dot64, erf64, forEachIsa, Rng, throwsNamed } from '../helpers/index.js';

const test = suite('gelu');
const rng = new Rng(12);

const geluRef = (x: number, tanh: boolean) =>
  tanh ? 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))) : 0.5 * x * (1 + erf64(x / Math.SQRT2));

// dGELU/dx in float64
const geluGradRef = (x: number, tanh: boolean) => {
  if (!tanh) return 0.5 * (1 + erf64(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);
  const c = Math.sqrt(2 / Math.PI), t = Math.tanh(c * (x + 0.044715 * x ** 3));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x);
};

for (const approximate of ['none', 'tanh'] as const) {
  forEachIsa(test, `${approximate}: forward and derivative on a grid over [−40, 40] match float64; NaN stays NaN`, () => {
    const n = 80_002;
    const x = Float32Array.from({ length: n }, (_, i) => -40 + i * 0.001);
    x[n - 1] = NaN;
    const ones = Tensor.fromArray(new Float32Array(n).fill(1), [n]), tx = Tensor.fromArray(x, [n]);
    const y = kernels.gelu(tx, { approximate }).toArray(), d = kernels.geluBackward(ones, tx, { approximate }).toArray();
    assert.ok(Number.isNaN(y[n - 1]) && Number.isNaN(d[n - 1]), `gelu ${approximate}: NaN in, NaN out (got ${y[n - 1]}, ${d[n - 1]})`);
    const xs = Array.from(x.subarray(0, n - 1));
    assertClose(y.subarray(0, n - 1), xs.map((v) => geluRef(v, approximate === 'tanh')), { atol: 2e-6, rtol: 2e-6, what: `gelu ${approximate} grid` });
    assertClose(d.subarray(0, n - 1), xs.map((v) => geluGradRef(v, approximate === 'tanh')), { atol: 1e-6, rtol: 1e-5, what: `gelu' ${approximate} grid` });
  });

  forEachIsa(test, `${approximate}: forward matches float64, tails and large |x| included`, () => {
    for (const n of [1, 7, 8, 9, 31, 1000, 40_001]) {
      const x = rng.randn(n, 3);
      x[0] = n > 1 ? -12 : x[0];
      const y = kernels.gelu(Tensor.fromArray(x, [n]), { approximate }).toArray();
      assertClose(y, Array.from(x, (v) => geluRef(v, approximate === 'tanh')), { atol: 2e-6, rtol: 2e-6, what: `gelu ${approximate} n=${n}` });
    }
  });

  forEachIsa(test, `${approximate}: backward matches finite differences`, () => {
    for (const n of [5, 17, 64]) {
      const x = Float64Array.from(rng.randn(n, 2)), g = rng.randn(n);
      const dx = kernels.geluBackward(Tensor.fromArray(g, [n]), Tensor.fromArray(Float32Array.from(x), [n]), { approximate }).toArray();
      checkGrad((v) => dot64(Array.from(v, (u) => geluRef(u, approximate === 'tanh')), g), x, dx, { what: `dx ${approximate}`, atol: 1e-5, rtol: 1e-4, h: 1e-4 });
    }
  });
}

forEachIsa(test, 'outputs past 32 MiB (streaming stores, chunks starting mid-vector) match float64', () => {
  const n = (8 << 20) + 5;
  const x = rng.randn(n, 3), g = rng.randn(n);
  const tx = Tensor.fromArray(x, [n]);
  const y = kernels.gelu(tx).toArray(), dx = kernels.geluBackward(Tensor.fromArray(g, [n]), tx).toArray();
  // Elements around every possible chunk boundary, the ends, and a random sample.
  const idx: number[] = [0, 1, 2, n - 2, n - 1];
  for (let c = 1; c < 64; c++) for (let d = -20; d < 20; d++) idx.push(Math.floor((c * n) / 64) + d);
  for (let k = 0; k < 2000; k++) idx.push(rng.int(0, n - 1));
  assertClose(idx.map((i) => y[i]), idx.map((i) => geluRef(x[i], false)), { atol: 2e-6, rtol: 2e-6, what: 'gelu (streamed)' });
  const h = 1e-3;
  const slope = (v: number) => (geluRef(v + h, false) - geluRef(v - h, false)) / (2 * h);
  assertClose(idx.map((i) => dx[i]), idx.map((i) => g[i] * slope(x[i])), { atol: 1e-5, rtol: 1e-4, what: 'geluBackward (streamed)' });
});

test('bad arguments are named', () => {
  const x = Tensor.fromArray(rng.randn(4), [4]);
  throwsNamed(() => kernels.gelu(x, { approximate: 'fast' as never }), TypeError, /approximate must be 'none' or 'tanh'/);
  throwsNamed(() => kernels.geluBackward(Tensor.fromArray(rng.randn(3), [3]), x), RangeError, /geluBackward: dy must have shape \[4\], got \[3\]/);
  throwsNamed(() => kernels.gelu([1, 2] as never), TypeError, /gelu: x must be a Tensor, got an array/);
});


for (const dtype of ['f32', 'bf16', 'f16'] as const)
  for (const approximate of ['none', 'tanh'] as const)
    cudaTest(test, `cuda ${dtype} ${approximate}: forward and backward match the CPU on the same values, tails included; NaN stays NaN`, () => {
      const o = { device: 'cuda' as const, dtype }, n = 1001;
      const x0 = rng.randn(n, 3);
      [-1e4, -100, -30, -9, -6, 6, 9].forEach((v, i) => (x0[i * 100] = v));
      const x = Tensor.fromArray(x0, [n], o).toArray(), g = Tensor.fromArray(rng.randn(n), [n], o).toArray();
      const run = (opt: { device?: 'cuda'; dtype?: 'f32' | 'bf16' | 'f16' }) => {
        const tx = Tensor.fromArray(x, [n], opt);
        return { y: kernels.gelu(tx, { approximate }).toArray(), dx: kernels.geluBackward(Tensor.fromArray(g, [n], opt), tx, { approximate }).toArray() };
      };
      const c = run({}), r = run(o);
      assertClose(r.y, c.y, { ...cudaTol(dtype), what: `cuda ${dtype} gelu ${approximate}` });
      assertClose(r.dx, c.dx, { ...cudaTol(dtype), what: `cuda ${dtype} geluBackward ${approximate}` });
      const nan = Tensor.fromArray(Float32Array.of(NaN, 1), [2], o);
      const yn = kernels.gelu(nan, { approximate }).toArray(), dn = kernels.geluBackward(Tensor.fromArray(Float32Array.of(1, 1), [2], o), nan, { approximate }).toArray();
      assert.ok(Number.isNaN(yn[0]) && Number.isNaN(dn[0]), `cuda ${dtype} gelu ${approximate}: NaN in, NaN out (got ${yn[0]}, ${dn[0]})`);
    });

test.run();
