// rsna.test.ts: RSNA Screening Mammography's Kaggle layout through loadRsna: a generated folder
// (train.csv, train_images/<patient>/<image>.dcm) read back column by column, a seeded 85/15 split
// by patient stratified by cancer, malformed rows and missing files counted by reason, a .png in
// place of the .dcm, named errors for a missing column; JPEG-2000, garbage and truncated DICOMs
// skipped and counted by a Loader, never a crash; the DICOM writer read back bit for bit.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { data } from 'mamakit';

const test = suite('rsna');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-rsna-'));
const gen = join(dir, 'gen');
type Row = Record<string, string>;
const table = (folder: string) => parse(readFileSync(join(folder, 'train.csv')), { columns: true }) as Row[];

test.before(async () => {
  await data.generateRsna({ out: gen, patients: 60, size: 48, seed: 3 });
});

test('a generated folder reads back: columns, labels, paths; Kaggle\'s header; 10–20 % of the images with cancer', () => {
  const rows = table(gen);
  assert.equal(Object.keys(rows[0]), [...data.RSNA_TRAIN_COLUMNS]);
  assert.is(rows.length, 240);
  const cancer = rows.filter((r) => r.cancer === '1').length;
  assert.ok(cancer >= 24 && cancer <= 48, `${cancer} of 240 images with cancer`);
  const r = data.loadRsna(join(gen, 'train.csv'), gen, 0);
  assert.equal(r.skipped, {});
  assert.is(r.images.length, 240);
  const byId = new Map(rows.map((row) => [row.image_id, row]));
  for (const im of r.images) {
    const row = byId.get(im.imageId)!;
    assert.is(im.path, join(gen, 'train_images', row.patient_id, `${row.image_id}.dcm`));
    assert.is(im.patient, row.patient_id), assert.is(im.side, row.laterality), assert.is(im.view, row.view);
    assert.is(im.cancer, Number(row.cancer));
    assert.is(im.fields.side, row.laterality === 'L' ? 'left' : 'right');
    assert.is(im.fields.age, row.age ? String(Math.floor(Number(row.age))) : 'unknown');
    // Site 1 gives density and BI-RADS, site 2 leaves them empty (NaN here).
    if (row.density) assert.is(im.fields.density, 'ABCD'.indexOf(row.density) + 1);
    else assert.ok(Number.isNaN(im.fields.density));
    if (row.BIRADS) assert.is(im.fields.birads, Number(row.BIRADS));
    else assert.ok(Number.isNaN(im.fields.birads));
    assert.is(im.mates.length, 3, 'four images per patient');
    assert.ok(im.mates.every((j) => r.images[j].patient === im.patient));
  }
  // Cancer is per breast: both views of a side agree, and at most one side of a patient has it.
  for (const im of r.images) for (const j of im.mates) if (r.images[j].side === im.side) assert.is(r.images[j].cancer, im.cancer);
  assert.ok(r.images.some((i) => Number.isNaN(i.fields.density)) && r.images.some((i) => i.fields.density >= 1), 'both sites present');
});

test('the split is by patient, 85/15 within patients with and without cancer, seeded', () => {
  for (const [seed, testFraction] of [[0, 0.15], [1, 0.15], [2, 0.15], [3, 0.15], [0, 0.33], [1, 0.33]]) {
    const { images } = data.loadRsna(join(gen, 'train.csv'), gen, seed, { testFraction });
    const split = new Map<string, string>(), positive = new Map<string, boolean>();
    for (const im of images) {
      assert.ok(!split.has(im.patient) || split.get(im.patient) === im.split, `patient ${im.patient} is in both splits`);
      split.set(im.patient, im.split), positive.set(im.patient, (positive.get(im.patient) ?? false) || im.cancer === 1);
    }
    for (const want of [true, false]) {
      const ids = [...positive].filter(([, p]) => p === want).map(([id]) => id);
      const inTest = ids.filter((id) => split.get(id) === 'test').length;
      assert.is(inTest, Math.round(testFraction * ids.length), `${want ? 'cancer' : 'no cancer'}: ${inTest} of ${ids.length} patients in test`);
      assert.ok(inTest >= 1);
    }
  }
  const { images } = data.loadRsna(join(gen, 'train.csv'), gen, 0);
  assert.equal(data.loadRsna(join(gen, 'train.csv'), gen, 0).images.map((i) => i.split), images.map((i) => i.split), 'same seed, same split');
  assert.not.equal(data.loadRsna(join(gen, 'train.csv'), gen, 1).images.map((i) => i.split), images.map((i) => i.split), 'another seed, another split');
  const half = data.loadRsna(join(gen, 'train.csv'), gen, 0, { testFraction: 0.5 }).images;
  assert.ok(half.filter((i) => i.split === 'test').length > 90);
  assert.throws(() => data.loadRsna(join(gen, 'train.csv'), gen, 0, { testFraction: 1 }), /loadRsna: testFraction must be in \(0, 1\), got 1/);
});

test('malformed rows and missing images are counted by reason; a .png stands in for a missing .dcm', async () => {
  const out = join(dir, 'messy');
  cpSync(gen, out, { recursive: true });
  const rows = table(out), [a, b, c] = rows;
  // Image b as a 16-bit PNG instead of its DICOM; image c's file deleted.
  const d = data.decodeDicom(readFileSync(join(out, 'train_images', b.patient_id, `${b.image_id}.dcm`)));
  await sharp(d.px, { raw: { width: d.width, height: d.height, channels: 1 } }).toColourspace('grey16').png().toFile(join(out, 'train_images', b.patient_id, `${b.image_id}.png`));
  rmSync(join(out, 'train_images', b.patient_id, `${b.image_id}.dcm`));
  rmSync(join(out, 'train_images', c.patient_id, `${c.image_id}.dcm`));
  const line = (r: Row) => data.RSNA_TRAIN_COLUMNS.map((k) => r[k]).join(',') + '\n';
  appendFileSync(join(out, 'train.csv'), [
    line({ ...a, image_id: '7', laterality: 'B' }), line({ ...a, image_id: '8', cancer: '' }), line({ ...a, image_id: '9', cancer: '2' }),
    line({ ...a, patient_id: '..', image_id: '10' }), line({ ...a, image_id: '../11' }), line({ ...a, image_id: '' }),
    line(a), // a repeated image id
    '1,2,3\n', // a short row
  ].join(''));
  const r = data.loadRsna(join(out, 'train.csv'), out, 0);
  assert.equal(r.skipped, { 'no laterality': 2, 'no cancer label': 2, 'bad patient or image id': 3, 'repeated image id': 1, 'image file missing': 1 });
  assert.is(r.images.length, 239);
  assert.is(r.images.find((i) => i.imageId === b.image_id)!.path, join(out, 'train_images', b.patient_id, `${b.image_id}.png`));
  assert.ok(!r.images.some((i) => i.imageId === c.image_id));
});

test('a missing column or an unreadable table is a named error', () => {
  const rows = table(gen);
  for (const col of data.RSNA_COLUMNS) {
    const keep = data.RSNA_TRAIN_COLUMNS.filter((k) => k !== col);
    const path = join(dir, `no-${col}.csv`);
    writeFileSync(path, [keep.join(','), ...rows.slice(0, 3).map((r) => keep.map((k) => r[k]).join(','))].join('\n') + '\n');
    assert.throws(() => data.loadRsna(path, gen), (e: Error) => e.message === `RSNA table ${path}: missing column ${col}`);
  }
  // The other columns may be absent: the label, ids, side and view are enough.
  const path = join(dir, 'minimal.csv');
  writeFileSync(path, ['patient_id,image_id,laterality,view,cancer', ...rows.slice(0, 4).map((r) => `${r.patient_id},${r.image_id},${r.laterality},${r.view},${r.cancer}`)].join('\n') + '\n');
  const m = data.loadRsna(path, gen);
  assert.is(m.images.length, 4);
  assert.is(m.images[0].fields.age, 'unknown');
  writeFileSync(join(dir, 'quote.csv'), 'patient_id,image_id,laterality,view,cancer\n"1,2,L,CC,0\n');
  assert.throws(() => data.loadRsna(join(dir, 'quote.csv'), gen), /^RSNA table .*quote\.csv: cannot read it as CSV/);
  assert.throws(() => data.loadRsna(join(dir, 'absent.csv'), gen), /^RSNA table .*absent\.csv: cannot read it as CSV \(ENOENT/);
});

// A DICOM whose pixel data is JPEG 2000 (encapsulated: an offset table item, one fragment), as
// part of Kaggle's set is; dicom-parser reads its header, our decoder refuses the syntax.
function jpeg2000Dicom(): Buffer {
  const el = (g: number, e: number, vr: string, v: Buffer) => {
    const h = Buffer.alloc(8);
    h.writeUInt16LE(g, 0), h.writeUInt16LE(e, 2), h.write(vr, 4, 'latin1'), h.writeUInt16LE(v.length, 6);
    return Buffer.concat([h, v]);
  };
  const item = (tag: number, v: Buffer) => {
    const h = Buffer.alloc(8);
    h.writeUInt16LE(0xfffe, 0), h.writeUInt16LE(tag, 2), h.writeUInt32LE(v.length, 4);
    return Buffer.concat([h, v]);
  };
  const pixels = Buffer.alloc(12);
  pixels.writeUInt16LE(0x7fe0, 0), pixels.writeUInt16LE(0x0010, 2), pixels.write('OB', 4, 'latin1'), pixels.writeUInt32LE(0xffffffff, 8);
  const us = (v: number) => Buffer.from(Uint16Array.of(v).buffer);
  return Buffer.concat([
    Buffer.alloc(128), Buffer.from('DICM'), el(0x0002, 0x0010, 'UI', Buffer.from('1.2.840.10008.1.2.4.90\0', 'latin1')),
    el(0x0028, 0x0002, 'US', us(1)), el(0x0028, 0x0004, 'CS', Buffer.from('MONOCHROME1 ', 'latin1')),
    el(0x0028, 0x0010, 'US', us(48)), el(0x0028, 0x0011, 'US', us(48)), el(0x0028, 0x0100, 'US', us(16)),
    pixels, item(0xe000, Buffer.alloc(0)), item(0xe000, Buffer.from([0xff, 0x4f, 0xff, 0x51, 0, 0, 1, 2])), item(0xe0dd, Buffer.alloc(0)),
  ]);
}

test('JPEG-2000, garbage and truncated DICOMs are skipped and counted by the Loader (no tokenizer), the rest read', async () => {
  const out = join(dir, 'broken');
  cpSync(gen, out, { recursive: true });
  const { images } = data.loadRsna(join(out, 'train.csv'), out, 0);
  const set = images.slice(0, 12);
  writeFileSync(set[1].path, jpeg2000Dicom());
  writeFileSync(set[4].path, 'not a DICOM file at all');
  writeFileSync(set[7].path, readFileSync(set[7].path).subarray(0, 900));
  const loader = new data.Loader(set, null, { size: 32, batch: 5, seed: 0, train: false, workers: 1 });
  const seen: number[] = [];
  try {
    for await (const b of loader.epoch(0)) {
      assert.is(b.images.length, b.index.length * 32 * 32);
      assert.ok(b.images.every((v) => v >= -1 && v <= 1));
      assert.ok(b.lens.every((l) => l === 0), 'no captions without a tokenizer');
      seen.push(...b.index);
    }
  } finally {
    await loader.close();
  }
  assert.equal(seen, [0, 2, 3, 5, 6, 8, 9, 10, 11]);
  assert.is(loader.unreadable.size, 3);
  assert.match(loader.unreadable.get(set[1].path)!, /transfer syntax 1\.2\.840\.10008\.1\.2\.4\.90 \(compressed\) is not supported/);
  assert.match(loader.unreadable.get(set[4].path)!, /not a readable DICOM file/);
  assert.match(loader.unreadable.get(set[7].path)!, /pixel data too short|not a readable DICOM file/);
  assert.match(loader.unreadableNote(), /^3 of 12 images could not be read \(skipped\): image /);
});

test('dicomFile reads back bit for bit (MONOCHROME1 inverted on disk); generateRsna is seeded; PNG layout', async () => {
  const W = 5, H = 3, px = Uint16Array.from({ length: W * H }, (_, i) => (i === 0 ? 0 : i === 7 ? 65535 : (i * 4099) % 65536));
  for (const monochrome1 of [false, true]) {
    const bytes = data.dicomFile(px, W, H, { uid: '12345', patientId: '10001', laterality: 'L', view: 'CC', monochrome1 });
    const d = data.decodeDicom(bytes);
    assert.is(d.width, W), assert.is(d.height, H);
    assert.equal(Array.from(d.px), Array.from(px));
    const stored = new Uint16Array(Uint8Array.from(bytes.subarray(bytes.length - 2 * W * H)).buffer);
    assert.is(stored[7], monochrome1 ? 0 : 65535);
  }
  assert.throws(() => data.dicomFile(px, W, W, { uid: '1' }), /dicomFile: 15 pixels for 5×5/);
  assert.throws(() => data.dicomFile(px, W, H, { uid: '01' }), /dicomFile: uid must be a decimal number/);
  const again = join(dir, 'again'), png = join(dir, 'png');
  await data.generateRsna({ out: again, patients: 60, size: 48, seed: 3 });
  assert.ok(readFileSync(join(again, 'train.csv')).equals(readFileSync(join(gen, 'train.csv'))));
  const im = data.loadRsna(join(gen, 'train.csv'), gen).images[9];
  assert.ok(readFileSync(im.path).equals(readFileSync(im.path.replace(gen, again))), 'same seed, same bytes');
  const p = await data.generateRsna({ out: png, patients: 6, size: 48, seed: 3, images: 'png' });
  const r = data.loadRsna(join(png, 'train.csv'), png);
  assert.is(r.images.length, p.images);
  assert.ok(r.images.every((i) => i.path.endsWith('.png')));
  // The same image as PNG and as DICOM decodes to the same pixels (both span the full range).
  const fromPng = await data.decodeImage(r.images[0].path), fromDcm = await data.decodeImage(r.images[0].path.replace(png, gen).replace(/\.png$/, '.dcm'));
  assert.equal(Array.from(fromPng.px), Array.from(fromDcm.px));
  renameSync(r.images[0].path, r.images[0].path + '.bak');
  assert.equal(data.loadRsna(join(png, 'train.csv'), png).skipped, { 'image file missing': 1 });
});

test.run();
