// copy.test.ts: copy, copy2d, fill and cast: values moved exactly (bit for bit where no rounding
// is asked for), on every ISA; on CUDA in f32, bf16 and f16; bad arguments named.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { kernels, Tensor } from 'mamakit';
import { assertIdentical, cudaTest, forEachIsa, Rng, throwsNamed } from '../helpers/index.js';

const test = suite('copy');
const rng = new Rng(61);

forEachIsa(test, 'copy is exact; fill writes every element (streaming sizes too)', () => {
  for (const n of [1, 17, 100_003, 9_000_001]) {
    const src = Tensor.fromArray(rng.randn(n), [n]);
    assertIdentical(kernels.copy(src).toArray(), src.toArray(), `copy n=${n}`);
    const x = Tensor.fromArray(rng.randn(n), [n]);
    const f = kernels.fill(x, -0.75).toArray();
    for (let i = 0; i < n; i++) if (f[i] !== -0.75) assert.unreachable(`fill n=${n}: [${i}] = ${f[i]}`);
  }
});

forEachIsa(test, 'copy2d copies strided blocks; bad blocks are named', () => {
  const src = Tensor.fromArray(Float32Array.from({ length: 30 }, (_, i) => i), [5, 6]);
  const dst = Tensor.full([4, 7], -1);
  kernels.copy2d(src, dst, { rows: 3, cols: 2, srcOffset: 7, srcStride: 6, dstOffset: 2, dstStride: 7 });
  const d = Array.from(dst.toArray());
  const want = Array(28).fill(-1);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 2; c++) want[2 + r * 7 + c] = 7 + r * 6 + c;
  assert.equal(d, want);
  throwsNamed(() => kernels.copy2d(src, dst, { rows: 5, cols: 2, srcStride: 6, dstStride: 7 }), RangeError, /copy2d: 5 rows of 2 at offset 0 with stride 7 run past dst's 28 elements/);
  throwsNamed(() => kernels.copy2d(src, dst, { rows: 2, cols: 4, srcStride: 3 }), RangeError, /copy2d: srcStride must be an integer in \[4, 30\], got 3/);
  throwsNamed(() => kernels.copy2d(src, src, { rows: 2, cols: 3, srcOffset: 0, srcStride: 6, dstOffset: 2, dstStride: 6 }), RangeError, /copy2d: the source and destination blocks overlap/);
  kernels.copy2d(src, src, { rows: 2, cols: 3, srcOffset: 0, srcStride: 6, dstOffset: 18, dstStride: 6 }); // disjoint blocks of one tensor
  assert.equal(Array.from(src.toArray()).slice(18, 21), [0, 1, 2]);
});

test('cast on the CPU is f32 to f32 only; bad arguments are named', () => {
  const x = Tensor.fromArray(rng.randn(6), [2, 3]);
  assertIdentical(kernels.cast(x, 'f32').toArray(), x.toArray());
  throwsNamed(() => kernels.cast(x, 'bf16'), TypeError, /dtype 'bf16' is only stored on 'cuda'/);
  throwsNamed(() => kernels.cast(x, 'f64' as never), TypeError, /cast: dtype must be 'f32', 'bf16' or 'f16', got a string/);
  throwsNamed(() => kernels.cast(x, 'f32', Tensor.zeros([3, 2])), RangeError, /cast: dst must have shape \[2,3\], got \[3,2\]/);
  throwsNamed(() => kernels.cast(x, 'f32', x), RangeError, /cast: dst must not be the same tensor as src/);
  throwsNamed(() => kernels.fill(x, NaN), RangeError, /fill: value must be in/);
  throwsNamed(() => kernels.copy(x, Tensor.zeros([4])), RangeError, /copy: dst must have shape \[2,3\]/);
});

// bf16 and f16 rounding (nearest even) of float32 values, as the device stores them.
function round16(x: Float32Array, dtype: 'bf16' | 'f16'): Float32Array {
  if (dtype === 'bf16') {
    const u = new Uint32Array(Float32Array.from(x).buffer);
    for (let i = 0; i < u.length; i++) u[i] = (u[i] + 0x7fff + ((u[i] >>> 16) & 1)) & 0xffff0000;
    return new Float32Array(u.buffer);
  }
  return x.map((v) => {
    const a = Math.abs(v);
    if (!(a > 0) || !Number.isFinite(a)) return v;
    let e = Math.floor(Math.log2(a));
    if (2 ** e > a) e -= 1;
    else if (2 ** (e + 1) <= a) e += 1;
    const ulp = 2 ** (Math.max(e, -14) - 10), m = a / ulp, fl = Math.floor(m), d = m - fl;
    const r = (d > 0.5 || (d === 0.5 && fl % 2 === 1) ? fl + 1 : fl) * ulp;
    return Math.sign(v) * (r > 65504 ? Infinity : r);
  });
}

cudaTest(test, 'cuda: copy, copy2d and fill are exact in every dtype; cast rounds to nearest even once, and Tensor.to converts on the device', () => {
  const x = rng.randn(1031, 3);
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    const t = Tensor.fromArray(x, [1031], { device: 'cuda', dtype });
    const stored = t.toArray();
    assertIdentical(kernels.copy(t).toArray(), stored, `copy ${dtype}`);
    const z = Tensor.full([7, 9], 2.5, { device: 'cuda', dtype });
    assert.ok(z.toArray().every((v) => v === 2.5), `full ${dtype}`);
    kernels.fill(z, -1);
    assert.ok(z.toArray().every((v) => v === -1), `fill ${dtype}`);
    const src = Tensor.fromArray(x.subarray(0, 30), [5, 6], { device: 'cuda', dtype });
    const dst = Tensor.full([4, 7], -1, { device: 'cuda', dtype });
    kernels.copy2d(src, dst, { rows: 3, cols: 2, srcOffset: 7, srcStride: 6, dstOffset: 2, dstStride: 7 });
    const s = src.toArray(), d = dst.toArray();
    for (let r = 0; r < 3; r++) for (let c = 0; c < 2; c++) assert.is(d[2 + r * 7 + c], s[7 + r * 6 + c]);
    for (const to of ['f32', 'bf16', 'f16'] as const) {
      const c = kernels.cast(t, to).toArray();
      assertIdentical(c, to === 'f32' ? stored : round16(stored, to), `cast ${dtype} → ${to}`);
      const moved = t.to({ dtype: to });
      assert.equal([moved.device, moved.dtype], ['cuda', to]);
      assertIdentical(moved.toArray(), c, `to(${to}) from ${dtype}`);
    }
  }
  const host = Tensor.fromArray(x, [1031]).to({ device: 'cuda', dtype: 'bf16' });
  assertIdentical(host.toArray(), round16(x, 'bf16'), 'to cuda bf16');
  assertIdentical(host.to({ device: 'cpu', dtype: 'f32' }).toArray(), round16(x, 'bf16'), 'back to the cpu');
});

test.run();
