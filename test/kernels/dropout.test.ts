// dropout.test.ts: the mask is the documented function of (seed, offset + i), reproduced here
// with BigInt; kept values are scaled by 1/(1−p); the backward sees the same mask; a split
// into ranges with offsets gives the same result as one call. On CUDA the mask and values equal
// the CPU's bit for bit.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { kernels, Tensor } from 'mamakit';
import { assertIdentical, cudaTest, forEachIsa, Rng, throwsNamed } from '../helpers/index.js';

const test = suite('dropout');
const rng = new Rng(19);
const M = (1n << 64n) - 1n, PHI = 0x9e3779b97f4a7c15n;

function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
  return z ^ (z >> 31n);
}

function kept(seed: number, i: number, p: number): boolean {
  const key = mix64((BigInt(seed) + PHI) & M);
  const u = Number(mix64((key + BigInt(i) * PHI) & M) >> 40n);
  return u >= Math.floor(p * 16777216);
}

forEachIsa(test, 'mask matches the reference hash; scale and backward agree', () => {
  const n = 3001, p = 0.3, seed = 12345, offset = 77;
  const x = rng.randn(n), g = rng.randn(n);
  const y = kernels.dropout(Tensor.fromArray(x, [n]), { p, seed, offset }).toArray();
  const dx = kernels.dropoutBackward(Tensor.fromArray(g, [n]), { p, seed, offset }).toArray();
  let dropped = 0;
  for (let i = 0; i < n; i++) {
    const k = kept(seed, offset + i, p);
    if (!k) dropped++;
    assert.ok(Math.abs(y[i] - (k ? x[i] / (1 - p) : 0)) <= 1e-6 * Math.abs(x[i]) + 1e-7, `y[${i}]`);
    assert.ok(Math.abs(dx[i] - (k ? g[i] / (1 - p) : 0)) <= 1e-6 * Math.abs(g[i]) + 1e-7, `dx[${i}]`);
  }
  // Binomial(3001, 0.3): mean 900, sd 25.
  assert.ok(Math.abs(dropped - n * p) < 6 * Math.sqrt(n * p * (1 - p)), `dropped ${dropped}`);
});

test('ranges with offsets reproduce one call; seeds differ; p = 0 is the identity', () => {
  const n = 100_000, x = rng.randn(n);
  const whole = kernels.dropout(Tensor.fromArray(x, [n]), { p: 0.5, seed: 9 }).toArray();
  const part = kernels.dropout(Tensor.fromArray(x.slice(40_000), [n - 40_000]), { p: 0.5, seed: 9, offset: 40_000 }).toArray();
  assertIdentical(part, whole.slice(40_000));
  const other = kernels.dropout(Tensor.fromArray(x, [n]), { p: 0.5, seed: 10 }).toArray();
  let same = 0;
  for (let i = 0; i < n; i++) if ((whole[i] === 0) === (other[i] === 0)) same++;
  assert.ok(same < 0.52 * n && same > 0.48 * n, `masks of two seeds agree on ${same} of ${n}`);
  assertIdentical(kernels.dropout(Tensor.fromArray(x.slice(0, 10), [10]), { p: 0, seed: 1 }).toArray(), x.slice(0, 10));
});

cudaTest(test, 'cuda: the CPU mask and values bit for bit in f32, bf16 and f16 (offsets past 2^32)', () => {
  const cases: Array<[number, number, number, number]> = [[1, 0.1, 7, 0], [257, 0.5, 12345, 77], [3001, 0.9, 2 ** 40 + 5, 2 ** 33 + 11],
    [1000, 0.3, 9, 2 ** 32 - 500]];
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    const o = { device: 'cuda' as const, dtype };
    for (const [n, p, seed, offset] of cases) {
      const xg = Tensor.fromArray(rng.randn(n), [n], o), gg = Tensor.fromArray(rng.randn(n), [n], o);
      const x = xg.toArray(), g = gg.toArray(); // the values the device holds
      // In 16 bits the device rounds the f32 product once: the CPU's result rounded the same way.
      const round = (v: Float32Array) => (dtype === 'f32' ? v : Tensor.fromArray(v, [n], o).toArray());
      const y = kernels.dropout(xg, { p, seed, offset }).toArray();
      assertIdentical(y, round(kernels.dropout(Tensor.fromArray(x, [n]), { p, seed, offset }).toArray()), `cuda ${dtype} y n=${n} p=${p}`);
      const dx = kernels.dropoutBackward(gg, { p, seed, offset }).toArray();
      assertIdentical(dx, round(kernels.dropoutBackward(Tensor.fromArray(g, [n]), { p, seed, offset }).toArray()), `cuda ${dtype} dx n=${n}`);
      if (n >= 1000) {
        const dropped = y.filter((v) => v === 0).length;
        assert.ok(Math.abs(dropped - n * p) < 6 * Math.sqrt(n * p * (1 - p)), `cuda ${dtype}: dropped ${dropped} of ${n} at p=${p}`);
      }
    }
  }
});

test('bad arguments are named', () => {
  const x = Tensor.fromArray(rng.randn(4), [4]);
  throwsNamed(() => kernels.dropout(x, { p: 1, seed: 1 }), RangeError, /dropout: p must be in \[0, /);
  throwsNamed(() => kernels.dropout(x, { p: NaN, seed: 1 }), RangeError, /p must be in/);
  throwsNamed(() => kernels.dropout(x, { p: 0.1, seed: -1 }), RangeError, /seed must be an integer/);
  throwsNamed(() => kernels.dropout(x, { p: 0.1, seed: 1.5 }), RangeError, /seed must be an integer/);
});

test.run();
