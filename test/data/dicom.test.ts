// dicom.test.ts: DICOM files the test writes (explicit VR little endian): MONOCHROME1 is
// inverted and pixels are scaled linearly; the image path reads .dcm like PNG; compressed,
// truncated and random bytes give named errors, never a crash.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data } from 'mamakit';
import { Rng } from '../helpers/index.js';

const test = suite('dicom');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-dcm-'));

function element(group: number, el: number, vr: string, value: Buffer): Buffer {
  const long = ['OB', 'OW', 'UN', 'SQ', 'UT'].includes(vr);
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(group, 0), head.writeUInt16LE(el, 2), head.write(vr, 4, 'latin1');
  if (long) head.writeUInt32LE(value.length, 8);
  else head.writeUInt16LE(value.length, 6);
  return Buffer.concat([head, value]);
}
const us = (v: number) => Buffer.from(Uint16Array.of(v).buffer);
const str = (s: string) => Buffer.from(s.length % 2 ? s + (s.startsWith('1.') ? '\0' : ' ') : s, 'latin1');

function dicom(rows: number, cols: number, pixels: Uint16Array, photometric: string, ts = '1.2.840.10008.1.2.1'): Buffer {
  return Buffer.concat([
    Buffer.alloc(128), Buffer.from('DICM'),
    element(0x0002, 0x0010, 'UI', str(ts)),
    element(0x0028, 0x0002, 'US', us(1)), element(0x0028, 0x0004, 'CS', str(photometric)),
    element(0x0028, 0x0010, 'US', us(rows)), element(0x0028, 0x0011, 'US', us(cols)),
    element(0x0028, 0x0100, 'US', us(16)), element(0x0028, 0x0101, 'US', us(12)), element(0x0028, 0x0103, 'US', us(0)),
    element(0x7fe0, 0x0010, 'OW', Buffer.from(pixels.buffer)),
  ]);
}

test('MONOCHROME2 scales linearly; MONOCHROME1 is inverted', () => {
  const px = Uint16Array.of(100, 600, 1100, 4095, 100, 600);
  const m2 = data.decodeDicom(dicom(2, 3, px, 'MONOCHROME2'));
  assert.is(m2.width, 3), assert.is(m2.height, 2);
  assert.equal(Array.from(m2.px), [0, 8202, 16404, 65535, 0, 8202]);
  const m1 = data.decodeDicom(dicom(2, 3, px, 'MONOCHROME1'));
  assert.equal(Array.from(m1.px), [65535, 57333, 49131, 0, 65535, 57333]);
});

test('loadImage reads .dcm files through the same crop and resize', async () => {
  const S = 40, px = new Uint16Array(S * S);
  for (let y = 8; y < 32; y++) for (let x = 0; x < 24; x++) px[y * S + x] = 3000 + ((x * 7 + y * 3) % 50);
  const path = join(dir, 'a.dcm');
  writeFileSync(path, dicom(S, S, px, 'MONOCHROME2'));
  const img = await data.loadImage(path, { size: 16 });
  assert.is(img.length, 256);
  assert.ok(img.every((v) => v >= -1 && v <= 1));
  assert.ok(img.filter((v) => v > 0.5).length > 128, 'the crop keeps the breast region');
});

test('compressed, truncated and random bytes are named errors', () => {
  const px = new Uint16Array(16).fill(7);
  assert.throws(() => data.decodeDicom(dicom(4, 4, px, 'MONOCHROME2', '1.2.840.10008.1.2.4.90'), 'x.dcm'), /x.dcm: transfer syntax 1.2.840.10008.1.2.4.90 \(compressed\) is not supported/);
  assert.throws(() => data.decodeDicom(dicom(4, 4, px, 'RGB'), 'x.dcm'), /x.dcm: RGB with 1 samples per pixel is not a mammogram/);
  const good = dicom(4, 4, px, 'MONOCHROME2');
  assert.throws(() => data.decodeDicom(good.subarray(0, good.length - 8), 'x.dcm'), /x.dcm: (pixel data too short|not a readable DICOM file)/);
  const rng = new Rng(4);
  for (let i = 0; i < 200; i++) {
    const b = Buffer.from(good);
    const n = rng.int(1, 30);
    for (let k = 0; k < n; k++) b[rng.int(0, b.length - 1)] = rng.int(0, 255);
    const cut = b.subarray(0, rng.int(0, b.length));
    try {
      data.decodeDicom(cut, 'fuzz.dcm');
    } catch (e) {
      assert.ok(e instanceof Error && e.message.startsWith('fuzz.dcm: '), String(e));
    }
  }
});

test.run();
