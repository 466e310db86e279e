// embed.test.ts: EMBED tables the test writes, through loadEmbed: the side / bilateral / study
// fallback, the BI-RADS row rule, dropped rows counted by reason, paths that leave the root
// refused, a split by patient that is stable for a seed, study mates; named errors for missing
// columns and unreadable CSV; the reason and ethnicity rules; the report template's exact
// strings, meta masking and zero-shot prompts.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { data } from 'mamakit';

const test = suite('embed');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-embed-'));
const csv = (rows: string[][]) => rows.map((r) => r.map((c) => (/[",]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c)).join(',')).join('\n') + '\n';

const META = [['empi_anon', 'acc_anon', 'anon_dicom_path', 'FinalImageType', 'ImageLateralityFinal', 'ViewPosition'],
  ['p1', 's1', 'img/p1_L_CC.png', '2D', 'L', 'CC'],
  ['p1', 's1', 'img/p1_L_MLO.png', '2D', 'L', 'MLO'],
  ['p1', 's1', 'img/p1_R_CC.png', '2D', 'R', 'CC'],
  ['p1', 's1', 'img/p1_R_3d.png', 'C-view', 'R', 'CC'], // not 2D
  ['p2', 's2', 'img/p2_L_CC.png', '2D', 'L', 'CC'],
  ['p2', 's2', '../../etc/passwd', '2D', 'R', 'CC'], // leaves the root
  ['p3', 's3', 'img/p3_L_CC.png', '2D', 'L', 'CC'], // no assessment
  ['p4', 's4', 'img/p4_R_MLO.png', '2D', '', 'MLO'], // no laterality
  ['p5', 's5', 'img/p5_L_CC.png', '2D', 'L', 'CC'], // no density
  ['p6', 's6', 'img/p6_R_CC.png', '2D', 'R', 'CC'], // no procedure
  ['p7', 's7', 'img/p7_L_CC.png', '2D', 'L', 'CC'], // neither "screen" nor "diag": no reason
  ['p8', 's8', 'img/p8_L_CC.png', '2D', 'L', 'CC'], // "Diag" abbreviated; Hispanic
];
const CLIN = [['empi_anon', 'acc_anon', 'side', 'tissueden', 'asses', 'StudyDescription', 'age_at_study', 'RACE_DESC', 'ETHNIC_GROUP_DESC', 'massshape', 'massdens', 'calcfind', 'calcdistri'],
  // s1 left: BI-RADS 1 and 0, all ≤ 2 with a 0 → the 0 row; right: 2 and 4 → the 4 row
  ['p1', 's1', 'L', '2', 'N', 'MG Screening Bilateral', '57.9', 'White', 'Non-Hispanic', '', '', '', ''],
  ['p1', 's1', 'L', '2', 'A', 'MG Screening Bilateral', '57.9', 'White', 'Non-Hispanic', '', '', '', ''],
  ['p1', 's1', 'R', '3', 'B', 'MG Screening Bilateral', '57.9', 'White', 'Non-Hispanic', '', '', '', ''],
  ['p1', 's1', 'R', '3', 'S', 'MG Diagnostic Right', '57.9', 'White', 'Non-Hispanic', 'S', '+', 'P', 'C'],
  // s2 only bilateral rows → used for the left image
  ['p2', 's2', 'B', '4', 'N', 'MG Screening Bilateral', '61', 'Asian', 'Non-Hispanic', '', '', '', ''],
  ['p3', 's3', 'L', '1', 'X', 'MG Screening Bilateral', '44', 'Black', 'Non-Hispanic', '', '', '', ''],
  ['p5', 's5', 'L', '', 'N', 'MG Screening Bilateral', '50', 'White', 'Non-Hispanic', '', '', '', ''],
  ['p6', 's6', 'R', '2', 'N', '', '50', 'White', 'Non-Hispanic', '', '', '', ''],
  ['p7', 's7', 'L', '2', 'N', 'MG Bilateral Tomosynthesis', '50', 'White', 'Non-Hispanic', '', '', '', ''],
  ['p8', 's8', 'L', '2', 'B', 'MG Diag Left w/CAD', '48.5', 'Asian', 'Hispanic or Latino', '', '', '', ''],
];

test('joins the tables as MAMA.md §4 says and counts what it drops', () => {
  writeFileSync(join(dir, 'meta.csv'), csv(META));
  writeFileSync(join(dir, 'clin.csv'), csv(CLIN));
  const r = data.loadEmbed(join(dir, 'meta.csv'), join(dir, 'clin.csv'), dir, 7);
  assert.equal(r.skipped, { 'not 2D': 1, 'path outside the data root': 1, 'no assessment': 1, 'no laterality': 1, 'no density': 1, 'no procedure': 1, 'no reason': 1 });
  assert.is(r.images.length, 5);
  const [lcc, lmlo, rcc, p2, p8] = r.images;
  // MAMA.md §4: the reason from "screen" / "diag" in the description; ethnicity reduced to two values.
  assert.is(p8.fields.reason, 'diagnostic');
  assert.is(p8.fields.ethnicity, 'Hispanic or Latino');
  assert.is(lcc.fields.ethnicity, 'Non-Hispanic or Latino'); // EMBED's "Non-Hispanic"
  assert.equal(['Hispanic or Latino', 'Non-Hispanic', 'Unknown', '', 'hispanic or latino'].map(data.ethnicityOf),
    ['Hispanic or Latino', 'Non-Hispanic or Latino', 'Non-Hispanic or Latino', 'Non-Hispanic or Latino', 'Non-Hispanic or Latino']);
  assert.equal(['MG Screen Bilat w/CAD', 'MG DIAGNOSTIC RIGHT', 'US Breast Left'].map(data.reasonOf), ['screening', 'diagnostic', undefined]);
  assert.is(lcc.fields.birads, 0); // the BI-RADS 0 row wins when all are ≤ 2
  assert.is(rcc.fields.birads, 4); // else the highest
  assert.is(rcc.fields.massShape, 'spiculated');
  assert.is(rcc.fields.calcDistribution, 'clustered');
  assert.is(rcc.fields.reason, 'diagnostic');
  assert.is(lcc.fields.reason, 'screening');
  assert.is(lcc.fields.age, '57');
  assert.is(p2.fields.density, 4); // bilateral fallback
  assert.equal(lcc.mates, [1, 2]);
  assert.equal(lmlo.mates, [0, 2]);
  assert.equal(p2.mates, []);
  assert.ok(lcc.path.startsWith(dir));
  // A patient's images share a split, and the split depends only on the seed.
  assert.ok(lcc.split === lmlo.split && lmlo.split === rcc.split);
  const again = data.loadEmbed(join(dir, 'meta.csv'), join(dir, 'clin.csv'), dir, 7);
  assert.equal(again.images.map((i) => i.split), r.images.map((i) => i.split));
});

test('a split of many patients is about 70/10/20', () => {
  const meta = [META[0]], clin = [CLIN[0]];
  for (let i = 0; i < 2000; i++) {
    meta.push([`q${i}`, `t${i}`, `img/${i}.png`, '2D', 'L', 'CC']);
    clin.push([`q${i}`, `t${i}`, 'L', '1', 'N', 'MG Screening', '50', 'White', 'Non-Hispanic', '', '', '', '']);
  }
  writeFileSync(join(dir, 'm2.csv'), csv(meta));
  writeFileSync(join(dir, 'c2.csv'), csv(clin));
  const r = data.loadEmbed(join(dir, 'm2.csv'), join(dir, 'c2.csv'), dir, 3);
  const n = (s: string) => r.images.filter((i) => i.split === s).length / r.images.length;
  assert.ok(Math.abs(n('train') - 0.7) < 0.04 && Math.abs(n('val') - 0.1) < 0.03 && Math.abs(n('test') - 0.2) < 0.03, `${n('train')} ${n('val')} ${n('test')}`);
});

test('missing columns and unreadable files are named', () => {
  writeFileSync(join(dir, 'bad.csv'), csv([['empi_anon', 'acc_anon', 'FinalImageType'], ['a', 'b', '2D']]));
  assert.throws(() => data.loadEmbed(join(dir, 'bad.csv'), join(dir, 'clin.csv'), dir), /EMBED metadata .*bad.csv: missing column anon_dicom_path/);
  writeFileSync(join(dir, 'junk.csv'), 'a,"b\n1,2');
  assert.throws(() => data.loadEmbed(join(dir, 'meta.csv'), join(dir, 'junk.csv'), dir), /EMBED clinical .*junk.csv: cannot read it as CSV/);
  assert.throws(() => data.loadEmbed(join(dir, 'nope.csv'), join(dir, 'clin.csv'), dir), /EMBED metadata .*nope.csv: cannot read it as CSV/);
});

test('captions follow the template, string for string; masking hides only the six meta fields; prompts are the meta segments and the class text', () => {
  const f: data.StudyFields = { procedure: 'MG Screening Bilateral', reason: 'screening', race: 'White', ethnicity: 'Non-Hispanic or Latino', age: '57', imageType: '2D',
    side: 'left', view: 'CC', density: 3, birads: 4, massShape: 'irregular', massDensity: 'high density', calcType: 'pleomorphic', calcDistribution: 'clustered' };
  const meta = 'Procedure reported: MG Screening Bilateral; Reason for procedure: screening; Patient info: This patient is White, Non-Hispanic or Latino, and 57 years old. ' +
    'Image info: This is a 2D full-field digital mammogram of the left breast with CC view. ';
  // MAMA.md §4, segments 1–8 with the authors' strings.
  assert.is(data.caption(f), meta + 'Breast composition: The breast is heterogeneously dense. This may lower the sensitivity of mammography. ' +
    'Findings: The mammogram shows that a suspicious abnormality is present. The mass is irregular and high density. A clustered pleomorphic calcification is present. ' +
    'Impressions: BI-RADS Category 4: suspicious abnormality. Overall Assessment: Suspicious abnormality.');
  const findings = ['an additional imaging is recommended.', 'no significant masses, calcification, or other abnormalities are present.', 'a benign finding is present.',
    'a probably benign finding is present.', 'a suspicious abnormality is present.', 'a highly suggestive of malignancy is present, a biopsy is recommended.',
    'a known biopsy-proven malignant mass is present.'];
  const impressions = ['additional imaging required', 'negative', 'benign finding', 'probably benign finding', 'suspicious abnormality', 'highly suggestive of malignancy',
    'known biopsy-proven malignancy'];
  const overall = ['Additional imaging is recommended.', 'Negative.', 'Benign.', 'Probably benign.', 'Suspicious abnormality.', 'Highly suggestive of malignancy.',
    'Known biopsy-proven malignancy.'];
  const bi = data.zeroShotPrompts(f, 'birads');
  assert.is(bi.length, 7);
  for (let b = 0; b <= 6; b++)
    assert.is(bi[b], meta + `Findings: The mammogram shows that ${findings[b]} Impressions: BI-RADS Category ${b}: ${impressions[b]}. Overall Assessment: ${overall[b]}`);
  assert.is(data.sentences(data.caption(f)).length >= 8, true);
  const all = data.maskMeta(f, () => 0);
  for (const k of data.META_FIELDS) assert.is(all[k], 'unknown');
  assert.is(all.density, 3);
  assert.equal(data.maskMeta(f, () => 0.9), f);
  const dens = data.zeroShotPrompts(f, 'density');
  assert.is(dens.length, 4);
  // MAMA.md §6: the meta segments 1–4 followed by the class's own text, nothing else.
  assert.is(dens[0], meta + 'Breast composition: The breast is almost entirely fat.');
  assert.is(dens[3], meta + 'Breast composition: The breast is extremely dense. This may lower the sensitivity of mammography.');
});

test('corrupt CSV bytes: a named error or rows skipped, never a crash', () => {
  const good = csv(META), clin = csv(CLIN);
  let seed = 5;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  let loaded = 0;
  for (let i = 0; i < 100; i++) {
    const b = Buffer.from(i % 2 ? good : clin);
    for (let k = 0; k < 1 + Math.floor(rand() * 20); k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
    const cut = b.subarray(0, Math.floor(rand() * b.length) + 1);
    writeFileSync(join(dir, 'fz-meta.csv'), i % 2 ? cut : good);
    writeFileSync(join(dir, 'fz-clin.csv'), i % 2 ? clin : cut);
    let r: data.EmbedReport;
    try {
      r = data.loadEmbed(join(dir, 'fz-meta.csv'), join(dir, 'fz-clin.csv'), dir);
    } catch (e) {
      assert.ok(/^EMBED (metadata|clinical) .*fz-(meta|clin)\.csv: /.test((e as Error).message), (e as Error).message);
      continue;
    }
    if (r.images.length) loaded++;
    // Read: every metadata row is an image or counted as skipped, and every image is whole.
    const rows = (parse(readFileSync(join(dir, 'fz-meta.csv')), { columns: true, skip_empty_lines: true, relax_column_count: true, bom: true }) as unknown[]).length;
    const skippedRows = Object.values(r.skipped).reduce((a, b) => a + b, 0);
    assert.is(r.images.length + skippedRows, rows, `case ${i}: ${r.images.length} images + ${skippedRows} skipped of ${rows} rows`);
    r.images.forEach((im, k) => {
      const f = im.fields, where = `case ${i}, image ${k}: ${JSON.stringify(im)}`;
      assert.ok(im.path.startsWith(dir + sep) && (im.side === 'L' || im.side === 'R') && f.side === (im.side === 'L' ? 'left' : 'right'), where);
      assert.ok([1, 2, 3, 4].includes(f.density) && f.birads >= 0 && f.birads <= 6 && Number.isInteger(f.birads) && f.procedure !== '', where);
      assert.ok(['train', 'val', 'test'].includes(im.split), where);
      assert.equal(im.mates, r.images.flatMap((o, j) => (j !== k && o.study === im.study ? [j] : [])), where);
    });
  }
  assert.ok(loaded >= 10, `only ${loaded} of 100 corrupted table pairs gave images: the checks above barely ran`);
});

test.run();
