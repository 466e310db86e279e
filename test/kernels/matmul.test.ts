// matmul.test.ts: kernels.matmul against a float64 reference on every ISA this CPU runs, its
// gradient identities against finite differences, argument errors, and CUDA against CPU.
// Run: npm test (or node dist/test/kernels/matmul.test.js after npm run build).
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { kernels, Tensor } from 'mamakit';
import { native } from '../../lib/native.js';
import { assertClose, checkGrad, cudaTest, matmulRef, maxAbs, Rng, runnableIsas } from '../helpers/index.js';

const test = suite('matmul');
const rng = new Rng(20261128);

interface Case { M: number; N: number; K: number; transA: boolean; transB: boolean; bias: boolean; accumulate: boolean }

function runCase(c: Case, what: string): void {
  const a = rng.randn(c.M * c.K), b = rng.randn(c.K * c.N);
  const bias = c.bias ? rng.randn(c.N) : null;
  const c0 = c.accumulate ? rng.randn(c.M * c.N) : null;
  const ta = Tensor.fromArray(a, c.transA ? [c.K, c.M] : [c.M, c.K]);
  const tb = Tensor.fromArray(b, c.transB ? [c.N, c.K] : [c.K, c.N]);
  const tbias = bias ? Tensor.fromArray(bias, [c.N]) : null;
  // Poisoned output: anything the kernel fails to write stays NaN and fails the check.
  const out = c0 ? Tensor.fromArray(c0, [c.M, c.N]) : Tensor.full([c.M, c.N], NaN);
  kernels.matmul(ta, tb, { transA: c.transA, transB: c.transB, bias: tbias, out, accumulate: c.accumulate });
  const ref = matmulRef(a, b, c.M, c.N, c.K, { transA: c.transA, transB: c.transB, bias, c0 });
  // f32 accumulation over K terms of size ~1: error grows like √K·ε·|terms|.
  const atol = 4e-6 * Math.sqrt(c.K) * Math.max(1, maxAbs(ref) / Math.sqrt(c.K));
  assertClose(out.toArray(), ref, { atol, rtol: 1e-5, what: `${what} ${JSON.stringify(c)}` });
  for (const t of [ta, tb, tbias, out]) t?.dispose();
}

const sizes = [1, 2, 3, 5, 7, 13, 16, 17, 31, 64, 97, 130];

for (const isa of runnableIsas(test)) {
  test(`${isa}: odd sizes, transposes, bias, accumulate`, () => {
    native.setIsa(isa);
    try {
      for (let i = 0; i < 60; i++) {
        runCase({
          M: rng.pick(sizes), N: rng.pick(sizes), K: rng.pick(sizes),
          transA: rng.next() < 0.5, transB: rng.next() < 0.5, bias: rng.next() < 0.5, accumulate: rng.next() < 0.3,
        }, isa);
      }
    } finally {
      native.setIsa(native.buildInfo().bestIsa);
    }
  });

  test(`${isa}: shapes that cross the cache blocks (K > 256, N > 3072, many row blocks)`, () => {
    native.setIsa(isa);
    try {
      runCase({ M: 301, N: 67, K: 600, transA: false, transB: true, bias: true, accumulate: false }, isa);
      runCase({ M: 5, N: 3100, K: 20, transA: true, transB: false, bias: true, accumulate: true }, isa);
      runCase({ M: 2100, N: 9, K: 33, transA: false, transB: false, bias: false, accumulate: false }, isa);
      runCase({ M: 301, N: 40, K: 700, transA: true, transB: false, bias: true, accumulate: true }, isa);
      runCase({ M: 4000, N: 9, K: 40, transA: false, transB: true, bias: true, accumulate: false }, isa); // more rows than one packing pass
      // Several row passes in each of several K blocks (B packed once for the row passes).
      runCase({ M: 3900, N: 37, K: 600, transA: true, transB: false, bias: true, accumulate: true }, isa);
      // Small panels: packing of one step overlaps the product of the previous one in
      // double-buffered panels, across row passes (A alternates, B stays) and K blocks.
      runCase({ M: 3900, N: 37, K: 100, transA: false, transB: true, bias: true, accumulate: true }, isa);
      runCase({ M: 300, N: 37, K: 1100, transA: true, transB: false, bias: false, accumulate: true }, isa);
    } finally {
      native.setIsa(native.buildInfo().bestIsa);
    }
  });
}

test('returns a new [M,N] tensor on the inputs device', () => {
  const a = Tensor.fromArray(rng.randn(6), [2, 3]), b = Tensor.fromArray(rng.randn(12), [3, 4]);
  const c = kernels.matmul(a, b);
  assert.equal(c.shape, [2, 4]);
  assert.is(c.device, 'cpu');
  assert.is(c.dtype, 'f32');
});

test('backward identities match finite differences: dA = dC·Bᵀ, dB = Aᵀ·dC', () => {
  const M = 4, N = 5, K = 3;
  const a = Float64Array.from(rng.randn(M * K)), b = Float64Array.from(rng.randn(K * N));
  const g = rng.randn(M * N); // upstream gradient: loss = Σ C ⊙ g
  const loss = (av: Float64Array, bv: Float64Array) => {
    const c = matmulRef(av, bv, M, N, K);
    return c.reduce((s, x, i) => s + x * g[i], 0);
  };
  const tg = Tensor.fromArray(g, [M, N]);
  const da = kernels.matmul(tg, Tensor.fromArray(Float32Array.from(b), [K, N]), { transB: true }).toArray();
  const db = kernels.matmul(Tensor.fromArray(Float32Array.from(a), [M, K]), tg, { transA: true }).toArray();
  checkGrad((x) => loss(x, b), a, da, { what: 'dA', atol: 1e-4 });
  checkGrad((x) => loss(a, x), b, db, { what: 'dB', atol: 1e-4 });
});

test('bad arguments name the argument and the expected shape', () => {
  const a = Tensor.fromArray(rng.randn(6), [2, 3]);
  const b = Tensor.fromArray(rng.randn(8), [4, 2]);
  assert.throws(() => kernels.matmul(a, b), (e: Error) => e instanceof RangeError && /b has shape \[4,2\].*K = 3.*\[3,N\]/.test(e.message));
  assert.throws(() => kernels.matmul(a, Tensor.fromArray(rng.randn(3), [3])), (e: Error) => e instanceof RangeError && /b must be 2-D/.test(e.message));
  assert.throws(() => kernels.matmul(a, 'x' as never), (e: Error) => e instanceof TypeError && /b must be a Tensor, got a string/.test(e.message));
  const c = Tensor.fromArray(rng.randn(6), [3, 2]);
  assert.throws(() => kernels.matmul(a, c, { bias: Tensor.fromArray(rng.randn(3), [3]) }), (e: Error) => e instanceof RangeError && /bias must have shape \[2\]/.test(e.message));
  assert.throws(() => kernels.matmul(a, c, { out: Tensor.empty([3, 3]) }), (e: Error) => e instanceof RangeError && /out must have shape \[2,2\]/.test(e.message));
  assert.throws(() => kernels.matmul(a, c, { accumulate: true }), (e: Error) => e instanceof TypeError && /accumulate needs an out/.test(e.message));
  assert.throws(() => kernels.matmul(a, c, { transA: 1 as never }), (e: Error) => e instanceof TypeError && /transA must be a boolean/.test(e.message));
  const sq = Tensor.fromArray(rng.randn(4), [2, 2]);
  assert.throws(() => kernels.matmul(sq, sq, { out: sq }), (e: Error) => e instanceof RangeError && /must not be the same tensor/.test(e.message));
  c.dispose();
  assert.throws(() => kernels.matmul(a, c), (e: Error) => e instanceof TypeError && /b is disposed/.test(e.message));
});

test('outDtype: f32 operands give f32 only; a wrong pair names both dtypes', () => {
  const a = Tensor.fromArray(rng.randn(6), [2, 3]), b = Tensor.fromArray(rng.randn(6), [3, 2]);
  assert.is(kernels.matmul(a, b, { outDtype: 'f32' }).dtype, 'f32');
  assert.throws(() => kernels.matmul(a, b, { outDtype: 'bf16' }),
    (e: Error) => e instanceof TypeError && /output \(outDtype\) is bf16 but a and b are f32; it must be f32$/.test(e.message));
  assert.throws(() => kernels.matmul(a, b, { outDtype: 'f64' as never }), (e: Error) => e instanceof TypeError && /outDtype must be 'f32', 'bf16' or 'f16', got/.test(e.message));
  assert.throws(() => kernels.matmul(a, b, { out: Tensor.empty([2, 2]), outDtype: 'f16' }),
    (e: Error) => e instanceof TypeError && /outDtype is f16 but out has dtype f32/.test(e.message));
});

for (const dtype of ['f32', 'bf16', 'f16'] as const) {
  cudaTest(test, `cuda ${dtype} matches the CPU kernel`, () => {
    for (let i = 0; i < 20; i++) {
      const M = rng.pick(sizes), N = rng.pick(sizes), K = rng.pick(sizes);
      const transA = rng.next() < 0.5, transB = rng.next() < 0.5;
      // Round inputs to the storage type first so that both devices multiply the same numbers.
      const round = (x: Float32Array, shape: number[]) => Tensor.fromArray(x, shape, { device: 'cuda', dtype }).toArray();
      const a = round(rng.randn(M * K), transA ? [K, M] : [M, K]), b = round(rng.randn(K * N), transB ? [N, K] : [K, N]);
      const bias = round(rng.randn(N), [N]);
      const cpu = kernels.matmul(Tensor.fromArray(a, transA ? [K, M] : [M, K]), Tensor.fromArray(b, transB ? [N, K] : [K, N]),
        { transA, transB, bias: Tensor.fromArray(bias, [N]) }).toArray();
      const opt = { device: 'cuda' as const, dtype };
      const gpu = kernels.matmul(Tensor.fromArray(a, transA ? [K, M] : [M, K], opt), Tensor.fromArray(b, transB ? [N, K] : [K, N], opt),
        { transA, transB, bias: Tensor.fromArray(bias, [N], opt) }).toArray();
      // The GPU output is rounded once to the storage type: half an ulp of it, relative.
      const rtol = dtype === 'f32' ? 1e-5 : dtype === 'bf16' ? 8e-3 : 1e-3;
      assertClose(gpu, cpu, { atol: 1e-4 * Math.sqrt(K), rtol, what: `cuda ${dtype} M=${M} N=${N} K=${K}` });
    }
  });
}

for (const dtype of ['bf16', 'f16'] as const) {
  cudaTest(test, `cuda ${dtype} operands with an f32 output (outDtype, and an f32 out accumulated) match a float64 reference`, () => {
    const opt = { device: 'cuda' as const, dtype };
    for (const [M, N, K, transA, transB] of [[17, 33, 9, false, false], [65, 40, 48, true, false], [30, 129, 70, false, true], [3, 5, 200, true, true]] as const) {
      const sa = transA ? [K, M] : [M, K], sb = transB ? [N, K] : [K, N];
      const ta = Tensor.fromArray(rng.randn(M * K), sa, opt), tb = Tensor.fromArray(rng.randn(K * N), sb, opt), tbias = Tensor.fromArray(rng.randn(N), [N], opt);
      const a = ta.toArray(), b = tb.toArray(), bias = tbias.toArray(), c0 = rng.randn(M * N);
      const what = `${dtype}→f32 M=${M} N=${N} K=${K} transA=${transA} transB=${transB}`;
      const fresh = kernels.matmul(ta, tb, { transA, transB, bias: tbias, outDtype: 'f32' });
      assert.is(fresh.dtype, 'f32');
      // f32 accumulation of exact products: the error is f32 rounding of the sums only.
      const ref = matmulRef(a, b, M, N, K, { transA, transB, bias });
      assertClose(fresh.toArray(), ref, { atol: 1e-5 * Math.sqrt(K), rtol: 1e-5, what });
      const out = Tensor.fromArray(c0, [M, N], { device: 'cuda' });
      kernels.matmul(ta, tb, { transA, transB, out, accumulate: true });
      assertClose(out.toArray(), matmulRef(a, b, M, N, K, { transA, transB, c0 }), { atol: 1e-5 * Math.sqrt(K), rtol: 1e-5, what: `${what} accumulate` });
      for (const t of [ta, tb, tbias, fresh, out]) t.dispose();
    }
  });
}

cudaTest(test, 'cuda: an output dtype other than the operands\' or f32 names the pair', () => {
  const f16 = { device: 'cuda' as const, dtype: 'f16' as const };
  const a = Tensor.fromArray(rng.randn(6), [2, 3], f16), b = Tensor.fromArray(rng.randn(6), [3, 2], f16);
  assert.throws(() => kernels.matmul(a, b, { outDtype: 'bf16' }),
    (e: Error) => e instanceof TypeError && /output \(outDtype\) is bf16 but a and b are f16; it must be f16 or f32/.test(e.message));
  assert.throws(() => kernels.matmul(a, b, { out: Tensor.empty([2, 2], { device: 'cuda', dtype: 'bf16' }) }),
    (e: Error) => e instanceof TypeError && /output \(out\) is bf16 but a and b are f16/.test(e.message));
  const af = Tensor.fromArray(rng.randn(6), [2, 3], { device: 'cuda' }), bf = Tensor.fromArray(rng.randn(6), [3, 2], { device: 'cuda' });
  assert.throws(() => kernels.matmul(af, bf, { outDtype: 'bf16' }), (e: Error) => e instanceof TypeError && /is bf16 but a and b are f32; it must be f32$/.test(e.message));
});

test.run();
