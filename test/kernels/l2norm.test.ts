// l2norm.test.ts: l2Normalize against float64, the eps clamp, and the backward against
// central differences, on every ISA; on CUDA in f32, bf16 and f16 against the CPU.
import { suite } from '../helpers/suite.js';
import { kernels, Tensor } from 'mamakit';
import { assertClose, cudaTest, cudaTol, dot64, forEachIsa, numericGrad, Rng, throwsNamed } from '../helpers/index.js';

const test = suite('l2Normalize');
const rng = new Rng(14);

function ref(x: ArrayLike<number>, R: number, D: number, eps: number): Float64Array {
  const y = new Float64Array(R * D);
  for (let r = 0; r < R; r++) {
    let s = 0;
    for (let d = 0; d < D; d++) s += x[r * D + d] ** 2;
    const n = Math.max(Math.sqrt(s), eps);
    for (let d = 0; d < D; d++) y[r * D + d] = x[r * D + d] / n;
  }
  return y;
}

forEachIsa(test, 'forward matches float64; a tiny row is divided by eps', () => {
  for (const [R, D] of [[1, 1], [4, 3], [5, 17], [8, 512], [3, 2560]]) {
    const x = rng.randn(R * D);
    for (let d = 0; d < D; d++) x[d] *= 1e-9; // row 0 has norm below eps
    const { y, norm } = kernels.l2Normalize(Tensor.fromArray(x, [R, D]), { eps: 1e-6 });
    assertClose(y.toArray(), ref(x, R, D, 1e-6), { atol: 1e-6, rtol: 1e-5, what: `y R=${R} D=${D}` });
    assertClose([norm.toArray()[0]], [1e-6], { atol: 0, rtol: 1e-6, what: 'clamped norm' });
  }
});

forEachIsa(test, 'backward matches finite differences, clamped rows included', () => {
  for (const [R, D] of [[3, 5], [4, 18]]) {
    const x = Float64Array.from(rng.randn(R * D));
    for (let d = 0; d < D; d++) x[D + d] *= 1e-8; // row 1 below eps: y = x/eps, linear
    const g = rng.randn(R * D);
    const { y, norm } = kernels.l2Normalize(Tensor.fromArray(Float32Array.from(x), [R, D]), { eps: 1e-6 });
    const dx = kernels.l2NormalizeBackward(Tensor.fromArray(g, [R, D]), y, norm, { eps: 1e-6 }).toArray();
    // Rows other than the clamped one (whose reference is only piecewise smooth at eps).
    const idx = Array.from({ length: R * D }, (_, i) => i).filter((i) => Math.floor(i / D) !== 1);
    const num = numericGrad((v) => dot64(ref(v, R, D, 1e-6), g), x, 1e-4, idx);
    assertClose(idx.map((i) => dx[i]), idx.map((i) => num[i]), { atol: 2e-4, rtol: 1e-2, what: 'dx' });
    // The clamped row: the gradient is dy/eps exactly.
    assertClose(dx.slice(D, 2 * D), Array.from(g.slice(D, 2 * D), (v) => v / 1e-6), { atol: 0, rtol: 1e-5, what: 'clamped dx' });
  }
});

test('bad arguments are named', () => {
  const x = Tensor.fromArray(rng.randn(6), [2, 3]);
  throwsNamed(() => kernels.l2Normalize(x, { eps: 0 }), RangeError, /l2Normalize: eps must be in/);
  const { y } = kernels.l2Normalize(x);
  throwsNamed(() => kernels.l2NormalizeBackward(y, y, Tensor.fromArray(rng.randn(3), [3])), RangeError, /norm must have shape \[2\]/);
});


for (const dtype of ['f32', 'bf16', 'f16'] as const) {
  cudaTest(test, `cuda ${dtype}: forward and backward match the CPU on the same values, a row below eps included`, () => {
    const o = { device: 'cuda' as const, dtype }, eps = 1e-3;
    for (const [R, D] of [[1, 1], [4, 37], [3, 300]]) {
      const x0 = rng.randn(R * D);
      if (R > 1) for (let d = 0; d < D; d++) x0[D + d] *= 1e-5; // row 1: norm below eps
      const x = Tensor.fromArray(x0, [R * D], o).toArray(), g = Tensor.fromArray(rng.randn(R * D), [R * D], o).toArray();
      const gf = kernels.l2Normalize(Tensor.fromArray(x, [R, D], o), { eps });
      const cf = kernels.l2Normalize(Tensor.fromArray(x, [R, D]), { eps });
      const what = `cuda ${dtype} R=${R} D=${D}`;
      assertClose(gf.y.toArray(), cf.y.toArray(), { ...cudaTol(dtype), what: `y ${what}` });
      assertClose(gf.norm.toArray(), cf.norm.toArray(), { ...cudaTol('f32'), what: `norm ${what}` });
      // The backward on both sides from the CUDA forward's y (in its dtype) and norm.
      const y = gf.y.toArray(), norm = gf.norm.toArray();
      const gdx = kernels.l2NormalizeBackward(Tensor.fromArray(g, [R, D], o), gf.y, gf.norm, { eps }).toArray();
      const cdx = kernels.l2NormalizeBackward(Tensor.fromArray(g, [R, D]), Tensor.fromArray(y, [R, D]), Tensor.fromArray(norm, [R]), { eps }).toArray();
      // The row below eps has dx = dy/eps (~1000), within the same relative tolerance.
      assertClose(gdx, cdx, { ...cudaTol(dtype, 1e-4), what: `dx ${what}` });
    }
  });
}

test.run();
