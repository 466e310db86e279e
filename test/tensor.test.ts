// tensor.test.ts: Tensor creation, round trips, disposal, device queries, and that memory
// stays flat over many create/dispose cycles and when tensors are left to the GC.
import { suite } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { backends, buildInfo, cudaStatus, kernels, Tensor } from 'mamakit';
import { assertIdentical, cudaTest, hasCuda, Rng } from './helpers/index.js';

const test = suite('tensor');
const rng = new Rng(7);

test('fromArray / toArray round trip keeps values, shape, dtype and device', () => {
  const data = rng.randn(2 * 3 * 5);
  const t = Tensor.fromArray(data, [2, 3, 5]);
  assert.equal(t.shape, [2, 3, 5]);
  assert.is(t.dtype, 'f32');
  assert.is(t.device, 'cpu');
  assert.is(t.size, 30);
  assertIdentical(t.toArray(), data);
  data[0] = 123; // the tensor holds a copy
  assert.is.not(t.toArray()[0], 123);
  assert.equal(Array.from(Tensor.full([4], 2.5).toArray()), [2.5, 2.5, 2.5, 2.5]);
  assert.equal(Array.from(Tensor.zeros([1, 3]).toArray()), [0, 0, 0]);
  assert.equal(Tensor.fromArray(new Float32Array([7]), []).shape, []);
});

test('a disposed tensor throws when used, and dispose is idempotent', () => {
  const t = Tensor.fromArray(rng.randn(4), [4]);
  t.dispose();
  t.dispose();
  assert.ok(t.disposed);
  assert.throws(() => t.toArray(), /disposed/);
});

test('bad constructor arguments give named TypeErrors and RangeErrors', () => {
  const bad: Array<[() => unknown, ErrorConstructor, RegExp]> = [
    [() => Tensor.fromArray(new Float32Array(5), [2, 3]), RangeError, /data has 5 elements but shape \[2,3\] needs 6/],
    [() => Tensor.fromArray(new Float64Array(6) as never, [2, 3]), TypeError, /data must be a Float32Array, got a Float64Array/],
    [() => Tensor.fromArray(new Float32Array(6), [2, 0, 3]), RangeError, /shape\[1\] must be an integer in \[1, /],
    [() => Tensor.fromArray(new Float32Array(6), [2, 1.5]), RangeError, /shape\[1\]/],
    [() => Tensor.fromArray(new Float32Array(6), [2, NaN]), RangeError, /shape\[1\]/],
    [() => Tensor.fromArray(new Float32Array(6), 'abc' as never), TypeError, /shape must be an array/],
    [() => Tensor.fromArray(new Float32Array(6), [6], { device: 'tpu' as never }), TypeError, /device must be 'cpu' or 'cuda', got 'tpu'/],
    [() => Tensor.fromArray(new Float32Array(6), [6], { dtype: 'f64' as never }), TypeError, /dtype must be 'f32', 'bf16' or 'f16', got 'f64'/],
    [() => Tensor.empty([1, 1, 1, 1, 1, 1, 1, 1, 1]), RangeError, /rank 9/],
    [() => Tensor.empty([1 << 30, 1 << 30]), RangeError, /more than 2\^40 elements/],
    [() => Tensor.empty([1 << 30, 1 << 9]), RangeError, /cannot allocate .* bytes on cpu: out of host memory: 2097152 MiB requested/],
  ];
  if (!hasCuda) bad.push([() => Tensor.fromArray(new Float32Array(6), [6], { device: 'cuda' }), Error, /'cuda' is not available/]);
  if (!hasCuda) bad.push([() => Tensor.fromArray(new Float32Array(6), [6], { dtype: 'bf16' }), TypeError, /'bf16' is only stored on 'cuda'/]);
  for (const [fn, type, re] of bad) {
    assert.throws(fn, (e: Error) => e instanceof type && re.test(e.message), `expected ${type.name} ${re}`);
  }
});

test('views share memory, keep their base alive and block its disposal', async () => {
  const base = Tensor.fromArray(Float32Array.from({ length: 12 }, (_, i) => i), [3, 4]);
  const v = base.view(4, [2, 2]);
  assert.equal(Array.from(v.toArray()), [4, 5, 6, 7]);
  kernels.copy(Tensor.fromArray(Float32Array.of(-1, -2, -3, -4), [2, 2]), v); // a write through the view
  assert.equal(Array.from(base.toArray()).slice(4, 8), [-1, -2, -3, -4]);
  const flat = base.reshape([12]);
  assert.equal(flat.shape, [12]);
  flat.dispose();
  assert.throws(() => base.reshape([5]), /reshape: \[5\] has 5 elements, the tensor \[3,4\] has 12/);
  assert.throws(() => base.view(10, [3]), /Tensor: view: offset 10 with 3 elements does not fit in the base's 12/);
  assert.throws(() => base.view(-1, [3]), /Tensor: view: offset -1/);
  assert.throws(() => base.dispose(), /cannot dispose a tensor while 1 view\(s\) of it are alive/);
  v.dispose();
  base.dispose();
  assert.ok(base.disposed);
  // A view alone keeps its base's memory valid after the base handle is dropped.
  let w: Tensor | null = Tensor.fromArray(Float32Array.of(1, 2, 3), [3]).view(1, [2]);
  for (let i = 0; i < 3; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(Array.from(w.toArray()), [2, 3]);
  w = null;
});

test('backends() lists cpu, and cuda exactly when cudaStatus says it is available', () => {
  const b = backends();
  assert.ok(b.includes('cpu'));
  const s = cudaStatus();
  assert.is(b.includes('cuda'), s.available);
  if (!s.available) assert.match(s.detail, /^(not built|not loadable|no driver|no device)/);
  const info = buildInfo();
  assert.ok(['avx512', 'avx2', 'scalar'].includes(info.isa));
  assert.ok(info.threads >= 1);
});

function rssMiB(): number {
  return process.memoryUsage().rss / (1 << 20);
}

test('resident memory is flat over 100 000 create/dispose cycles', async () => {
  // The data is freed by dispose(); the small wrapper objects by Node-API finalizers, which
  // Node runs once the event loop turns: yield every 1000 cycles, as any program does.
  const data = rng.randn(1024); // 4 KiB each
  const cycles = async (n: number) => {
    for (let i = 0; i < n; i++) {
      Tensor.fromArray(data, [32, 32]).dispose();
      if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
    }
  };
  await cycles(20_000);
  const before = rssMiB();
  await cycles(100_000);
  const grew = rssMiB() - before;
  // 100 000 leaked tensors would be 400 MiB; a leaked wrapper alone, 25 MiB.
  assert.ok(grew < 8, `RSS grew by ${grew.toFixed(1)} MiB`);
});

test('tensors left to the garbage collector are freed by the finalizer', async () => {
  const data = rng.randn(64 * 1024); // 256 KiB each
  const wait = () => new Promise((r) => setImmediate(r));
  for (let i = 0; i < 200; i++) Tensor.fromArray(data, [64, 1024]);
  await wait();
  const before = rssMiB();
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < 200; i++) Tensor.fromArray(data, [64, 1024]); // 50 MiB a round, never disposed
    await wait();
  }
  const grew = rssMiB() - before;
  // 2000 × 256 KiB = 500 MiB if the finalizer never ran.
  assert.ok(grew < 200, `RSS grew by ${grew.toFixed(1)} MiB with undisposed tensors`);
});

test('large tensors: a disposed block is reused, and forgotten ones are collected', async () => {
  const n = 16 * 1024 * 1024; // 64 MiB: served from the cache of 2 MiB-aligned blocks
  const before = rssMiB();
  for (let i = 0; i < 50; i++) {
    const t = Tensor.full([n], i);
    if (i === 49) assert.is(t.toArray()[n - 1], 49);
    t.dispose();
  }
  const grew = rssMiB() - before;
  assert.ok(grew < 140, `50 × 64 MiB create/dispose grew RSS by ${grew.toFixed(0)} MiB`);
  // 40 × 64 MiB never disposed = 2.5 GiB if nothing collected them.
  for (let i = 0; i < 40; i++) {
    Tensor.full([n], 1);
    await new Promise((r) => setImmediate(r));
  }
  const grew2 = rssMiB() - before;
  assert.ok(grew2 < 1600, `40 forgotten 64 MiB tensors grew RSS by ${grew2.toFixed(0)} MiB`);
});

cudaTest(test, 'cuda: bf16 and f16 round trips round to the storage type', () => {
  const data = rng.randn(1000);
  for (const [dtype, rel] of [['f32', 0], ['bf16', 2 ** -8], ['f16', 2 ** -11]] as const) {
    const back = Tensor.fromArray(data, [10, 100], { device: 'cuda', dtype }).toArray();
    for (let i = 0; i < data.length; i++) {
      assert.ok(Math.abs(back[i] - data[i]) <= rel * Math.abs(data[i]) + 1e-7, `${dtype}[${i}]: ${back[i]} vs ${data[i]}`);
    }
  }
});

test.run();
