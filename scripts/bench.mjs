// bench.mjs: `npm run bench [-- NAME…]`. Builds what is stale, runs each dist/bench/*.bench.js
// in its own process, then merges bench/out/*.json into bench/results.json and rewrites
// bench/RESULTS.md with the machine and date.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { buildIfNeeded, root } from './build-if-needed.mjs';

buildIfNeeded({ quiet: true });
const { native } = await import(join(root, 'dist', 'lib', 'native.js'));
const { copyCell, fmtValue: fmt } = await import(join(root, 'dist', 'bench', 'harness.js'));

const filters = process.argv.slice(2);
const dir = join(root, 'dist', 'bench');
const files = readdirSync(dir).filter((f) => f.endsWith('.bench.js') && (!filters.length || filters.some((s) => f.includes(s)))).sort();
let failed = 0;
for (const f of files) {
  console.log(`\n# ${f.replace(/\.bench\.js$/, '')}`);
  const r = spawnSync(process.execPath, [join(dir, f)], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) failed++;
}

const info = native.buildInfo();
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores (${info.isa}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`;
const date = new Date().toISOString().slice(0, 10);
const resultsPath = join(root, 'bench', 'results.json');
const all = existsSync(resultsPath) ? JSON.parse(readFileSync(resultsPath, 'utf8')) : { runs: {} };
const outDir = join(root, 'bench', 'out');
for (const f of existsSync(outDir) ? readdirSync(outDir) : []) {
  const name = f.replace(/\.json$/, '');
  if (!files.some((b) => b.startsWith(`${name}.bench`))) continue;
  all.runs[name] = { machine, date, rows: JSON.parse(readFileSync(join(outDir, f), 'utf8')) };
}
writeFileSync(resultsPath, JSON.stringify(all, null, 1) + '\n');

let md = '# Benchmark results\n\nWritten by `npm run bench` (scripts/bench.mjs) from bench/results.json; each section is the\nlast run of that bench file. Throughput is per call; the ratio is ours over the peer\'s, measured in\nthe same run; where a row says "median of N pairs", ours and the peer\'s were timed alternately for\nabout 0.3 s each, N times (the peer kept running, bench/harness.ts comparePaired), throughputs are\neach side\'s median and the ratio is the median of the N paired ratios (their range and the ratio of\neach side\'s best time follow). GPU figures from bench/gpu.sh are in GPU.md when a GPU was lent.\n\n"Of copy" (memory-bound kernels) is the kernel\'s GB/s over kernels.copy\'s on 64 MiB, beyond the\n32 MiB L3 (STREAM\'s copy), best time of each side in the same run; where it differs, the same\nagainst a copy of the kernel\'s own bytes follows in brackets (in L2/L3 for the small ViT cases).\n\nmama_step times one whole MaMA micro-batch step (median of the timed steps): studies/s are the\nmicro-batch\'s studies per second, each two image forwards (both views) and one caption; its note\nholds each side\'s peak memory (ours: live tensor bytes; PyTorch on the CPU: RSS growth from before\nthe model, on CUDA max_memory_allocated) and the parameter counts.\n';
for (const [name, run] of Object.entries(all.runs).sort()) {
  md += `\n## ${name}\n\n${run.machine}; ${run.date}\n\n| case | mamakit | peer | peer figure | ratio | of copy BW / of GEMM / note |\n|---|---|---|---|---|---|\n`;
  const ours = run.rows.filter((r) => r.impl === 'mamakit');
  for (const r of ours) {
    const p = run.rows.find((x) => x.case === r.case && x.impl !== 'mamakit');
    md += `| ${r.case} | ${fmt(r.value)} ${r.unit} | ${p ? p.impl : '—'} | ${p ? `${fmt(p.value)} ${p.unit}` : '—'} | ${r.ratio != null ? `${r.ratio.toFixed(2)}×${r.ratioRange ? ` (median of ${r.pairs} pairs, ${r.ratioRange[0].toFixed(2)}–${r.ratioRange[1].toFixed(2)}; best/best ${r.bestRatio.toFixed(2)}×)` : ''}` : '—'} | ${r.ofCopy != null ? copyCell(r.ofCopy, r.ofCopySameSize) : r.ofGemm != null ? `${(100 * r.ofGemm).toFixed(0)} % of GEMM` : r.note ?? '—'} |\n`;
  }
}
writeFileSync(join(root, 'bench', 'RESULTS.md'), md);
console.log(`\nwrote bench/RESULTS.md and bench/results.json${failed ? ` (${failed} bench file(s) failed)` : ''}`);
process.exitCode = failed ? 1 : 0;
