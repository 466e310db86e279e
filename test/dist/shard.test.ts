// shard.test.ts: the Loader's shards (data-parallel training): the ranks' batches are disjoint,
// together the one-process epoch's first size·floor(n / (size·batch))·batch images, and each
// rank's k-th batch is the one-process epoch's batch k·size + rank, pixels and captions alike.
import { suite } from '../helpers/suite.js';
import { assertIdentical, throwsNamed } from '../helpers/index.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data } from 'mamakit';

const test = suite('dist shard');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-shard-'));

test('2 shards: disjoint, the first batches of the one-process epoch, the same augmentations', async () => {
  await data.generateStudies({ out: dir, studies: 6, size: 48, seed: 3 });
  const { images } = data.loadEmbed(join(dir, 'metadata.csv'), join(dir, 'clinical.csv'), dir, 0);
  const tok = data.CaptionTokenizer.fromFile('assets/tokenizer-tiny.json');
  const B = 5, size = 2, epoch = 1;
  const draw = async (shard?: { rank: number; size: number }) => {
    const loader = new data.Loader(images, tok, { size: 32, batch: B, seed: 4, train: true, workers: 1, shard });
    const out: data.Batch[] = [];
    for await (const b of loader.epoch(epoch)) out.push(b);
    assert.is(out.length, loader.perEpoch);
    await loader.close();
    return out;
  };
  const one = await draw(), shards = [await draw({ rank: 0, size }), await draw({ rank: 1, size })];
  const per = Math.floor(images.length / size / B);
  assert.is(one.length, Math.floor(images.length / B));
  for (const s of shards) assert.is(s.length, per);
  const ids = shards.map((s) => s.flatMap((b) => [...b.index]));
  const union = new Set([...ids[0], ...ids[1]]);
  assert.is(union.size, ids[0].length + ids[1].length, 'the shards share no image');
  assert.equal([...union].sort((a, b) => a - b), one.flatMap((b) => [...b.index]).slice(0, size * per * B).sort((a, b) => a - b));
  for (let k = 0; k < per; k++)
    for (let r = 0; r < size; r++) {
      const a = shards[r][k], b = one[k * size + r];
      assert.equal([...a.index], [...b.index]);
      assertIdentical(a.images, b.images, `rank ${r} batch ${k}: images`);
      assertIdentical(a.views!, b.views!, `rank ${r} batch ${k}: second views`);
      assertIdentical(a.ids, b.ids, `rank ${r} batch ${k}: captions`);
    }
});

test('from: an epoch started at a sample (a resume) yields the batches the whole epoch has there, on any shards; end counts the samples', async () => {
  const { images } = data.loadEmbed(join(dir, 'metadata.csv'), join(dir, 'clinical.csv'), dir, 0);
  const tok = data.CaptionTokenizer.fromFile('assets/tokenizer-tiny.json');
  const epochOf = async (batch: number, from: number, shard?: { rank: number; size: number }) => {
    const loader = new data.Loader(images, tok, { size: 32, batch, seed: 4, train: true, workers: 1, shard });
    const out: data.Batch[] = [];
    try {
      for await (const b of loader.epoch(2, from)) out.push(b);
    } finally {
      await loader.close();
    }
    assert.is(out.length, loader.batchesFrom(from));
    return out;
  };
  // One process in batches of 3: samples 0 … 3k; then from sample 6 in batches of 2 on 2 ranks.
  const whole = await epochOf(3, 0), rows = whole.flatMap((b) => [...b.index]);
  assert.equal(whole.map((b) => b.end), whole.map((_, k) => 3 * (k + 1)));
  const ranks = [await epochOf(2, 6, { rank: 0, size: 2 }), await epochOf(2, 6, { rank: 1, size: 2 })];
  assert.is(ranks[0].length, Math.floor((images.length - 6) / 4));
  ranks.forEach((batches, r) => batches.forEach((b, k) => {
    const at = 6 + (2 * k + r) * 2;
    assert.equal([...b.index], rows.slice(at, at + 2), `rank ${r} batch ${k}: samples ${at}, ${at + 1} of the epoch`);
    assert.is(b.end, 6 + (k + 1) * 4);
    // The same augmentations as the one-process epoch's (its batch of 3 holding these samples).
    const [w, i] = [Math.floor(at / 3), at % 3], ref = whole[w];
    if (i + 2 <= 3) assertIdentical(b.views!.subarray(0, 2 * 32 * 32), ref.views!.subarray(i * 32 * 32, (i + 2) * 32 * 32), `rank ${r} batch ${k}: second views`);
  }));
  let err: unknown = null;
  await epochOf(2, images.length + 1).catch((e) => (err = e));
  assert.ok(err instanceof RangeError && /from must be an integer sample in \[0, \d+\], got \d+/.test(err.message), String(err));
});

test('a bad shard is named', () => {
  const make = (shard: unknown, train = true) => () => new data.Loader([], null, { size: 32, batch: 2, seed: 0, train, shard: shard as { rank: number; size: number } });
  throwsNamed(make({ rank: 2, size: 2 }), RangeError, /shard must be \{ rank, size \}/);
  throwsNamed(make({ rank: 0, size: 0 }), RangeError, /shard must be/);
  throwsNamed(make({ rank: 0, size: 2 }, false), RangeError, /shard is for training/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
