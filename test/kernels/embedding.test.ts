// embedding.test.ts: embedding lookup and its scatter-add backward (repeated ids included),
// on every ISA and on CUDA (against the CPU, in f32, bf16 and f16); ids out of range are refused.
import { suite } from '../helpers/suite.js';
import { kernels, Tensor } from 'mamakit';
import { assertClose, assertIdentical, cudaTest, forEachIsa, maxAbs, Rng, throwsNamed } from '../helpers/index.js';

const test = suite('embedding');
const rng = new Rng(17);

forEachIsa(test, 'lookup and scatter-add with repeated ids', () => {
  for (const [V, D, N] of [[1, 1, 3], [10, 7, 20], [50, 192, 300], [5, 130, 64]]) {
    const table = rng.randn(V * D), ids = Int32Array.from({ length: N }, () => rng.int(0, V - 1));
    const y = kernels.embedding(Tensor.fromArray(table, [V, D]), ids).toArray();
    const want = new Float64Array(N * D);
    for (let n = 0; n < N; n++) for (let d = 0; d < D; d++) want[n * D + d] = table[ids[n] * D + d];
    assertClose(y, want, { atol: 0, rtol: 0, what: 'lookup' });
    const dy = rng.randn(N * D), d0 = rng.randn(V * D);
    const dTable = kernels.embeddingBackward(Tensor.fromArray(dy, [N, D]), ids, Tensor.fromArray(d0, [V, D])).toArray();
    const acc = Float64Array.from(d0);
    for (let n = 0; n < N; n++) for (let d = 0; d < D; d++) acc[ids[n] * D + d] += dy[n * D + d];
    assertClose(dTable, acc, { atol: 1e-5, rtol: 1e-5, what: 'dTable' });
  }
});

cudaTest(test, 'cuda: lookup and scatter-add match the CPU in f32, bf16 and f16 (repeated ids)', () => {
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    const o = { device: 'cuda' as const, dtype };
    // The device rounds each accumulated element once: half an ulp of the result.
    const rtol = dtype === 'f32' ? 1e-6 : dtype === 'bf16' ? 2 ** -8 : 2 ** -11;
    for (const [V, D, N] of [[1, 1, 3], [10, 7, 20], [5, 130, 64], [40, 33, 257]]) {
      const ids = Int32Array.from({ length: N }, () => rng.int(0, V - 1));
      const tg = Tensor.fromArray(rng.randn(V * D), [V, D], o), table = tg.toArray();
      assertIdentical(kernels.embedding(tg, ids).toArray(), kernels.embedding(Tensor.fromArray(table, [V, D]), ids).toArray(), `cuda ${dtype} lookup V=${V} D=${D}`);
      const dyg = Tensor.fromArray(rng.randn(N * D), [N, D], o), d0g = Tensor.fromArray(rng.randn(V * D), [V, D], o);
      const dy = dyg.toArray(), d0 = d0g.toArray();
      const got = kernels.embeddingBackward(dyg, ids, d0g).toArray();
      const want = kernels.embeddingBackward(Tensor.fromArray(dy, [N, D]), ids, Tensor.fromArray(d0, [V, D])).toArray();
      assertClose(got, want, { atol: 1e-6 * maxAbs(want), rtol, what: `cuda ${dtype} dTable V=${V} D=${D} N=${N}` });
    }
  }
});

test('bad arguments are named', () => {
  const t = Tensor.fromArray(rng.randn(12), [4, 3]);
  throwsNamed(() => kernels.embedding(t, new Int32Array([0, 4])), RangeError, /embedding: ids\[1\] = 4 is outside \[0, 3\]/);
  throwsNamed(() => kernels.embedding(t, new Int32Array([-1])), RangeError, /ids\[0\] = -1/);
  throwsNamed(() => kernels.embedding(t, new Int32Array(0)), RangeError, /ids must not be empty/);
  throwsNamed(() => kernels.embedding(t, new Float32Array([1]) as never), TypeError, /ids must be an Int32Array, got a Float32Array/);
  throwsNamed(() => kernels.embeddingBackward(Tensor.fromArray(rng.randn(6), [2, 3]), new Int32Array([0, 1]), Tensor.fromArray(rng.randn(8), [4, 2])), RangeError, /dTable must have shape \[4,3\]/);
});

test.run();
