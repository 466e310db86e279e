// loader.test.ts: batches from a synthetic set through worker threads: shapes, tokens and
// sentence positions, second views from the same study or the same image, meta masking only
// when training, the same batches for the same seed, unreadable images skipped and counted.
import { suite } from '../helpers/suite.js';
import { assertIdentical } from '../helpers/index.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data } from 'mamakit';

const test = suite('loader');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-loader-'));

test('batches from worker threads, reproducible, with unreadable images skipped', async () => {
  await data.generateStudies({ out: dir, studies: 6, size: 48, seed: 2 });
  const { images } = data.loadEmbed(join(dir, 'metadata.csv'), join(dir, 'clinical.csv'), dir, 0);
  writeFileSync(images[5].path, 'broken'); // one unreadable image
  const tok = data.CaptionTokenizer.fromFile('assets/tokenizer-tiny.json');
  const run = async (train: boolean) => {
    const loader = new data.Loader(images, tok, { size: 32, batch: 8, seed: 1, train, workers: 2 });
    const out: data.Batch[] = [];
    for await (const b of loader.epoch(0)) out.push(b);
    const unreadable = loader.unreadable.size;
    await loader.close();
    return { out, unreadable };
  };
  const a = await run(true), b = await run(true), ev = await run(false);
  assert.is(a.out.length, 3);
  assert.is(a.unreadable, 1);
  const n = a.out.reduce((s, x) => s + x.lens.length, 0);
  assert.ok(n >= 22 && n <= 23, `${n} samples`); // 24 images, one unreadable (its mates may still be fine)
  for (const x of a.out) {
    assert.is(x.images.length, x.lens.length * 32 * 32);
    assert.is(x.views!.length, x.images.length);
    assert.ok(x.images.every((v) => v >= -1 && v <= 1));
    x.sentences.forEach((s, k) => {
      assert.ok(s.length >= 8);
      for (const p of s) assert.is(x.ids[k * 144 + p], tok.special['<|sep|>']);
    });
  }
  assertIdentical(a.out[0].images.slice(0, 50), b.out[0].images.slice(0, 50), 'same seed, same pixels');
  assertIdentical(a.out[1].ids, b.out[1].ids);
  // Evaluation: no masking (captions carry the real age), every readable image once, in order.
  assert.is(ev.out.reduce((s, x) => s + x.lens.length, 0), 23);
  assert.is(ev.out[0].views, null);
  const decoded = tok.decode(ev.out[0].ids.slice(0, ev.out[0].lens[0]));
  assert.ok(/\d+ years old/.test(decoded), decoded);
});

test.run();
