// image.ts: mammogram images to model input (MAMA.md §4): decode (PNG or JPEG, 8 or 16 bit,
// through sharp; DICOM through dicom-parser: uncompressed pixel data, linear scaling,
// MONOCHROME1 inverted) and find the breast's box by Otsu's threshold, once per image
// (decodeImage; loader workers cache the result); then, per sample, crop, resize to
// size × size, normalise with mean 0.5 and std 0.5 to [-1, 1] (transformImage). Training adds
// a seeded random resized crop (scale 0.1–1), flips, colour jitter, grayscale and blur. The
// per-sample transform is plain array code: a second sharp pipeline per sample cost ~3 ms of
// fixed overhead on a 112 px image and its thread pool competed with the training threads.
// A file that cannot be decoded throws an Error naming it (loaders skip and count).
import dicomParser from 'dicom-parser';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';

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

/** Separable Gaussian blur of an n × n image in place (edges clamped). */
function gaussianBlur(img: Float32Array, n: number, sigma: number): void {
  const r = Math.min(n - 1, Math.max(1, Math.ceil(3 * sigma))), k = new Float32Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  // Each line copied into a buffer padded by r clamped pixels on both sides.
  const line = new Float32Array(n + 2 * r);
  for (const [stride, step] of [[n, 1], [1, n]]) {
    for (let a = 0; a < n; a++) {
      const base = a * stride;
      for (let i = 0; i < n; i++) line[r + i] = img[base + i * step];
      for (let i = 0; i < r; i++) (line[i] = line[r]), (line[r + n + i] = line[r + n - 1]);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let t = 0; t <= 2 * r; t++) s += k[t] * line[i + t];
        img[base + i * step] = s;
      }
    }
  }
}

/** One sample of a decoded image: a [size × size] Float32Array in [-1, 1]. */
export function transformImage(d: DecodedImage, o: ImageOptions): Float32Array {
  const { px, width: w } = d, S = o.size;
  if (!(Number.isInteger(S) && S >= 1)) throw new RangeError(`image: size must be a positive integer, got ${S}`);
  let [left, top, cw, ch] = d.box;
  const r = o.rand;
  if (r) {
    // Random resized crop: an area fraction in [0.1, 1] and aspect in [3/4, 4/3] of the box.
    const area = (0.1 + 0.9 * r()) * cw * ch, aspect = Math.exp(Math.log(3 / 4) + r() * Math.log(16 / 9));
    const nw = Math.max(1, Math.min(cw, Math.round(Math.sqrt(area * aspect)))), nh = Math.max(1, Math.min(ch, Math.round(Math.sqrt(area / aspect))));
    left += Math.floor(r() * (cw - nw + 1)), top += Math.floor(r() * (ch - nh + 1)), (cw = nw), (ch = nh);
  }
  const flipX = !!r && r() < 0.5, flipY = !!r && r() < 0.5;
  // Colour jitter (p 0.8): brightness and contrast ±0.4 as a linear map on [0, 1], clamped.
  let gain = 1, offset = 0;
  if (r && r() < 0.8) {
    const contrast = 0.6 + 0.8 * r(), brightness = 0.6 + 0.8 * r();
    (gain = contrast * brightness), (offset = 0.5 * (1 - contrast) * brightness);
  }
  if (r) r(); // grayscale (p 0.2) changes nothing on one channel; its draw keeps the count fixed
  const sigma = r && r() < 0.4 ? 0.3 + 1.7 * r() : 0;
  // Resize: rows first (ch source rows → S columns each), then columns.
  const hx = resampleWeights(left, cw, S), hy = resampleWeights(top, ch, S), tx = hx.taps, ty = hy.taps;
  const rows = new Float32Array(ch * S);
  for (let y = 0; y < ch; y++) {
    const src = (top + y) * w;
    for (let x = 0; x < S; x++) {
      const f = src + hx.first[x], o = x * tx;
      let s = 0;
      for (let t = 0; t < tx; t++) s += hx.w[o + t] * px[f + t];
      rows[y * S + x] = s * (1 / 65535);
    }
  }
  const out = new Float32Array(S * S), acc = new Float32Array(S);
  for (let y = 0; y < S; y++) {
    const f = hy.first[y] - top, o = y * ty, dy = flipY ? S - 1 - y : y;
    acc.fill(0);
    for (let t = 0; t < ty; t++) {
      const wt = hy.w[o + t], row = (f + t) * S;
      for (let x = 0; x < S; x++) acc[x] += wt * rows[row + x];
    }
    for (let x = 0; x < S; x++) out[dy * S + (flipX ? S - 1 - x : x)] = Math.min(1, Math.max(0, gain * acc[x] + offset));
  }
  if (sigma) gaussianBlur(out, S, sigma);
  for (let i = 0; i < out.length; i++) out[i] = (out[i] - 0.5) / 0.5;
  return out;
}

/** Loads one image as a [size × size] Float32Array in [-1, 1]. */
export async function loadImage(path: string, o: ImageOptions): Promise<Float32Array> {
  return transformImage(await decodeImage(path), o);
}
