// synth.ts: synthetic screening studies in EMBED's format, so that every part of the pipeline
// runs without the access-controlled data. One study = one patient's four images (left and
// right × CC and MLO), written as 16-bit grayscale PNGs with EMBED-format metadata.csv and
// clinical.csv. How labels show in the pixels (see README, "Synthetic studies"):
//   - density 1–4: the fraction of the breast covered by bright fibroglandular texture
//     (about 10 / 30 / 55 / 80 %) — learnable from pixels;
//   - BI-RADS: negatives (1) show nothing; benign (2) and probably benign (3) a round, smooth
//     mass; incomplete (0) a faint asymmetric density; suspicious (4) an irregular mass,
//     highly suggestive (5) and known malignancy (6) a spiculated mass with clustered
//     calcifications — on both views of the affected side only, small and partly hidden by
//     dense tissue, so this task is meant to be harder than density.
// generateRsna writes the same kind of images in RSNA Screening Mammography's Kaggle layout
// (train.csv, train_images/<patient>/<image>.dcm or .png), cancer shown as a large bright
// spiculated mass with calcifications on both views of one breast. Identical output for the same seed.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { mulberry } from './rand.js';

export interface SynthOptions {
  out: string;
  studies: number;
  size: number;
  seed: number;
}

// Screening-like frequencies.
const DENSITY_P = [0.1, 0.43, 0.39, 0.08];
const BIRADS_P: Array<[string, number]> = [['N', 0.7], ['B', 0.14], ['A', 0.08], ['P', 0.03], ['S', 0.03], ['M', 0.012], ['K', 0.008]];
const RACES = ['White', 'African American  or Black', 'Asian', 'Native Hawaiian or Other Pacific Islander', 'Unknown, Unavailable or Unreported'];
const ETHNIC = ['Non-Hispanic or Latino', 'Hispanic or Latino', 'Unknown']; // "Unknown" reads as Non-Hispanic (ethnicityOf)

/** mulberry32: a fast, reproducible 32-bit generator, one per study. */
class Rand {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry(seed);
  }
  pick<T>(table: Array<[T, number]>): T {
    let u = this.next();
    for (const [v, p] of table) if ((u -= p) < 0) return v;
    return table[table.length - 1][0];
  }
  normal(): number {
    return Math.sqrt(-2 * Math.log(this.next() || 1e-12)) * Math.cos(2 * Math.PI * this.next());
  }
}

// Smooth noise: a coarse random grid, bilinearly upsampled, two octaves.
function texture(S: number, r: Rand): Float32Array {
  const out = new Float32Array(S * S);
  for (const [g, w] of [[8, 0.65], [24, 0.35]] as const) {
    const grid = new Float32Array((g + 1) * (g + 1)).map(() => r.next());
    for (let y = 0; y < S; y++) {
      const fy = (y / S) * g, y0 = Math.floor(fy), ty = fy - y0;
      for (let x = 0; x < S; x++) {
        const fx = (x / S) * g, x0 = Math.floor(fx), tx = fx - x0;
        const a = grid[y0 * (g + 1) + x0], b = grid[y0 * (g + 1) + x0 + 1], c = grid[(y0 + 1) * (g + 1) + x0], d = grid[(y0 + 1) * (g + 1) + x0 + 1];
        out[y * S + x] += w * ((a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty);
      }
    }
  }
  return out;
}

interface Finding {
  kind: 'none' | 'faint' | 'round' | 'irregular' | 'spiculated';
  calcs: boolean;
  /** position in breast coordinates: depth from the chest wall (0–1) and height (−1–1) */
  depth: number;
  height: number;
  radius: number;
  spikes: number[];
  /** the mass's brightness (default 0.08 faint, else 0.3) */
  amp?: number;
}

const FINDING: Record<string, Finding['kind']> = { N: 'none', A: 'faint', B: 'round', P: 'round', S: 'irregular', M: 'spiculated', K: 'spiculated' };

// One image, values in [0, 1]: the breast as a half-ellipse from the chest wall (x = 0; the
// right breast is mirrored), fibroglandular texture covering `fraction` of it, the pectoral
// muscle on MLO, and the finding.
function render(S: number, view: 'CC' | 'MLO', mirror: boolean, fraction: number, f: Finding, r: Rand): Float32Array {
  const img = new Float32Array(S * S), tex = texture(S, r);
  // The threshold that leaves `fraction` of the texture above it (a 1024-bin histogram; the
  // texture lies in [0, 1]).
  const hist = new Uint32Array(1024);
  for (const t of tex) hist[Math.min(1023, Math.floor(t * 1024))]++;
  let thr = 1, above = 0;
  for (let b = 1023; b >= 0 && above < fraction * tex.length; b--) (above += hist[b]), (thr = b / 1024);
  const ry = 0.42 + 0.06 * r.next(), rx = 0.62 + 0.12 * r.next(), cy = 0.5 + 0.04 * (r.next() - 0.5);
  const fx = f.depth * rx * 0.8, fy = cy + f.height * ry * 0.6;
  const calcs = f.calcs ? Array.from({ length: 6 + Math.floor(r.next() * 6) }, () => [fx + 0.03 * r.normal(), fy + 0.03 * r.normal()]) : [];
  for (let y = 0; y < S; y++)
    for (let xi = 0; xi < S; xi++) {
      const x = mirror ? S - 1 - xi : xi;
      const u = x / S, v = y / S;
      const e = (u / rx) ** 2 + ((v - cy) / ry) ** 2;
      if (e > 1) continue;
      const edge = Math.min(1, (1 - e) * 8); // skin line fades out
      let val = 0.28 + 0.05 * tex[y * S + xi];
      if (tex[y * S + xi] > thr) val += 0.22 + 0.1 * (tex[y * S + xi] - thr);
      if (view === 'MLO' && u < 0.35 * (1 - v / 0.55)) val = 0.75 + 0.05 * tex[y * S + xi]; // pectoral muscle
      if (f.kind !== 'none' && Math.abs(u - fx) < 3 * f.radius && Math.abs(v - fy) < 3 * f.radius) {
        const dx = u - fx, dy = v - fy, d = Math.hypot(dx, dy), a = Math.atan2(dy, dx);
        let rr = f.radius;
        if (f.kind === 'irregular' || f.kind === 'spiculated') rr *= 1 + 0.25 * Math.sin(3 * a + f.spikes[0]) + 0.15 * Math.sin(5 * a + f.spikes[1]);
        const amp = f.amp ?? (f.kind === 'faint' ? 0.08 : 0.3);
        if (d < rr) val += amp * (1 - (d / rr) ** 2);
        if (f.kind === 'spiculated') for (const s of f.spikes) {
          const da = Math.abs(((a - s + 3 * Math.PI) % (2 * Math.PI)) - Math.PI);
          if (d > rr && d < rr * 2.6 && da < 0.04) val += 0.18 * (1 - (d - rr) / (rr * 1.6));
        }
      }
      for (const [px, py] of calcs) if (Math.abs(u - px) < 0.01 && Math.hypot(u - px, v - py) < 1.2 / S + 0.004) val += 0.45;
      img[y * S + xi] = Math.min(1, val * edge + 0.02 * r.normal() * edge);
    }
  return img;
}

function csvRow(cells: Array<string | number>): string {
  return cells.map((c) => (/[",\n]/.test(String(c)) ? `"${String(c).replace(/"/g, '""')}"` : String(c))).join(',');
}

/** Writes opts.studies studies under opts.out (images/, metadata.csv, clinical.csv). */
export async function generateStudies(opts: SynthOptions): Promise<{ images: number; seconds: number }> {
  const t0 = performance.now();
  const S = opts.size;
  mkdirSync(join(opts.out, 'images'), { recursive: true });
  const meta = [csvRow(['empi_anon', 'acc_anon', 'anon_dicom_path', 'FinalImageType', 'ImageLateralityFinal', 'ViewPosition'])];
  const clin = [csvRow(['empi_anon', 'acc_anon', 'side', 'tissueden', 'asses', 'StudyDescription', 'age_at_study', 'RACE_DESC', 'ETHNIC_GROUP_DESC', 'massshape', 'massdens', 'calcfind', 'calcdistri'])];
  const writes: Array<Promise<unknown>> = [];
  for (let i = 0; i < opts.studies; i++) {
    const r = new Rand((opts.seed * 1_000_003 + i) >>> 0);
    const patient = `SYN${String(opts.seed).padStart(3, '0')}${String(i).padStart(6, '0')}`, study = `ACC${patient.slice(3)}`;
    const density = 1 + r.pick(DENSITY_P.map((p, k) => [k, p] as [number, number]));
    const letter = r.pick(BIRADS_P);
    const affected = r.next() < 0.5 ? 'L' : 'R';
    const age = 40 + Math.floor(r.next() * 40);
    const race = RACES[Math.floor(r.next() * RACES.length)], ethnic = ETHNIC[Math.floor(r.next() * ETHNIC.length)];
    const kind = FINDING[letter];
    const finding: Finding = {
      kind, calcs: letter === 'M' || letter === 'K', depth: 0.35 + 0.45 * r.next(), height: r.next() * 2 - 1,
      radius: (kind === 'faint' ? 0.06 : 0.035) + 0.03 * r.next(), spikes: Array.from({ length: 7 }, () => r.next() * 2 * Math.PI),
    };
    // Screening for the usual findings, diagnostic for the worrying ones and for one study in 5
    // (a follow-up), and one in 20 naming neither (dropped by loadEmbed, as EMBED's rows without
    // a reason are); by index, so that the random stream stays as it was.
    const diagnostic = i % 5 === 3 || !(letter === 'N' || letter === 'B' || letter === 'A');
    const desc = i % 20 === 7 ? 'MG Mammogram Bilateral' : diagnostic ? `MG Diagnostic ${affected === 'L' ? 'Left' : 'Right'}` : 'MG Screening Bilateral';
    const mass = kind === 'round' ? ['O', '='] : kind === 'irregular' ? ['I', '+'] : kind === 'spiculated' ? ['S', '+'] : ['', ''];
    const calc = finding.calcs ? ['P', 'C'] : ['', ''];
    for (const side of ['L', 'R'] as const) {
      const hit = side === affected && kind !== 'none';
      clin.push(csvRow([patient, study, side, density, hit ? letter : 'N', desc, age, race, ethnic, ...(hit ? mass : ['', '']), ...(hit ? calc : ['', ''])]));
      for (const view of ['CC', 'MLO'] as const) {
        const img = render(S, view, side === 'R', [0.1, 0.3, 0.55, 0.8][density - 1], hit ? finding : { ...finding, kind: 'none', calcs: false }, r);
        const px = new Uint16Array(S * S);
        for (let k = 0; k < px.length; k++) px[k] = Math.round(Math.max(0, img[k]) * 65535);
        const rel = `images/${patient}_${side}_${view}.png`;
        meta.push(csvRow([patient, study, rel, '2D', side, view]));
        writes.push(sharp(px, { raw: { width: S, height: S, channels: 1 } }).toColourspace('grey16').png({ compressionLevel: 3 }).toFile(join(opts.out, rel)));
        if (writes.length >= 64) await Promise.all(writes.splice(0));
      }
    }
  }
  await Promise.all(writes);
  writeFileSync(join(opts.out, 'metadata.csv'), meta.join('\n') + '\n');
  writeFileSync(join(opts.out, 'clinical.csv'), clin.join('\n') + '\n');
  return { images: 4 * opts.studies, seconds: (performance.now() - t0) / 1000 };
}

// DICOM data elements, explicit VR little endian; values padded to even length (UIDs with NUL).
function element(group: number, el: number, vr: string, value: Buffer): Buffer {
  if (value.length % 2) value = Buffer.concat([value, Buffer.from(vr === 'UI' || vr === 'OB' ? '\0' : ' ', 'latin1')]);
  const long = vr === 'OB' || vr === 'OW' || vr === 'UN';
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(group, 0), head.writeUInt16LE(el, 2), head.write(vr, 4, 'latin1');
  if (long) head.writeUInt32LE(value.length, 8);
  else head.writeUInt16LE(value.length, 6);
  return Buffer.concat([head, value]);
}

const us = (v: number) => Buffer.from(Uint16Array.of(v).buffer);
const text = (s: string) => Buffer.from(s, 'latin1');
// Digital Mammography X-Ray Image Storage – For Presentation
const MAMMO_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.1.2';

/**
 * An uncompressed DICOM file (explicit VR little endian, 16 bits) of the pixels `px` [H·W] as
 * a viewer shows them (bright = dense); MONOCHROME1 stores them inverted, as many mammography
 * systems do. `uid` is a decimal string, made into the instance UID 2.25.<uid>.
 */
export function dicomFile(px: Uint16Array, width: number, height: number, o: { uid: string; patientId?: string; laterality?: string; view?: string; monochrome1?: boolean }): Buffer {
  if (px.length !== width * height) throw new RangeError(`dicomFile: ${px.length} pixels for ${width}×${height}`);
  if (!/^[1-9][0-9]{0,37}$/.test(o.uid)) throw new RangeError(`dicomFile: uid must be a decimal number without leading zeros, got ${o.uid}`);
  const uid = `2.25.${o.uid}`, stored = o.monochrome1 ? px.map((v) => 65535 - v) : px;
  const meta = Buffer.concat([
    element(0x0002, 0x0001, 'OB', Buffer.from([0, 1])), element(0x0002, 0x0002, 'UI', text(MAMMO_SOP_CLASS)),
    element(0x0002, 0x0003, 'UI', text(uid)), element(0x0002, 0x0010, 'UI', text('1.2.840.10008.1.2.1')),
  ]);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(meta.length);
  return Buffer.concat([
    Buffer.alloc(128), text('DICM'), element(0x0002, 0x0000, 'UL', groupLength), meta,
    element(0x0008, 0x0016, 'UI', text(MAMMO_SOP_CLASS)), element(0x0008, 0x0018, 'UI', text(uid)),
    element(0x0010, 0x0020, 'LO', text(o.patientId ?? '')), element(0x0018, 0x5101, 'CS', text(o.view ?? '')),
    element(0x0020, 0x0062, 'CS', text(o.laterality ?? '')),
    element(0x0028, 0x0002, 'US', us(1)), element(0x0028, 0x0004, 'CS', text(o.monochrome1 ? 'MONOCHROME1' : 'MONOCHROME2')),
    element(0x0028, 0x0010, 'US', us(height)), element(0x0028, 0x0011, 'US', us(width)),
    element(0x0028, 0x0100, 'US', us(16)), element(0x0028, 0x0101, 'US', us(16)), element(0x0028, 0x0102, 'US', us(15)), element(0x0028, 0x0103, 'US', us(0)),
    element(0x7fe0, 0x0010, 'OW', Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength)),
  ]);
}

export interface RsnaSynthOptions {
  out: string;
  patients: number;
  size: number;
  seed: number;
  /** 'dcm' (default; one patient in three MONOCHROME1) or 'png' (16-bit) */
  images?: 'dcm' | 'png';
  /** share of patients with cancer in one breast (default 0.3: about 15 % of the images) */
  cancerRate?: number;
}

export const RSNA_TRAIN_COLUMNS = ['site_id', 'patient_id', 'image_id', 'laterality', 'view', 'age', 'cancer', 'biopsy', 'invasive', 'BIRADS', 'implant', 'density',
  'machine_id', 'difficult_negative_case'] as const;

/**
 * Writes opts.patients patients in the Kaggle layout of RSNA Screening Mammography under opts.out:
 * train.csv and train_images/<patient_id>/<image_id>.dcm (or .png), four images each (L and R ×
 * CC and MLO). Cancer (cancerRate of the patients, one breast) shows on both of that breast's
 * views as a large bright spiculated mass (radius 0.14–0.18 of the image) with clustered
 * calcifications: large enough that a linear probe on a barely trained tiny encoder's pooled
 * features finds it (AUC about 0.8 at 32 px; 0.6–0.75 with EMBED's mass size, against up to
 * 0.64 with no mass at all, the density texture dominating such features). Site 1 fills density and
 * BI-RADS (0 for cancers and one negative in ten, the difficult negatives), site 2 leaves them
 * empty, as Kaggle's table does.
 */
export async function generateRsna(opts: RsnaSynthOptions): Promise<{ images: number; cancer: number; seconds: number }> {
  const t0 = performance.now(), S = opts.size, ext = opts.images ?? 'dcm', rate = opts.cancerRate ?? 0.3;
  if (ext !== 'dcm' && ext !== 'png') throw new RangeError(`generateRsna: images must be dcm or png, got ${ext}`);
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`generateRsna: cancerRate must be in [0, 1], got ${rate}`);
  const rows = [csvRow([...RSNA_TRAIN_COLUMNS])], writes: Array<Promise<unknown>> = [];
  let n = 0, cancerImages = 0;
  for (let i = 0; i < opts.patients; i++) {
    const r = new Rand((opts.seed * 1_000_003 + i + 0x5eed) >>> 0);
    const pid = String(10000 + i), site = r.next() < 0.5 ? 1 : 2, machine = [21, 29, 48, 49, 93, 170, 190, 210][Math.floor(r.next() * 8)];
    const density = 1 + r.pick(DENSITY_P.map((p, k) => [k, p] as [number, number]));
    const cancerSide = r.next() < rate ? (r.next() < 0.5 ? 'L' : 'R') : '';
    const age = r.next() < 0.02 ? '' : `${40 + Math.floor(r.next() * 40)}.0`, implant = r.next() < 0.03 ? 1 : 0;
    const difficult = !cancerSide && r.next() < 0.1, invasive = r.next() < 0.7 ? 1 : 0, mono1 = ext === 'dcm' && i % 3 === 2;
    const lesion: Finding = {
      kind: 'spiculated', calcs: true, amp: 0.8, depth: 0.35 + 0.4 * r.next(), height: r.next() * 1.2 - 0.6,
      radius: 0.14 + 0.04 * r.next(), spikes: Array.from({ length: 7 }, () => r.next() * 2 * Math.PI),
    };
    const dir = join(opts.out, 'train_images', pid);
    mkdirSync(dir, { recursive: true });
    for (const side of ['L', 'R'] as const) {
      const cancer = side === cancerSide ? 1 : 0;
      for (const view of ['CC', 'MLO'] as const) {
        const img = render(S, view, side === 'R', [0.1, 0.3, 0.55, 0.8][density - 1], cancer ? lesion : { ...lesion, kind: 'none', calcs: false }, r);
        const px = new Uint16Array(S * S);
        for (let k = 0; k < px.length; k++) px[k] = Math.round(Math.max(0, img[k]) * 65535);
        // A saturated laterality marker in the top corner at the chest wall, as on real films: every
        // image then spans the full range, so that DICOM's linear scaling cannot tell a lesion's
        // saturated calcifications from the image's brightness.
        const mark = Math.max(1, Math.round(S / 48));
        for (let y = 0; y < mark; y++) for (let x = 0; x < mark; x++) px[y * S + (side === 'R' ? S - 1 - x : x)] = 65535;
        // Distinct 9-digit ids that look random: 62 710 561 = 7919² is coprime to 9·10⁸.
        const iid = String(100_000_000 + ((n * 62_710_561 + opts.seed * 104_729) % 900_000_000));
        n++, (cancerImages += cancer);
        const file = join(dir, `${iid}.${ext}`);
        if (ext === 'dcm') writeFileSync(file, dicomFile(px, S, S, { uid: iid, patientId: pid, laterality: side, view, monochrome1: mono1 }));
        else writes.push(sharp(px, { raw: { width: S, height: S, channels: 1 } }).toColourspace('grey16').png({ compressionLevel: 3 }).toFile(file));
        if (writes.length >= 64) await Promise.all(writes.splice(0));
        const birads = site === 2 ? '' : cancerSide || difficult ? '0' : '1';
        rows.push(csvRow([site, pid, iid, side, view, age, cancer, cancer || difficult ? 1 : 0, cancer ? invasive : 0, birads, implant,
          site === 2 ? '' : 'ABCD'[density - 1], machine, difficult ? 'True' : 'False']));
      }
    }
  }
  await Promise.all(writes);
  writeFileSync(join(opts.out, 'train.csv'), rows.join('\n') + '\n');
  return { images: n, cancer: cancerImages, seconds: (performance.now() - t0) / 1000 };
}
