// rsna_eval.test.ts: RSNA's binary cancer metrics against values worked out by hand
// (sensitivity, specificity, bACC of the argmax, AUC of the cancer probability with a tie);
// report.md's RSNA section replaced in place; evaluateRsna refuses a split without both classes.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data, mama, nn } from 'mamakit';

const test = suite('rsna eval');
const dir = mkdtempSync(join(tmpdir(), 'mamakit-rsna-eval-'));
const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test('sensitivity and specificity by hand; NaN without positives or negatives; bad input named', () => {
  // positives at 0, 2, 5 predicted 1, 1, 0: TP 2, FN 1; negatives at 1, 3, 4, 6, 7 predicted 1, 1, 0, 0, 0: TN 3, FP 2.
  const r = mama.sensitivitySpecificity([1, 0, 1, 0, 0, 1, 0, 0], [1, 1, 1, 1, 0, 0, 0, 0]);
  close(r.sensitivity, 2 / 3, 'sensitivity'), close(r.specificity, 3 / 5, 'specificity');
  const none = mama.sensitivitySpecificity([0, 0], [1, 0]);
  assert.ok(Number.isNaN(none.sensitivity)), close(none.specificity, 0.5, 'specificity');
  assert.ok(Number.isNaN(mama.sensitivitySpecificity([1], [1]).specificity));
  assert.throws(() => mama.sensitivitySpecificity([0, 2], [0, 1]), /sensitivitySpecificity: row 1 has label 2 and prediction 1; both must be 0 or 1/);
  assert.throws(() => mama.sensitivitySpecificity([0, 1], [0]), /sensitivitySpecificity: 2 labels but 1 predictions/);
});

test('cancerMetrics: bACC and sensitivity/specificity of the argmax, AUC of the cancer probability (a tie counts ½)', () => {
  const y = [1, 0, 1, 0, 0, 1, 0, 0], p = [0.9, 0.8, 0.7, 0.7, 0.3, 0.2, 0.1, 0.05];
  const m = mama.cancerMetrics(y, p.map((v) => [1 - v, v]));
  // Positive 0.9 beats all 5 negatives, 0.7 beats 3 and ties 1, 0.2 beats 2: 10.5 of 15 pairs.
  close(m.auc, 10.5 / 15, 'AUC');
  close(m.sens, 2 / 3, 'sensitivity'), close(m.spec, 3 / 5, 'specificity'), close(m.bacc, (2 / 3 + 3 / 5) / 2, 'bACC');
  // The AUC ranks the cancer column only: the other column does not enter it.
  close(mama.cancerMetrics(y, p.map((v) => [0.5, v])).auc, 10.5 / 15, 'AUC with a constant class-0 column');
});

test('writeRsnaSection adds the section to report.md once, replaces it on a rerun, and keeps the rest', () => {
  const m: Record<string, number> = { rsna_train_images: 200, rsna_train_cancer: 30, rsna_test_images: 40, rsna_test_cancer: 6, rsna_unreadable: 1, rsna_skipped_rows: 2 };
  for (const k of ['probe1', 'probe10', 'probe100', 'random_probe100']) for (const s of ['bacc', 'auc', 'sens', 'spec']) m[`rsna_${k}_cancer_${s}`] = 0.5;
  m.rsna_probe100_cancer_auc = 0.8125;
  writeFileSync(join(dir, 'report.md'), '# run\n\n| table |\n\n## Notes\n\nkept\n');
  mama.writeRsnaSection(dir, m);
  m.rsna_probe100_cancer_auc = 0.75;
  mama.writeRsnaSection(dir, m);
  const md = readFileSync(join(dir, 'report.md'), 'utf8');
  assert.is(md.split('## RSNA Screening Mammography').length, 2, md);
  assert.ok(md.startsWith('# run\n\n| table |\n\n## Notes\n\nkept\n\n## RSNA Screening Mammography (cancer, out of domain)\n'), md);
  assert.ok(md.includes('200 training images (30 cancer), 40 test images (6 cancer); 1 unreadable images and 2 unusable table rows left out'), md);
  assert.ok(md.includes('| linear probe 100 % | 50.0 | 75.0 | 50.0 | 50.0 |\n'), md);
  assert.ok(md.includes('| random-init encoder, linear probe 100 % | 50.0 | 50.0 | 50.0 | 50.0 |\n'), md);
  assert.not.ok(md.includes('81.3'));
});

test('evaluateRsna needs both classes in each split', async () => {
  const out = join(dir, 'gen');
  await data.generateRsna({ out, patients: 8, size: 32, seed: 1, cancerRate: 0 });
  const { images } = data.loadRsna(join(out, 'train.csv'), out, 0);
  const c = mama.defaultConfig('tiny'), m = c.model, small = { width: 16, depth: 1, heads: 2 };
  const model = new mama.Mama({ ...m, vit: { ...m.vit, ...small, imageSize: 16, patch: 8 }, text: { ...m.text, ...small }, embed: 8, localHidden: 16, simclrOut: 8 }, 0);
  new nn.ParamArena(model);
  let error: Error | undefined;
  try {
    await mama.evaluateRsna(model, images, { imageSize: 16, workers: 1, randomRow: false, probe: { steps: 1 } });
  } catch (e) {
    error = e as Error;
  }
  assert.match(error?.message ?? 'no error', /^evaluateRsna: the test split has 4 readable images, 0 with cancer: it needs both classes/);
});

test.run();
