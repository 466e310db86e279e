// rsna.ts: the RSNA Screening Mammography table (Kaggle 2022's train.csv: site_id, patient_id,
// image_id, laterality, view, age, cancer, biopsy, invasive, BIRADS, implant, density, machine_id,
// difficult_negative_case) read with csv-parse; images at train_images/<patient_id>/<image_id>.dcm,
// or a .png of the same name when the .dcm is absent (pre-converted copies). MAMA.md §6: binary
// cancer label, 85/15 split of the public train set, here by patient, seeded, and stratified by
// whether the patient has a cancer image (the paper says only 85/15). Tested by test/data/rsna.test.ts.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { hash, readTable, setMates, type EmbedImage } from './embed.js';
import type { StudyFields } from './report.js';

/** The columns loadRsna needs; the others are read when present. */
export const RSNA_COLUMNS = ['patient_id', 'image_id', 'laterality', 'view', 'cancer'] as const;

/**
 * An RSNA image. RSNA has no report, so `fields` holds what the table gives (side, view, age,
 * density A–D as 1–4 and BI-RADS 0–2, NaN when empty); a Loader over these images is made
 * without a tokenizer (no captions). `study` is the patient (one screening exam each).
 */
export interface RsnaImage extends EmbedImage {
  cancer: 0 | 1;
  imageId: string;
  split: 'train' | 'test';
}

export interface RsnaReport {
  images: RsnaImage[];
  /** rows left out, by reason */
  skipped: Record<string, number>;
}

export interface RsnaOptions {
  /** the images' folder under the root (default 'train_images') */
  imageDir?: string;
  /** share of each group of patients (with / without cancer) in the test split (default 0.15) */
  testFraction?: number;
}

const ID = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/; // a path component that stays in its folder (Kaggle's are integers)
const DENSITY: Record<string, number> = { A: 1, B: 2, C: 3, D: 4 };

/**
 * Reads train.csv (`csvPath`); `root` holds train_images/. Throws naming the file and column on a
 * missing column; rows it cannot use (laterality not L/R, cancer not 0/1, an id that is not a
 * plain name, a repeated image id, no image file) are counted in `skipped`. Images that exist but
 * cannot be decoded (JPEG-2000 DICOM, corrupt files) are found by the Loader, which skips and counts them.
 */
export function loadRsna(csvPath: string, root: string, seed = 0, opts: RsnaOptions = {}): RsnaReport {
  const testFraction = opts.testFraction ?? 0.15, imageDir = resolve(root, opts.imageDir ?? 'train_images');
  if (!(testFraction > 0 && testFraction < 1)) throw new RangeError(`loadRsna: testFraction must be in (0, 1), got ${testFraction}`);
  const rows = readTable(csvPath, RSNA_COLUMNS, 'RSNA table');
  const skipped: Record<string, number> = {};
  const skip = (why: string) => void (skipped[why] = (skipped[why] ?? 0) + 1);
  const seen = new Set<string>(), images: RsnaImage[] = [];
  for (const r of rows) {
    const pid = r.patient_id?.trim() ?? '', iid = r.image_id?.trim() ?? '', side = r.laterality?.trim(), cancer = r.cancer?.trim();
    if (!ID.test(pid) || !ID.test(iid)) {
      skip('bad patient or image id');
      continue;
    }
    if (side !== 'L' && side !== 'R') {
      skip('no laterality');
      continue;
    }
    if (cancer !== '0' && cancer !== '1') {
      skip('no cancer label');
      continue;
    }
    if (seen.has(iid)) {
      skip('repeated image id');
      continue;
    }
    seen.add(iid);
    const base = join(imageDir, pid, iid), path = existsSync(`${base}.dcm`) ? `${base}.dcm` : existsSync(`${base}.png`) ? `${base}.png` : '';
    if (!path) {
      skip('image file missing');
      continue;
    }
    const age = Number(r.age), birads = r.BIRADS?.trim() ? Number(r.BIRADS) : NaN;
    const fields: StudyFields = {
      procedure: 'unknown', reason: 'screening', race: 'unknown', ethnicity: 'unknown',
      age: r.age?.trim() && Number.isFinite(age) ? String(Math.floor(age)) : 'unknown', imageType: '2D',
      side: side === 'L' ? 'left' : 'right', view: r.view?.trim() || 'unknown',
      density: DENSITY[r.density?.trim() ?? ''] ?? NaN, birads: Number.isInteger(birads) && birads >= 0 && birads <= 6 ? birads : NaN,
    };
    images.push({ path, patient: pid, study: pid, side, view: fields.view, fields, split: 'train', mates: [], cancer: cancer === '1' ? 1 : 0, imageId: iid });
  }
  // The split: each group of patients (with a cancer image, without) ordered by a seeded hash,
  // its first round(testFraction · n) to test.
  const positive = new Map<string, boolean>();
  for (const im of images) positive.set(im.patient, (positive.get(im.patient) ?? false) || im.cancer === 1);
  const test = new Set<string>();
  for (const want of [true, false]) {
    const group = [...positive].filter(([, p]) => p === want).map(([id]) => id);
    group.sort((a, b) => hash(a, seed) - hash(b, seed) || (a < b ? -1 : 1));
    for (const id of group.slice(0, Math.round(testFraction * group.length))) test.add(id);
  }
  for (const im of images) if (test.has(im.patient)) im.split = 'test';
  setMates(images); // a study is a patient here
  return { images, skipped };
}
