// memory.test.ts: device memory and traffic on CUDA: memoryStats().cuda follows allocations and
// frees; Tensor.zeros/full and casts move nothing between host and device, an upload is one copy
// to the device, a download one copy back and one wait; a request the device cannot hold is a
// RangeError naming it.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { memoryStats, Tensor, transferStats } from 'mamakit';
import { cudaTest, Rng, throwsNamed } from '../helpers/index.js';

const test = suite('cuda memory');
const rng = new Rng(63);
const cuda = { device: 'cuda' as const };

cudaTest(test, 'memoryStats().cuda counts live and peak tensor bytes', () => {
  memoryStats(true);
  const before = memoryStats().cuda!;
  const a = Tensor.empty([1000, 1000], cuda), b = Tensor.empty([500], { ...cuda, dtype: 'bf16' });
  const mid = memoryStats().cuda!;
  assert.is(mid.liveBytes - before.liveBytes, 4_000_000 + 1000);
  assert.ok(mid.heldBytes >= mid.liveBytes, JSON.stringify(mid));
  a.dispose(), b.dispose();
  const after = memoryStats().cuda!;
  assert.is(after.liveBytes, before.liveBytes);
  assert.is(after.peakBytes, mid.liveBytes);
  assert.is(memoryStats(true).cuda!.peakBytes, mid.liveBytes);
  assert.is(memoryStats().cuda!.peakBytes, before.liveBytes);
});

cudaTest(test, 'transfers: fill and cast stay on the device; an upload is one copy, a download one copy and one wait', () => {
  const t0 = transferStats();
  const z = Tensor.zeros([300, 7], cuda), f = Tensor.full([9], 2, { ...cuda, dtype: 'f16' });
  const c = z.to({ dtype: 'bf16' });
  assert.equal(transferStats(), t0, 'zeros, full and a cast on the device');
  const u = Tensor.fromArray(rng.randn(100), [100], cuda);
  const t1 = transferStats();
  assert.equal([t1.toDevice - t0.toDevice, t1.toHost - t0.toHost, t1.syncs - t0.syncs], [1, 0, 0], 'an f32 upload');
  const h = Tensor.fromArray(rng.randn(100), [100], { ...cuda, dtype: 'bf16' });
  u.toArray();
  const t2 = transferStats();
  assert.equal([t2.toDevice - t1.toDevice, t2.toHost - t1.toHost, t2.syncs - t1.syncs], [1, 1, 1], 'a bf16 upload and an f32 download');
  for (const t of [z, f, c, u, h]) t.dispose();
});

cudaTest(test, 'more memory than the device has is a RangeError that names the request and what is free', () => {
  throwsNamed(() => Tensor.empty([2 ** 31 - 1, 64], cuda), RangeError,
    /^Tensor: cannot allocate 549755813632 bytes on cuda: out of device memory: 524288\.0 MiB requested, [\d.]+ MiB free of [\d.]+ MiB$/);
  const t = Tensor.zeros([4], cuda);
  assert.equal(Array.from(t.toArray()), [0, 0, 0, 0], 'the device still works');
});

test.run();
