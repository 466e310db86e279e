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

test('a bad shard is named', () => {
  const make = (shard: unknown, train = true) => () => new data.Loader([], null, { size: 32, batch: 2, seed: 0, train, shard: shard as { rank: number; size: number } });
  throwsNamed(make({ rank: 2, size: 2 }), RangeError, /shard must be \{ rank, size \}/);
  throwsNamed(make({ rank: 0, size: 0 }), RangeError, /shard must be/);
  throwsNamed(make({ rank: 0, size: 2 }, false), RangeError, /shard is for training/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
