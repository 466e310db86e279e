// meanpool.test.ts: meanPool over tokens against float64 and its backward against central
// differences, on every ISA; on CUDA in f32, bf16 and f16 against the CPU.
import { suite } from '../helpers/suite.js';
import { kernels, Tensor } from 'mamakit';
import { assertClose, checkGrad, cudaTest, cudaTol, dot64, forEachIsa, Rng, throwsNamed } from '../helpers/index.js';

const test = suite('meanPool');
const rng = new Rng(16);

function ref(x: ArrayLike<number>, B: number, L: number, D: number): Float64Array {
  const y = new Float64Array(B * D);
  for (let b = 0; b < B; b++) for (let l = 0; l < L; l++) for (let d = 0; d < D; d++) y[b * D + d] += x[(b * L + l) * D + d] / L;
  return y;
}

forEachIsa(test, 'forward and backward', () => {
  for (const [B, L, D] of [[1, 1, 1], [2, 3, 5], [3, 17, 300], [2, 197, 192]]) {
    const x = Float64Array.from(rng.randn(B * L * D)), g = rng.randn(B * D);
    const y = kernels.meanPool(Tensor.fromArray(Float32Array.from(x), [B, L, D]));
    assertClose(y.toArray(), ref(x, B, L, D), { atol: 1e-6, rtol: 1e-5, what: `y ${B}×${L}×${D}` });
    const dx = kernels.meanPoolBackward(Tensor.fromArray(g, [B, D]), L);
    if (B * L * D < 2000) checkGrad((v) => dot64(ref(v, B, L, D), g), x, dx.toArray(), { what: 'dx' });
    else assertClose(dx.toArray(), Array.from({ length: B * L * D }, (_, i) => g[Math.floor(i / (L * D)) * D + (i % D)] / L), { what: 'dx' });
  }
});

test('bad arguments are named', () => {
  throwsNamed(() => kernels.meanPool(Tensor.fromArray(rng.randn(6), [2, 3])), RangeError, /meanPool: x must be 3-D \[B,L,D\], got \[2,3\]/);
  throwsNamed(() => kernels.meanPoolBackward(Tensor.fromArray(rng.randn(6), [2, 3]), 0), RangeError, /L must be an integer in \[1,/);
  throwsNamed(() => kernels.meanPoolBackward(Tensor.fromArray(rng.randn(6), [2, 3]), 2.5), RangeError, /L must be an integer/);
});


for (const dtype of ['f32', 'bf16', 'f16'] as const) {
  cudaTest(test, `cuda ${dtype}: forward and backward match the CPU on the same values`, () => {
    const o = { device: 'cuda' as const, dtype };
    for (const [B, L, D] of [[1, 1, 1], [3, 17, 40], [2, 5, 300]]) {
      const x = Tensor.fromArray(rng.randn(B * L * D), [B * L * D], o).toArray(), g = Tensor.fromArray(rng.randn(B * D), [B * D], o).toArray();
      const run = (opt: { device?: 'cuda'; dtype?: 'f32' | 'bf16' | 'f16' }) => ({
        y: kernels.meanPool(Tensor.fromArray(x, [B, L, D], opt)).toArray(),
        dx: kernels.meanPoolBackward(Tensor.fromArray(g, [B, D], opt), L).toArray(),
      });
      const c = run({}), r = run(o), what = `cuda ${dtype} ${B}×${L}×${D}`;
      assertClose(r.y, c.y, { ...cudaTol(dtype), what: `y ${what}` });
      assertClose(r.dx, c.dx, { ...cudaTol(dtype), what: `dx ${what}` });
    }
  });
}

test.run();
