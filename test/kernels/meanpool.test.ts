// meanpool.test.ts: meanPool over tokens against float64 and its backward against central
// differences, on every ISA.
import { suite } from '../helpers/suite.js';
import { kernels, Tensor } from 'mamakit';
import { assertClose, checkGrad, dot64, forEachIsa, Rng, throwsNamed } from '../helpers/index.js';

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

test.run();
