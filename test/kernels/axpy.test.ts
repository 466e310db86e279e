// axpy.test.ts: y += alpha·x and x *= alpha in place against float64, on every ISA and on CUDA
// in f32, bf16 and f16; bad arguments named.
import { suite } from '../helpers/suite.js';
import { kernels, Tensor } from 'mamakit';
import { assertClose, cudaTest, forEachIsa, Rng, throwsNamed } from '../helpers/index.js';

const test = suite('axpy');
const rng = new Rng(62);

forEachIsa(test, 'axpy and scale match float64 (odd sizes, large tensors)', () => {
  for (const n of [1, 15, 100_003, 3_000_001]) {
    const x = rng.randn(n), y = rng.randn(n);
    const ty = Tensor.fromArray(y, [n]);
    kernels.axpy(ty, Tensor.fromArray(x, [n]), -1.25);
    assertClose(ty.toArray(), Float64Array.from(y, (v, i) => v - 1.25 * x[i]), { atol: 1e-6, rtol: 1e-6, what: `axpy n=${n}` });
    kernels.scale(ty, 0.5);
    assertClose(ty.toArray(), Float64Array.from(y, (v, i) => 0.5 * (v - 1.25 * x[i])), { atol: 1e-6, rtol: 1e-6, what: `scale n=${n}` });
  }
});

test('bad arguments are named', () => {
  const y = Tensor.fromArray(rng.randn(6), [2, 3]);
  throwsNamed(() => kernels.axpy(y, Tensor.fromArray(rng.randn(6), [3, 2])), RangeError, /axpy: x must have shape \[2,3\], got \[3,2\]/);
  throwsNamed(() => kernels.axpy(y, y), RangeError, /axpy: y must not be the same tensor as x/);
  throwsNamed(() => kernels.axpy(y, y.view(0, [2, 3])), RangeError, /axpy: y must not be the same tensor as x/);
  throwsNamed(() => kernels.scale(y, Infinity), RangeError, /scale: alpha must be in/);
  throwsNamed(() => kernels.axpy(y, 3 as never), TypeError, /axpy: x must be a Tensor, got number 3/);
});

cudaTest(test, 'cuda: axpy and scale match the CPU in f32, bf16 and f16', () => {
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    const o = { device: 'cuda' as const, dtype }, n = 70_001;
    const xg = Tensor.fromArray(rng.randn(n), [n], o), yg = Tensor.fromArray(rng.randn(n), [n], o);
    const x = xg.toArray(), y = yg.toArray();
    kernels.scale(kernels.axpy(yg, xg, 0.75), -2);
    const want = Float64Array.from(y, (v, i) => -2 * (v + 0.75 * x[i]));
    assertClose(yg.toArray(), want, { atol: 1e-6, rtol: dtype === 'f32' ? 1e-6 : dtype === 'bf16' ? 2 ** -8 : 2 ** -11, what: `cuda ${dtype}` });
    throwsNamed(() => kernels.axpy(yg, Tensor.fromArray(x, [n])), TypeError, /axpy: x is on cpu but y is on cuda/);
  }
});

cudaTest(test, 'cuda: a 16-bit x adds into an f32 y in f32 arithmetic (mixed-precision gradients); no other mix', () => {
  for (const dtype of ['bf16', 'f16'] as const) {
    const n = 5003, xg = Tensor.fromArray(rng.randn(n), [n], { device: 'cuda', dtype }), yg = Tensor.fromArray(rng.randn(n), [n], { device: 'cuda' });
    const x = xg.toArray(), y = yg.toArray();
    kernels.axpy(yg, xg, -1.5);
    // f32 tolerance: the 16-bit x is exact in f32, only the f32 sum rounds.
    assertClose(yg.toArray(), Float64Array.from(y, (v, i) => v - 1.5 * x[i]), { atol: 1e-6, rtol: 1e-6, what: `cuda x ${dtype} into f32` });
    throwsNamed(() => kernels.axpy(xg, yg), TypeError, new RegExp(`axpy: x has dtype f32 but y has ${dtype}`));
  }
});

test.run();
