// embed.ts: EMBED's tables (MAMA.md §4) read with csv-parse: per-image metadata joined with the
// clinical rows of its study and side, the BI-RADS row rule, incomplete images dropped, a
// seeded 70/10/20 split by patient, and each image's study mates (for the second view). Paths
// in the tables are resolved under the data root and refused if they leave it.
import { parse } from 'csv-parse/sync';
import { readFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { BIRADS_LETTERS, ethnicityOf, reasonOf, type StudyFields } from './report.js';

export const METADATA_COLUMNS = ['empi_anon', 'acc_anon', 'anon_dicom_path', 'FinalImageType', 'ImageLateralityFinal', 'ViewPosition'] as const;
export const CLINICAL_COLUMNS = ['empi_anon', 'acc_anon', 'side', 'tissueden', 'asses', 'StudyDescription', 'age_at_study', 'RACE_DESC',
  'ETHNIC_GROUP_DESC', 'massshape', 'massdens', 'calcfind', 'calcdistri'] as const;

export interface EmbedImage {
  /** absolute path under the data root */
  path: string;
  patient: string;
  study: string;
  side: 'L' | 'R';
  view: string;
  fields: StudyFields;
  split: 'train' | 'val' | 'test';
  /** indices of the other images of the same study */
  mates: number[];
  /** RSNA's binary label (loadRsna); EMBED images have none */
  cancer?: 0 | 1;
}

export interface EmbedReport {
  images: EmbedImage[];
  /** rows the CSV reader could not use, by reason */
  skipped: Record<string, number>;
}

export type Row = Record<string, string>;

/** A CSV file as rows keyed by header; throws naming `what`, the file and a missing column. */
export function readTable(path: string, columns: readonly string[], what: string): Row[] {
  let rows: Row[];
  try {
    rows = parse(readFileSync(path), { columns: true, skip_empty_lines: true, relax_column_count: true, bom: true }) as Row[];
  } catch (e) {
    throw new Error(`${what} ${path}: cannot read it as CSV (${(e as Error).message})`);
  }
  const have = new Set(Object.keys(rows[0] ?? {}));
  if (rows.length === 0) throw new Error(`${what} ${path}: no rows`);
  for (const c of columns) if (!have.has(c)) throw new Error(`${what} ${path}: missing column ${c}`);
  return rows;
}

// EMBED's codes → the words of the report (unknown codes leave the clause out).
const MASS_SHAPE: Record<string, string> = { O: 'oval', R: 'round', I: 'irregular', L: 'lobulated', S: 'spiculated', A: 'architectural distortion' };
const MASS_DENSITY: Record<string, string> = { '+': 'high density', '=': 'equal density', '-': 'low density', '0': 'fat-containing' };
const CALC_TYPE: Record<string, string> = { A: 'amorphous', P: 'pleomorphic', C: 'coarse heterogeneous', F: 'fine linear', R: 'round', D: 'dystrophic', E: 'eggshell', K: 'skin', M: 'milk of calcium', V: 'vascular' };
const CALC_DISTR: Record<string, string> = { G: 'grouped', C: 'clustered', L: 'linear', S: 'segmental', R: 'regional', D: 'diffuse' };

/** FNV-1a then murmur3's finaliser: a seeded, well-mixed hash of a patient id in [0, 1). */
export function hash(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ Math.imul(seed + 1, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

/**
 * Reads metadata and clinical CSVs; root is the directory image paths are relative to.
 * Throws (naming the file and column) on a missing column; counts unusable rows in `skipped`.
 */
export function loadEmbed(metadataCsv: string, clinicalCsv: string, root: string, seed = 0): EmbedReport {
  const meta = readTable(metadataCsv, METADATA_COLUMNS, 'EMBED metadata');
  const clinical = readTable(clinicalCsv, CLINICAL_COLUMNS, 'EMBED clinical');
  const skipped: Record<string, number> = {};
  const skip = (why: string) => void (skipped[why] = (skipped[why] ?? 0) + 1);
  const byStudy = new Map<string, Row[]>();
  for (const r of clinical) {
    const key = `${r.empi_anon}|${r.acc_anon}`;
    (byStudy.get(key) ?? byStudy.set(key, []).get(key)!).push(r);
  }
  const rootAbs = resolve(root);
  const images: EmbedImage[] = [];
  for (const m of meta) {
    if (m.FinalImageType !== '2D') {
      skip('not 2D');
      continue;
    }
    const side = m.ImageLateralityFinal;
    if (side !== 'L' && side !== 'R') {
      skip('no laterality');
      continue;
    }
    const path = resolve(rootAbs, m.anon_dicom_path ?? '');
    const rel = relative(rootAbs, path);
    if (!m.anon_dicom_path || rel.startsWith('..') || isAbsolute(rel)) {
      skip('path outside the data root');
      continue;
    }
    const rows = byStudy.get(`${m.empi_anon}|${m.acc_anon}`) ?? [];
    // Rows of the image's side, else bilateral ones, else all of the study.
    let cand = rows.filter((r) => r.side === side);
    if (!cand.length) cand = rows.filter((r) => r.side === 'B');
    if (!cand.length) cand = rows;
    const scored = cand.filter((r) => r.asses in BIRADS_LETTERS);
    if (!scored.length) {
      skip('no assessment');
      continue;
    }
    // BI-RADS 0 when every row is ≤ 2 and one is 0; else the highest category.
    const cats = scored.map((r) => BIRADS_LETTERS[r.asses]);
    const pick = cats.every((c) => c <= 2) && cats.includes(0) ? scored[cats.indexOf(0)] : scored[cats.indexOf(Math.max(...cats))];
    const density = Number(pick.tissueden);
    if (!pick.StudyDescription) {
      skip('no procedure');
      continue;
    }
    if (!(density >= 1 && density <= 4 && Number.isInteger(density))) {
      skip('no density');
      continue;
    }
    const desc = pick.StudyDescription, reason = reasonOf(desc);
    if (!reason) {
      skip('no reason');
      continue;
    }
    const fields: StudyFields = {
      procedure: desc,
      reason,
      race: pick.RACE_DESC || 'unknown',
      ethnicity: ethnicityOf(pick.ETHNIC_GROUP_DESC),
      age: pick.age_at_study ? String(Math.floor(Number(pick.age_at_study))) : 'unknown',
      imageType: m.FinalImageType,
      side: side === 'L' ? 'left' : 'right',
      view: m.ViewPosition || 'unknown',
      density,
      birads: BIRADS_LETTERS[pick.asses],
      massShape: MASS_SHAPE[pick.massshape],
      massDensity: MASS_DENSITY[pick.massdens],
      calcType: CALC_TYPE[pick.calcfind],
      calcDistribution: CALC_DISTR[pick.calcdistri],
    };
    const u = hash(m.empi_anon, seed);
    images.push({ path, patient: m.empi_anon, study: m.acc_anon, side, view: m.ViewPosition, fields, split: u < 0.7 ? 'train' : u < 0.8 ? 'val' : 'test', mates: [] });
  }
  setMates(images);
  return { images, skipped };
}

/** Each image's mates: the indices of the other images of its study. */
export function setMates(images: EmbedImage[]): void {
  const byStudy = new Map<string, number[]>();
  images.forEach((im, i) => (byStudy.get(im.study) ?? byStudy.set(im.study, []).get(im.study)!).push(i));
  for (const idx of byStudy.values()) for (const i of idx) images[i].mates = idx.filter((j) => j !== i);
}
