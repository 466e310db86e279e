// runfolder.ts: what a run folder shows a person: loss.svg and metrics.svg (line plots drawn as
// SVG, no dependency) and report.md with the paper's table layout (MAMA.md §7): zero-shot and
// linear-probe rows, the fine-tune rows when evaluated, the random-init rows, and the CLIP-only
// row when that run exists beside it.
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
  writeFileSync(join(out, 'report.md'), md);
}
