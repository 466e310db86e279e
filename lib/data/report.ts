// report.ts: MaMA's structured report (MAMA.md §4): the eight segments built from a study's
// EMBED fields, meta masking for training (each of six fields "unknown" with probability 0.8),
// and the zero-shot prompts: the image's own meta segments followed by each class's text.

export const BIRADS_LETTERS: Record<string, number> = { A: 0, N: 1, B: 2, P: 3, S: 4, M: 5, K: 6 };

const DENSITY = ['almost entirely fat', 'scattered fibroglandular densities', 'heterogeneously dense', 'extremely dense'];

// Per BI-RADS category 0–6 (assessment letters A N B P S M K): the findings clause, the
// impression's description and the overall-assessment sentence, the authors' strings.
const BIRADS_TEXT: Array<[string, string, string]> = [
  ['an additional imaging is recommended.', 'additional imaging required', 'Additional imaging is recommended.'],
  ['no significant masses, calcification, or other abnormalities are present.', 'negative', 'Negative.'],
  ['a benign finding is present.', 'benign finding', 'Benign.'],
  ['a probably benign finding is present.', 'probably benign finding', 'Probably benign.'],
  ['a suspicious abnormality is present.', 'suspicious abnormality', 'Suspicious abnormality.'],
  ['a highly suggestive of malignancy is present, a biopsy is recommended.', 'highly suggestive of malignancy', 'Highly suggestive of malignancy.'],
  ['a known biopsy-proven malignant mass is present.', 'known biopsy-proven malignancy', 'Known biopsy-proven malignancy.'],
];

/** The fields a caption is made of (names as MAMA.md §4; strings as EMBED writes them). */
export interface StudyFields {
  procedure: string;
  /** from the description: "screen" → screening, "diag" → diagnostic (reasonOf) */
  reason: 'screening' | 'diagnostic';
  race: string;
  /** "Hispanic or Latino" or "Non-Hispanic or Latino" (ethnicityOf) */
  ethnicity: string;
  age: string;
  imageType: string;
  side: 'left' | 'right' | 'bilateral';
  view: string;
  /** 1–4 */
  density: number;
  /** 0–6 */
  birads: number;
  massShape?: string;
  massDensity?: string;
  calcType?: string;
  calcDistribution?: string;
}

/** The reason for the procedure from its description, or undefined (the image is dropped). */
export function reasonOf(description: string): StudyFields['reason'] | undefined {
  return /screen/i.test(description) ? 'screening' : /diag/i.test(description) ? 'diagnostic' : undefined;
}

/** EMBED's ETHNIC_GROUP_DESC reduced to the two values of the authors' template. */
export function ethnicityOf(value: string): string {
  return value === 'Hispanic or Latino' ? value : 'Non-Hispanic or Latino';
}

/** The six fields meta masking may hide. */
export const META_FIELDS = ['age', 'race', 'ethnicity', 'imageType', 'side', 'view'] as const;

/** Segments 1–4: procedure, reason, patient and image info (the meta a zero-shot prompt keeps). */
export function metaSegments(f: StudyFields): string {
  let s = `Procedure reported: ${f.procedure}; `;
  s += `Reason for procedure: ${f.reason}; `;
  s += `Patient info: This patient is ${f.race}, ${f.ethnicity}, and ${f.age} years old. `;
  s += `Image info: This is a ${f.imageType} full-field digital mammogram of the ${f.side} breast with ${f.view} view. `;
  return s;
}

/** Segment 5: the composition for density 1–4. */
export function densitySegment(density: number): string {
  let s = `Breast composition: The breast is ${DENSITY[density - 1]}. `;
  if (density >= 3) s += 'This may lower the sensitivity of mammography. ';
  return s;
}

/** Segments 6–8: findings (with mass and calcification details when given), impression, assessment. */
export function assessmentSegments(birads: number, details: Partial<StudyFields> = {}): string {
  const [finding, impression, overall] = BIRADS_TEXT[birads];
  let s = `Findings: The mammogram shows that ${finding} `;
  if (details.massShape && details.massDensity) s += `The mass is ${details.massShape} and ${details.massDensity}. `;
  if (details.calcType && details.calcDistribution) s += `A ${details.calcDistribution} ${details.calcType} calcification is present. `;
  s += `Impressions: BI-RADS Category ${birads}: ${impression}. `;
  s += `Overall Assessment: ${overall}`;
  return s;
}

/** The caption of MAMA.md §4, segment by segment. */
export function caption(f: StudyFields): string {
  return metaSegments(f) + densitySegment(f.density) + assessmentSegments(f.birads, f);
}

/** Training-time masking: each meta field becomes "unknown" with probability p (0.8), drawn from rand(). */
export function maskMeta(f: StudyFields, rand: () => number, p = 0.8): StudyFields {
  const out = { ...f } as Record<string, unknown>;
  for (const k of META_FIELDS) if (rand() < p) out[k] = 'unknown';
  return out as unknown as StudyFields;
}

/**
 * Zero-shot prompts for one image (MAMA.md §6): its own unmasked meta segments (1–4) followed by
 * each class's text: the composition (density, 4 prompts) or findings, impression and
 * assessment without mass or calcification details (BI-RADS 0–6, 7 prompts).
 */
export function zeroShotPrompts(f: StudyFields, task: 'density' | 'birads'): string[] {
  const meta = metaSegments(f);
  if (task === 'density') return [1, 2, 3, 4].map((d) => meta + densitySegment(d).trimEnd());
  return [0, 1, 2, 3, 4, 5, 6].map((b) => meta + assessmentSegments(b));
}

/** Sentences of a caption, as the tokenizer separates them (at every "." and ";"). */
export function sentences(text: string): string[] {
  return text.split(/[.;]/).map((s) => s.trim()).filter((s) => s.length > 0);
}
