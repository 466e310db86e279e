// image.test.ts: the per-sample transform (crop, antialiased bilinear resize, flips, jitter,
// blur) against hand-computed float64 values, and its invariants on seeded random images.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { data } from 'mamakit';
import { Rng } from '../helpers/index.js';

const test = suite('image transform');

/** A decoded image from float64 values in [0, 1] (16-bit), box = the whole image. */
function decoded(w: number, h: number, f: (x: number, y: number) => number): data.DecodedImage {
  const px = Uint16Array.from({ length: w * h }, (_, i) => Math.round(65535 * f(i % w, Math.floor(i / w))));
  return { px, width: w, height: h, box: [0, 0, w, h] };
}
const unit = (v: number) => v * 0.5 + 0.5; // model input [-1, 1] back to [0, 1]

test('shrinking by 2 weighs each pair of source pixels 1 3 3 1 (edges renormalised)', () => {
  const rng = new Rng(11), vals = Array.from({ length: 8 }, () => rng.next());
  const d = decoded(8, 1, (x) => vals[x]);
  // Height 1 → 1 is the identity; width 8 → 4.
  const out = data.transformImage({ ...d, box: [0, 0, 8, 1] }, { size: 4 });
  const q = (v: number) => Math.round(65535 * v) / 65535;
  const v = vals.map(q);
  // Output o is centred at 2o + 1; taps at distance 0.5 and 1.5 weigh 0.75 and 0.25 (support 2).
  const want = [(3 * v[0] + 3 * v[1] + v[2]) / 7, (v[1] + 3 * v[2] + 3 * v[3] + v[4]) / 8, (v[3] + 3 * v[4] + 3 * v[5] + v[6]) / 8, (v[5] + 3 * v[6] + 3 * v[7]) / 7];
  // Only the first row of the 4 × 4 output matters here: rows repeat the single source row.
  for (let x = 0; x < 4; x++) for (let y = 0; y < 4; y++) assert.ok(Math.abs(unit(out[y * 4 + x]) - want[x]) < 1e-6, `(${x},${y}) ${unit(out[y * 4 + x])} vs ${want[x]}`);
});

test('a constant stays constant; a ramp stays a ramp when enlarging; the crop box is honoured', () => {
  const c = data.transformImage(decoded(37, 23, () => 0.3), { size: 16 });
  for (const v of c) assert.ok(Math.abs(unit(v) - 0.3) < 1e-4);
  // Enlarging 10 → 40 px: bilinear is exact on a linear function between the outer centres.
  const ramp = data.transformImage(decoded(10, 10, (x) => 0.05 + 0.09 * x), { size: 40 });
  for (let x = 2; x < 38; x++) {
    const src = (x + 0.5) / 4 - 0.5; // the source coordinate of output x
    assert.ok(Math.abs(unit(ramp[5 * 40 + x]) - (0.05 + 0.09 * src)) < 1e-4, `x ${x}`);
  }
  // A box: only the pixels inside it are read.
  const d = decoded(20, 20, (x, y) => (x >= 5 && x < 15 && y >= 4 && y < 12 ? 0.7 : 0.1));
  const boxed = data.transformImage({ ...d, box: [5, 4, 10, 8] }, { size: 8 });
  for (const v of boxed) assert.ok(Math.abs(unit(v) - 0.7) < 1e-4);
});

test('augmentations: seeded, flips mirror, values stay in [-1, 1], blur keeps a constant', () => {
  const rng = new Rng(5), vals = Array.from({ length: 64 * 48 }, () => rng.next());
  const d = decoded(64, 48, (x, y) => vals[y * 64 + x]);
  const draw = (seed: number) => {
    let s = seed;
    return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  };
  for (let seed = 1; seed < 40; seed++) {
    const a = data.transformImage(d, { size: 24, rand: draw(seed) }), b = data.transformImage(d, { size: 24, rand: draw(seed) });
    assert.equal(a, b, 'same seed, same sample');
    for (const v of a) assert.ok(v >= -1 && v <= 1 && Number.isFinite(v));
  }
  // A draw sequence that keeps the whole box (area 1, aspect 4:3 as the box), flips left-right only, no jitter, no blur.
  const seq = (vals: number[]) => {
    let i = 0;
    return () => vals[i++ % vals.length];
  };
  const plain = data.transformImage(d, { size: 24 });
  const flipped = data.transformImage(d, { size: 24, rand: seq([1 - 1e-12, 1 - 1e-12, 0, 0, 0.1, 0.9, 0.9, 0.5, 0.9]) });
  for (let y = 0; y < 24; y++) for (let x = 0; x < 24; x++) assert.ok(Math.abs(flipped[y * 24 + x] - plain[y * 24 + 23 - x]) < 1e-6, `(${x}, ${y})`);
  const flat = decoded(30, 30, () => 0.4);
  const blurred = data.transformImage(flat, { size: 20, rand: seq([1 - 1e-12, 0.5, 0, 0, 0.9, 0.9, 0.9, 0.5, 0.1, 0.99]) });
  for (const v of blurred) assert.ok(Math.abs(unit(v) - 0.4) < 1e-4);
  assert.throws(() => data.transformImage(flat, { size: 0 }), /size must be a positive integer, got 0/);
});

test.run();
