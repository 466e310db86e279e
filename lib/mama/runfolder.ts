// runfolder.ts: what a run folder shows a person: loss.svg and metrics.svg (line plots drawn as
// SVG, no dependency) and report.md with the paper's table layout (MAMA.md §7): zero-shot and
// linear-probe rows, the fine-tune rows when evaluated, the random-init rows, and the CLIP-only
// row when that run exists beside it; the RSNA section (`mamakit eval --dataset rsna`) when
// eval-rsna.json is there.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

type Series = [name: string, points: Array<[x: number, y: number]>];

/** A line plot of a few series against the step. */
export function svgPlot(series: Series[], title: string, xLabel = 'step'): string {
  const W = 640, H = 320, pad = 44;
  const pts = series.flatMap(([, p]) => p).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs, 0), x1 = Math.max(...xs, 1), lo = Math.min(...ys, Infinity), hi = Math.max(...ys, -Infinity);
  const sx = (v: number) => pad + ((W - 2 * pad) * (v - x0)) / (x1 - x0 || 1);
  const sy = (v: number) => H - pad - ((H - 2 * pad) * (v - lo)) / (hi - lo || 1);
  const colours = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
  const lines = series.map(([name, all], k) => {
    const p = all.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    const c = colours[k % colours.length], path = p.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    const dots = p.length < 40 ? p.map(([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${c}"/>`).join('') : '';
    return `<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${path}"/>${dots}<text x="${W - pad - 200}" y="${pad + 14 * k}" fill="${c}" font-size="12">${name}</text>`;
  });
  const fmt = (v: number) => (Number.isFinite(v) ? v.toPrecision(3) : '');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="100%" height="100%" fill="white"/><text x="${pad}" y="20" font-size="14">${title}</text>` +
    `<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="black"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="black"/>` +
    `<text x="4" y="${pad}" font-size="11">${fmt(hi)}</text><text x="4" y="${H - pad}" font-size="11">${fmt(lo)}</text>` +
    `<text x="${pad}" y="${H - pad + 16}" font-size="11">${x0}</text><text x="${W - pad - 60}" y="${H - 10}" font-size="11">${xLabel} ${x1}</text>${lines.join('')}</svg>\n`;
}

/** metrics.jsonl rows: training steps (with `loss`) and validation points (with `val_*`). */
export function readMetrics(path: string): Array<Record<string, number>> {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>);
}

/** loss.svg (training loss, smoothed) and metrics.svg (validation zero-shot figures). */
export function writePlots(out: string, title: string): void {
  const rows = readMetrics(join(out, 'metrics.jsonl'));
  const steps = rows.filter((r) => r.loss !== undefined);
  if (steps.length) {
    const smooth = (key: string): Array<[number, number]> => {
      const v = steps.map((r) => r[key] ?? NaN);
      return v.map((_, i) => {
        const w = v.slice(Math.max(0, i - 19), i + 1).filter(Number.isFinite);
        return [steps[i].step, w.reduce((a, b) => a + b, 0) / (w.length || NaN)];
      });
    };
    const terms: Series[] = [['image-text', smooth('clip')], ['second view image-text', smooth('clip2')], ['NT-Xent', smooth('ntxent')], ['local alignment', smooth('local')]];
    writeFileSync(join(out, 'loss.svg'), svgPlot(terms.filter(([, p]) => p.some(([, y]) => Number.isFinite(y))), `${title}: loss terms (mean of 20 steps)`));
  }
  const val = rows.filter((r) => r.val_zeroshot_density_bacc !== undefined);
  if (val.length) {
    const s = (key: string): Array<[number, number]> => val.map((r) => [r.step, r[key]]);
    writeFileSync(join(out, 'metrics.svg'), svgPlot([['val zero-shot density bACC', s('val_zeroshot_density_bacc')], ['val zero-shot density AUC', s('val_zeroshot_density_auc')]], `${title}: validation`));
  }
}

const pct = (v: number | undefined) => (v === undefined ? '—' : (100 * v).toFixed(1));
const row = (name: string, m: Record<string, number>, key: string) =>
  `| ${name} | ${pct(m[`${key}_density_bacc`])} | ${pct(m[`${key}_density_auc`])} | ${pct(m[`${key}_birads_bacc`])} | ${pct(m[`${key}_birads_auc`])} |\n`;

/** report.md: the run, its plots, and the evaluation table (bACC / AUC in %). */
export function writeReport(out: string, o: { title: string; summary: string; metrics: Record<string, number>; split?: string; compare?: Record<string, Record<string, number>> }): void {
  const m = o.metrics;
  let md = `# ${o.title}\n\n${o.summary}\n\n`;
  if (existsSync(join(out, 'loss.svg'))) md += '![loss](loss.svg)\n\n';
  if (existsSync(join(out, 'metrics.svg'))) md += '![validation](metrics.svg)\n\n';
  md += `| ${o.split ?? 'test'} split | density bACC | density AUC | BI-RADS bACC | BI-RADS AUC |\n|---|---|---|---|---|\n`;
  md += row('zero-shot', m, 'zeroshot');
  for (const f of [1, 10, 100]) md += row(`linear probe ${f} %`, m, `probe${f}`);
  if (m.random_probe100_density_bacc !== undefined) md += row('random-init encoder, linear probe 100 %', m, 'random_probe100');
  if (m.finetune100_density_bacc !== undefined || m.finetune100_birads_bacc !== undefined) for (const f of [1, 10, 100]) md += row(`full fine-tune ${f} %`, m, `finetune${f}`);
  if (m.random_finetune100_density_bacc !== undefined || m.random_finetune100_birads_bacc !== undefined) md += row('random-init encoder, full fine-tune 100 %', m, 'random_finetune100');
  for (const [name, c] of Object.entries(o.compare ?? {})) {
    md += row(`${name}: zero-shot`, c, 'zeroshot');
    md += row(`${name}: linear probe 100 %`, c, 'probe100');
  }
  md += '\nbACC: balanced accuracy (chance 25 % for density, 14.3 % for BI-RADS); AUC: macro one-vs-rest on the softmax over the classes.\n';
  const rsna = join(out, 'eval-rsna.json'); // `mamakit eval --dataset rsna` wrote it: its section stays
  if (existsSync(rsna)) md += `\n${rsnaSection(JSON.parse(readFileSync(rsna, 'utf8')) as Record<string, number>)}`;
  writeFileSync(join(out, 'report.md'), md);
}

const RSNA_HEADING = '## RSNA Screening Mammography';

/** report.md's RSNA section (MAMA.md §6: binary cancer, linear probe and full fine-tune), from eval-rsna.json's keys. */
export function rsnaSection(m: Record<string, number>): string {
  const cells = (key: string) => `| ${['bacc', 'auc', 'sens', 'spec'].map((k) => pct(m[`${key}_cancer_${k}`])).join(' | ')} |`;
  let md = `${RSNA_HEADING} (cancer, out of domain)\n\n`;
  md += `Patient-level 85/15 split stratified by cancer: ${m.rsna_train_images} training images (${m.rsna_train_cancer} cancer), ${m.rsna_test_images} test images (${m.rsna_test_cancer} cancer)`;
  md += `; ${m.rsna_unreadable ?? 0} unreadable images and ${m.rsna_skipped_rows ?? 0} unusable table rows left out.\n\n`;
  md += '| RSNA test split | bACC | AUC | sensitivity | specificity |\n|---|---|---|---|---|\n';
  for (const f of [1, 10, 100]) md += `| linear probe ${f} % ${cells(`rsna_probe${f}`)}\n`;
  if (m.rsna_random_probe100_cancer_bacc !== undefined) md += `| random-init encoder, linear probe 100 % ${cells('rsna_random_probe100')}\n`;
  for (const f of [1, 10, 100]) if (m[`rsna_finetune${f}_cancer_bacc`] !== undefined) md += `| full fine-tune ${f} % ${cells(`rsna_finetune${f}`)}\n`;
  if (m.rsna_random_finetune100_cancer_bacc !== undefined) md += `| random-init encoder, full fine-tune 100 % ${cells('rsna_random_finetune100')}\n`;
  md += '\nbACC: balanced accuracy (chance 50 %); AUC of the cancer probability; sensitivity and specificity of the argmax.\n';
  return md;
}

/** Puts the RSNA section into report.md (replacing the one there; a report.md of its own when the run has none). */
export function writeRsnaSection(out: string, m: Record<string, number>): void {
  const path = join(out, 'report.md');
  let md = existsSync(path) ? readFileSync(path, 'utf8') : '# MaMA evaluation\n';
  const at = md.indexOf(RSNA_HEADING);
  if (at >= 0) {
    const next = md.indexOf('\n## ', at + RSNA_HEADING.length);
    md = md.slice(0, at) + (next >= 0 ? md.slice(next + 1) : '');
  }
  md = `${md.trimEnd()}\n\n${rsnaSection(m)}`;
  writeFileSync(path, md);
}
