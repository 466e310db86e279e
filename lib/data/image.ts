// image.ts: mammogram images to model input (MAMA.md §4): decode (PNG or JPEG, 8 or 16 bit,
// through sharp; DICOM through dicom-parser: uncompressed pixel data, linear scaling,
// MONOCHROME1 inverted) and find the breast's box by Otsu's threshold, once per image
// (decodeImage; loader workers cache the result); then, per sample, resize the box to
// size × size and normalise with mean 0.5 and std 0.5 to [-1, 1] (transformImage). Training
// adds the authors' seeded augmentation on that square (RandomResizedCrop, flips, ColorJitter,
// grayscale, blur, with torchvision's semantics; MAMA.md §4). The per-sample transform is plain
// array code: a second sharp pipeline per sample cost ~3 ms of fixed overhead on a 112 px image
// and its thread pool competed with the training threads.
// A file that cannot be decoded throws an Error naming it (loaders skip and count).
import dicomParser from 'dicom-parser';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { shuffle } from './rand.js';

const UNCOMPRESSED = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.2']);

/** A DICOM file's pixels scaled linearly to 16 bit (MONOCHROME1 inverted). */
export function decodeDicom(bytes: Uint8Array, what = 'DICOM'): { px: Uint16Array; width: number; height: number } {
  let ds: dicomParser.DataSet;
  try {
    ds = dicomParser.parseDicom(bytes);
  } catch (e) {
    throw new Error(`${what}: not a readable DICOM file (${(e as Error).message ?? e})`);
  }
  const ts = ds.string('x00020010') ?? '1.2.840.10008.1.2';
  if (!UNCOMPRESSED.has(ts)) throw new Error(`${what}: transfer syntax ${ts} (compressed) is not supported`);
  const rows = ds.uint16('x00280010') ?? 0, cols = ds.uint16('x00280011') ?? 0, bits = ds.uint16('x00280100') ?? 0;
  const signed = ds.uint16('x00280103') === 1, spp = ds.uint16('x00280002') ?? 1, photometric = (ds.string('x00280004') ?? '').trim();
  const el = ds.elements.x7fe00010;
  if (!rows || !cols) throw new Error(`${what}: no image size (rows ${rows}, columns ${cols})`);
  if (spp !== 1 || !photometric.startsWith('MONOCHROME')) throw new Error(`${what}: ${photometric || 'unknown'} with ${spp} samples per pixel is not a mammogram`);
  if (bits !== 8 && bits !== 16) throw new Error(`${what}: ${bits} bits allocated per pixel is not supported`);
  if (!el || el.length < rows * cols * (bits / 8) || el.dataOffset + rows * cols * (bits / 8) > bytes.length)
    throw new Error(`${what}: pixel data too short for ${rows}×${cols} at ${bits} bits (truncated file?)`);
  const n = rows * cols, raw = new Float64Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset + el.dataOffset, n * (bits / 8));
  const bigEndian = ts === '1.2.840.10008.1.2.2';
  for (let i = 0; i < n; i++)
    raw[i] = bits === 8 ? (signed ? dv.getInt8(i) : dv.getUint8(i)) : signed ? dv.getInt16(2 * i, !bigEndian) : dv.getUint16(2 * i, !bigEndian);
  let lo = Infinity, hi = -Infinity;
  for (const v of raw) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  const px = new Uint16Array(n), scale = hi > lo ? 65535 / (hi - lo) : 0, invert = photometric === 'MONOCHROME1';
  for (let i = 0; i < n; i++) {
    const v = Math.round((raw[i] - lo) * scale);
    px[i] = invert ? 65535 - v : v;
  }
  return { px, width: cols, height: rows };
}

export interface ImageOptions {
  size: number;
  /** training augmentation, drawn from rand() (undefined: the test transform) */
  rand?: () => number;
  /** the probability of ColorJitter in the augmentation (default 0.8, the authors') */
  jitter?: number;
}

/** Otsu's threshold of a 256-bin histogram. */
export function otsu(hist: ArrayLike<number>): number {
  let total = 0, sum = 0;
  for (let i = 0; i < hist.length; i++) (total += hist[i]), (sum += i * hist[i]);
  let wB = 0, sB = 0, best = 0, thr = 0;
  for (let t = 0; t < hist.length; t++) {
    wB += hist[t];
    if (!wB) continue;
    const wF = total - wB;
    if (!wF) break;
    sB += t * hist[t];
    const between = wB * wF * (sB / wB - (sum - sB) / wF) ** 2;
    if (between > best) (best = between), (thr = t);
  }
  return thr;
}

/** A decoded image: 16-bit pixels and the breast's bounding box (Otsu). */
export interface DecodedImage {
  px: Uint16Array;
  width: number;
  height: number;
  /** [left, top, width, height] */
  box: [number, number, number, number];
}

/** Decodes a PNG, JPEG or DICOM file and finds the breast's box. */
export async function decodeImage(path: string): Promise<DecodedImage> {
  let px: Uint16Array, w: number, h: number;
  if (/\.dcm$/i.test(path)) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch (e) {
      throw new Error(`image ${path}: cannot decode it (${(e as Error).message})`);
    }
    ({ px, width: w, height: h } = decodeDicom(bytes, `image ${path}`));
  } else {
    try {
      const r = await sharp(path, { failOn: 'error' }).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
      if (r.info.channels !== 1) throw new Error(`${r.info.channels} channels after conversion to grey`);
      (w = r.info.width), (h = r.info.height), (px = new Uint16Array(r.data.buffer, r.data.byteOffset, w * h));
    } catch (e) {
      throw new Error(`image ${path}: cannot decode it (${(e as Error).message})`);
    }
  }
  // Otsu on the 8-bit histogram, then the bounding box of the breast above it.
  const hist = new Float64Array(256);
  for (const v of px) hist[v >> 8]++;
  const thr = (otsu(hist) + 1) << 8;
  let x0 = w, x1 = -1, y0 = h, y1 = -1;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      if (px[y * w + x] >= thr) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
  if (x1 < x0) (x0 = 0), (x1 = w - 1), (y0 = 0), (y1 = h - 1); // a blank image: keep it whole
  return { px, width: w, height: h, box: [x0, y0, x1 - x0 + 1, y1 - y0 + 1] };
}

/**
 * Resampling weights from a source span [start, start + len) to n outputs: a triangle filter
 * widened by the scale when shrinking (antialiased bilinear, as PIL and torchvision's antialias),
 * the span's edge pixels clamped (as cropping first, then resizing). Output o reads taps
 * first[o] … first[o] + taps − 1 with weights w[o·taps …] (zero-padded).
 */
function resampleWeights(start: number, len: number, n: number) {
  const scale = len / n, support = Math.max(1, scale), taps = Math.min(len, Math.ceil(2 * support) + 1);
  const first = new Int32Array(n), w = new Float32Array(n * taps);
  for (let o = 0; o < n; o++) {
    const centre = start + (o + 0.5) * scale;
    const lo = Math.min(start + len - taps, Math.max(start, Math.floor(centre - support)));
    let sum = 0;
    for (let t = 0; t < taps; t++) sum += w[o * taps + t] = Math.max(0, 1 - Math.abs(lo + t + 0.5 - centre) / support);
    for (let t = 0; t < taps; t++) w[o * taps + t] /= sum;
    first[o] = lo;
  }
  return { first, w, taps };
}

/** Python's round(): halves to even (torchvision's crop sizes go through it). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * torchvision's RandomResizedCrop.get_params on a width × height image: up to ten tries of an
 * area fraction uniform in [0.1, 1] and an aspect w/h log-uniform in [3/4, 4/3], w = round(√(area·ratio)),
 * h = round(√(area/ratio)), kept if 0 < w ≤ width and 0 < h ≤ height (then its corner, uniform);
 * else the centre crop with the aspect clamped to the range. Returns [left, top, w, h].
 */
export function randomResizedCrop(width: number, height: number, rand: () => number): [number, number, number, number] {
  const area = width * height, lo = Math.log(3 / 4), hi = Math.log(4 / 3);
  for (let t = 0; t < 10; t++) {
    const target = area * (0.1 + 0.9 * rand()), ratio = Math.exp(lo + (hi - lo) * rand());
    const w = roundHalfEven(Math.sqrt(target * ratio)), h = roundHalfEven(Math.sqrt(target / ratio));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = Math.floor(rand() * (height - h + 1)), left = Math.floor(rand() * (width - w + 1));
      return [left, top, w, h];
    }
  }
  const inRatio = width / height;
  let w = width, h = height;
  if (inRatio < 3 / 4) h = roundHalfEven(w / (3 / 4));
  else if (inRatio > 4 / 3) w = roundHalfEven(h * (4 / 3));
  return [Math.floor((width - w) / 2), Math.floor((height - h) / 2), w, h];
}

/**
 * torchvision's GaussianBlur of an n × n image in place: a kernel of 7 taps at −3 … 3,
 * exp(−x²/2σ²) normalised, applied along rows then columns with reflect padding (the edge
 * pixel not repeated).
 */
export function gaussianBlur(img: Float32Array, n: number, sigma: number): void {
  const R = 3, k = new Float64Array(2 * R + 1);
  let sum = 0;
  for (let i = -R; i <= R; i++) sum += k[i + R] = Math.exp(-0.5 * (i / sigma) ** 2);
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  // Source index of padded position i − R, reflected (repeatedly, for images under 4 px).
  const src = new Int32Array(n + 2 * R);
  for (let i = 0; i < src.length; i++) {
    let j = i - R;
    while (j < 0 || j >= n) j = n === 1 ? 0 : j < 0 ? -j : 2 * (n - 1) - j;
    src[i] = j;
  }
  const line = new Float32Array(n);
  for (const [stride, step] of [[n, 1], [1, n]]) {
    for (let a = 0; a < n; a++) {
      const base = a * stride;
      for (let i = 0; i < n; i++) line[i] = img[base + i * step];
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let t = 0; t <= 2 * R; t++) s += k[t] * line[src[i + t]];
        img[base + i * step] = s;
      }
    }
  }
}

/**
 * Resizes the span [left, left + cw) × [top, top + ch) of a w-wide image to S × S (antialiased
 * bilinear; rows first, then columns), values multiplied by `scale`.
 */
function resize(px: ArrayLike<number>, w: number, [left, top, cw, ch]: readonly number[], S: number, scale: number): Float32Array {
  const hx = resampleWeights(left, cw, S), hy = resampleWeights(top, ch, S), tx = hx.taps, ty = hy.taps;
  const rows = new Float32Array(ch * S);
  for (let y = 0; y < ch; y++) {
    const src = (top + y) * w;
    for (let x = 0; x < S; x++) {
      const f = src + hx.first[x], o = x * tx;
      let s = 0;
      for (let t = 0; t < tx; t++) s += hx.w[o + t] * px[f + t];
      rows[y * S + x] = s * scale;
    }
  }
  const out = new Float32Array(S * S);
  for (let y = 0; y < S; y++) {
    const f = hy.first[y] - top, o = y * ty, acc = out.subarray(y * S, (y + 1) * S);
    for (let t = 0; t < ty; t++) {
      const wt = hy.w[o + t], row = (f + t) * S;
      for (let x = 0; x < S; x++) acc[x] += wt * rows[row + x];
    }
  }
  return out;
}

/**
 * ColorJitter(brightness 0.8, contrast 0.8, saturation 0.8, hue 0.2) as torchvision applies it to
 * a one-channel float image, in place: its four transforms in a random order, each factor drawn
 * first (brightness, contrast, saturation uniform in [0.2, 1.8], hue in [−0.2, 0.2]). Brightness
 * scales, contrast blends with the image's mean at that point; both clamp to [0, 1]. Saturation
 * and hue leave a grayscale image as it is (torchvision returns one channel unchanged); they are
 * drawn all the same, so the draws match the authors' transform.
 */
function colorJitter(img: Float32Array, rand: () => number): void {
  const order = shuffle([0, 1, 2, 3], rand);
  const brightness = 0.2 + 1.6 * rand(), contrast = 0.2 + 1.6 * rand();
  rand(), rand(); // saturation, hue
  for (const op of order) {
    if (op === 0) for (let i = 0; i < img.length; i++) img[i] = Math.min(1, Math.max(0, brightness * img[i]));
    if (op === 1) {
      let mean = 0;
      for (const v of img) mean += v;
      mean /= img.length;
      for (let i = 0; i < img.length; i++) img[i] = Math.min(1, Math.max(0, contrast * img[i] + (1 - contrast) * mean));
    }
  }
}

// The box resized to the square is the same for every sample of an image: kept per decoded image
// (a loader worker's cache holds those), it leaves only the crop's resize to each training sample.
const squares = new WeakMap<DecodedImage, { size: number; px: Float32Array }>();
function squareOf(d: DecodedImage, S: number): Float32Array {
  let sq = squares.get(d);
  if (sq?.size !== S) squares.set(d, (sq = { size: S, px: resize(d.px, d.width, d.box, S, 1 / 65535) }));
  return sq.px;
}

/**
 * One sample of a decoded image: a [size × size] Float32Array in [-1, 1]. The test transform is
 * the Otsu box resized to a square (aspect not kept); training then applies the authors'
 * transform to that square (MAMA.md §4), in their order: RandomResizedCrop back to size × size,
 * horizontal and vertical flips (p 0.5 each), ColorJitter (p 0.8), random grayscale (p 0.2, a
 * no-op on one channel; its draw is kept), Gaussian blur (kernel 7, σ uniform in [0.1, 2], p 0.4).
 */
export function transformImage(d: DecodedImage, o: ImageOptions): Float32Array {
  const S = o.size, r = o.rand;
  if (!(Number.isInteger(S) && S >= 1)) throw new RangeError(`image: size must be a positive integer, got ${S}`);
  let out = squareOf(d, S);
  if (!r) out = Float32Array.from(out);
  else {
    const crop = resize(out, S, randomResizedCrop(S, S, r), S, 1);
    const flipX = r() < 0.5, flipY = r() < 0.5;
    out = new Float32Array(S * S);
    for (let y = 0; y < S; y++)
      for (let x = 0; x < S; x++) out[(flipY ? S - 1 - y : y) * S + (flipX ? S - 1 - x : x)] = crop[y * S + x];
    if (r() < (o.jitter ?? 0.8)) colorJitter(out, r);
    r(); // grayscale
    if (r() < 0.4) gaussianBlur(out, S, 0.1 + 1.9 * r());
  }
  for (let i = 0; i < out.length; i++) out[i] = (out[i] - 0.5) / 0.5;
  return out;
}

/** Loads one image as a [size × size] Float32Array in [-1, 1]. */
export async function loadImage(path: string, o: ImageOptions): Promise<Float32Array> {
  return transformImage(await decodeImage(path), o);
}
