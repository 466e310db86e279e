// image.test.ts: the per-sample transform (crop, antialiased bilinear resize, flips, jitter,
// blur) against hand-computed float64 values, and its invariants on seeded random images;
// RandomResizedCrop, ColorJitter and the blur with torchvision's semantics (MAMA.md §4).
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

/** A draw sequence, repeated. */
const seq = (vals: number[]) => {
  let i = 0;
  return () => vals[i++ % vals.length];
};
const ONE = 1 - 1e-12;
// Draws that keep the whole square (area 1, ratio 1 on the first try; corner 0, 0), no flips,
// then the jitter, grayscale and blur draws that follow.
const WHOLE = [ONE, 0.5, 0, 0, 0.9, 0.9];

test('jitter sets ColorJitter\'s probability: 0 keeps a constant image\'s level, the default 0.8 moves it', () => {
  const d = decoded(30, 30, () => 0.3);
  const draw = (seed: number) => {
    let s = seed;
    return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  };
  let moved = 0;
  for (let seed = 1; seed < 20; seed++) {
    // Crops, flips and blur keep a constant; only ColorJitter's brightness changes its level.
    for (const v of data.transformImage(d, { size: 12, rand: draw(seed), jitter: 0 })) assert.ok(Math.abs(unit(v) - 0.3) < 1e-4, `seed ${seed}: ${unit(v)}`);
    if (Math.abs(unit(data.transformImage(d, { size: 12, rand: draw(seed) })[0]) - 0.3) > 1e-3) moved++;
  }
  assert.ok(moved >= 8, `ColorJitter moved ${moved} of 19 samples`);
});

test('augmentations: seeded, values stay in [-1, 1], flips mirror, blur keeps a constant', () => {
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
  const plain = data.transformImage(d, { size: 24 });
  const flipped = data.transformImage(d, { size: 24, rand: seq([ONE, 0.5, 0, 0, 0.1, 0.9, 0.9, 0.5, 0.9]) });
  for (let y = 0; y < 24; y++) for (let x = 0; x < 24; x++) assert.ok(Math.abs(flipped[y * 24 + x] - plain[y * 24 + 23 - x]) < 1e-6, `(${x}, ${y})`);
  const flat = decoded(30, 30, () => 0.4);
  const blurred = data.transformImage(flat, { size: 20, rand: seq([...WHOLE, 0.9, 0.5, 0.1, 0.99]) });
  for (const v of blurred) assert.ok(Math.abs(unit(v) - 0.4) < 1e-4);
  assert.throws(() => data.transformImage(flat, { size: 0 }), /size must be a positive integer, got 0/);
});

test('RandomResizedCrop works on the square resize: a tall breast can be covered whole', () => {
  // A tall box (30 × 90): the crop is drawn on the 24 × 24 square, so area 1 and ratio 1 keep all of it.
  const rng = new Rng(8), vals = Array.from({ length: 40 * 100 }, () => rng.next());
  const d = { ...decoded(40, 100, (x, y) => vals[y * 40 + x]), box: [5, 6, 30, 90] as [number, number, number, number] };
  const plain = data.transformImage(d, { size: 24 });
  const whole = data.transformImage(d, { size: 24, rand: seq([...WHOLE, 0.9, 0.5, 0.9]) });
  for (let i = 0; i < plain.length; i++) assert.ok(Math.abs(whole[i] - plain[i]) < 1e-6, `pixel ${i}: ${whole[i]} vs ${plain[i]}`);
});

test('RandomResizedCrop: accepted boxes follow the scale and ratio bounds, log-uniform ratio; the fallback', () => {
  const S = 32, r = new Rng(21), rand = () => r.next();
  let whole = 0, tallFull = 0, logSum = 0;
  const n = 20000;
  for (let k = 0; k < n; k++) {
    const [left, top, w, h] = data.randomResizedCrop(S, S, rand);
    assert.ok(w >= 1 && h >= 1 && left >= 0 && top >= 0 && left + w <= S && top + h <= S, `${[left, top, w, h]}`);
    // Rounding each side to whole pixels moves area and ratio by at most half a pixel per side.
    assert.ok(w * h >= 0.1 * S * S - (w + h) / 2 - 0.25 && (w - 0.5) * (h - 0.5) <= S * S, `area ${w}×${h}`);
    assert.ok((w - 0.5) / (h + 0.5) <= 4 / 3 && (w + 0.5) / (h - 0.5) >= 3 / 4, `ratio ${w}/${h}`);
    if (w === S && h === S) whole++;
    if (h === S && w < S) tallFull++;
    logSum += Math.log(w / h);
  }
  assert.ok(whole > 0 && tallFull > 0, `${whole} whole, ${tallFull} tall full-height crops`);
  assert.ok(Math.abs(logSum / n) < 0.01, `mean log ratio ${logSum / n}`); // log-uniform over a symmetric range
  // Ten rejected tries (area 1, ratio 3/4: too tall for the square), then the centre crop:
  // the whole square, or the ratio clamped to the range on a wide or tall image.
  let draws = 0;
  const reject = () => (draws++ % 2 === 0 ? ONE : 0);
  assert.equal(data.randomResizedCrop(S, S, reject), [0, 0, S, S]);
  assert.is(draws, 20);
  assert.equal(data.randomResizedCrop(100, 40, reject), [23, 0, 53, 40]); // 100 / 40 > 4/3: h 40, w round(40 · 4/3)
  assert.equal(data.randomResizedCrop(40, 100, reject), [0, 23, 40, 53]); // 40 / 100 < 3/4: w 40, h round(40 / (3/4))
});

test('ColorJitter: contrast blends with the image mean, brightness scales, both clamp', () => {
  // A known image: a ramp 0 … 0.9 across 10 columns; mean 0.45.
  const d = decoded(10, 10, (x) => 0.1 * x);
  const plain = Array.from(data.transformImage(d, { size: 10 }), unit);
  const mean = plain.reduce((a, b) => a + b, 0) / plain.length;
  // Jitter applied (0.1 < 0.8); order drawn as identity (brightness, contrast, saturation, hue);
  // brightness 0.2 + 1.6 · 0.5 = 1; contrast 0.2 + 1.6 · 0.25 = 0.6; no blur.
  const jit = Array.from(data.transformImage(d, { size: 10, rand: seq([...WHOLE, 0.1, 0.99, 0.99, 0.99, 0.5, 0.25, 0.5, 0.5, 0.5, 0.9]) }), unit);
  for (let i = 0; i < plain.length; i++) assert.ok(Math.abs(jit[i] - (0.6 * plain[i] + 0.4 * mean)) < 1e-5, `pixel ${i}: ${jit[i]}`);
  // Brightness 1.8 alone (contrast 1): scaled and clamped at 1.
  const bright = Array.from(data.transformImage(d, { size: 10, rand: seq([...WHOLE, 0.1, 0.99, 0.99, 0.99, 1, 0.5, 0.5, 0.5, 0.5, 0.9]) }), unit);
  for (let i = 0; i < plain.length; i++) assert.ok(Math.abs(bright[i] - Math.min(1, 1.8 * plain[i])) < 1e-5, `pixel ${i}: ${bright[i]}`);
});

test('Gaussian blur: kernel 7, reflect padding, against a float64 reference', () => {
  const n = 9, rng = new Rng(3), img = Float64Array.from({ length: n * n }, () => rng.next());
  for (const sigma of [0.1, 0.7, 2]) {
    const k = Array.from({ length: 7 }, (_, i) => Math.exp(-0.5 * ((i - 3) / sigma) ** 2));
    const ks = k.reduce((a, b) => a + b, 0);
    const refl = (i: number) => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);
    const tmp = new Float64Array(n * n), want = new Float64Array(n * n);
    for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) for (let t = 0; t < 7; t++) tmp[y * n + x] += (k[t] / ks) * img[y * n + refl(x + t - 3)];
    for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) for (let t = 0; t < 7; t++) want[y * n + x] += (k[t] / ks) * tmp[refl(y + t - 3) * n + x];
    const got = Float32Array.from(img);
    data.gaussianBlur(got, n, sigma);
    for (let i = 0; i < n * n; i++) assert.ok(Math.abs(got[i] - want[i]) < 2e-6, `σ ${sigma}, pixel ${i}: ${got[i]} vs ${want[i]}`);
  }
});

test.run();
