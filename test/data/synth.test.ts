// synth.test.ts: a small synthetic set generated and loaded through the same EMBED path a
// user's data takes (tables, captions, splits, views, image tensors); the same seed gives the
// same bytes; corrupt image bytes give a named error, never a crash.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data } from 'mamakit';
import { Rng } from '../helpers/index.js';

const test = suite('synth');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-synth-'));

test('a synthetic set loads through the EMBED path: captions, splits, views, image tensors', async () => {
  const out = join(dir, 'a');
  const r = await data.generateStudies({ out, studies: 12, size: 64, seed: 5 });
  assert.is(r.images, 48);
  const e = data.loadEmbed(join(out, 'metadata.csv'), join(out, 'clinical.csv'), out, 1);
  // Study 7's description names neither reason: its four images are dropped (MAMA.md §4).
  assert.equal(e.skipped, { 'no reason': 4 });
  assert.is(e.images.length, 44);
  const reasons = new Set(e.images.map((im) => im.fields.reason));
  assert.ok(reasons.has('screening') && reasons.has('diagnostic'), [...reasons].join());
  const density = ['almost entirely fat', 'scattered fibroglandular densities', 'heterogeneously dense', 'extremely dense'];
  for (const im of e.images) {
    assert.is(im.mates.length, 3, 'four images per study');
    assert.ok(['CC', 'MLO'].includes(im.view) && ['L', 'R'].includes(im.side));
    const c = data.caption(im.fields);
    assert.ok(c.includes(density[im.fields.density - 1]), c);
    assert.ok(c.includes(`BI-RADS Category ${im.fields.birads}:`));
    assert.ok(im.mates.every((j) => e.images[j].split === im.split && e.images[j].patient === im.patient));
  }
  // Findings sit on one side: the other side of a study is negative.
  for (const im of e.images) if (im.fields.birads !== 1) assert.ok(im.mates.some((j) => e.images[j].side !== im.side && e.images[j].fields.birads === 1));
  const x = await data.loadImage(e.images[0].path, { size: 32 });
  assert.is(x.length, 32 * 32);
  assert.ok(x.every((v) => v >= -1 && v <= 1) && x.some((v) => v > -0.5), 'normalised, breast visible');
  const aug = await data.loadImage(e.images[0].path, { size: 32, rand: new Rng(3).next.bind(new Rng(3)) });
  assert.is(aug.length, 32 * 32);
});

test('the same seed writes the same bytes; another seed does not', async () => {
  await data.generateStudies({ out: join(dir, 'b'), studies: 3, size: 48, seed: 9 });
  await data.generateStudies({ out: join(dir, 'c'), studies: 3, size: 48, seed: 9 });
  await data.generateStudies({ out: join(dir, 'd'), studies: 3, size: 48, seed: 10 });
  for (const f of ['metadata.csv', 'clinical.csv']) assert.equal(readFileSync(join(dir, 'b', f)), readFileSync(join(dir, 'c', f)));
  const png = (d: string) => readFileSync(join(dir, d, 'images', 'SYN009000001_L_MLO.png'));
  assert.equal(png('b'), png('c'));
  assert.not.equal(readFileSync(join(dir, 'b', 'clinical.csv')).toString(), readFileSync(join(dir, 'd', 'clinical.csv')).toString());
});

test('corrupt image bytes give a named error, never a crash', async () => {
  const rng = new Rng(11);
  const good = readFileSync(join(dir, 'b', 'images', 'SYN009000001_L_MLO.png'));
  for (let i = 0; i < 40; i++) {
    const bad = Buffer.from(good);
    const kind = i % 4;
    const cut = kind === 0 ? bad.subarray(0, rng.int(0, bad.length - 1)) : bad;
    if (kind === 1) for (let k = 0; k < 20; k++) bad[rng.int(0, bad.length - 1)] = rng.int(0, 255);
    if (kind === 2) for (let k = 0; k < bad.length; k++) bad[k] = rng.int(0, 255);
    const path = join(dir, `bad${i}.png`);
    writeFileSync(path, kind === 3 ? Buffer.from('not an image at all') : cut);
    try {
      const x = await data.loadImage(path, { size: 16 });
      assert.is(x.length, 256); // a flip in a non-critical byte may still decode
    } catch (e) {
      assert.ok((e as Error).message.startsWith(`image ${path}: cannot decode it`), (e as Error).message);
    }
  }
});

test.run();
