// test.mjs: `npm test`. Builds what is stale, runs every dist/test/**/*.test.js in its own
// process (a crash fails that file, not the run) and ends with "N passed, N failed, N skipped".
// Arguments filter files by substring: `npm test -- matmul`.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { buildIfNeeded, root } from './build-if-needed.mjs';

buildIfNeeded({ quiet: true });

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? find(join(dir, e.name)) : e.name.endsWith('.test.js') ? [join(dir, e.name)] : [],
  );
}

const filters = process.argv.slice(2);
const files = find(join(root, 'dist', 'test')).filter((f) => !filters.length || filters.some((s) => f.includes(s))).sort();
let passed = 0, failed = 0, skipped = 0;
const failures = [];
const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

for (const file of files) {
  const name = relative(join(root, 'dist'), file);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--enable-source-maps', file], { cwd: root, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' }, maxBuffer: 64 << 20 });
  const out = strip((r.stdout ?? '') + (r.stderr ?? ''));
  const num = (label) => Number((out.match(new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm')) ?? [])[1] ?? NaN);
  const total = num('Total'), ok = num('Passed'), skip = num('Skipped');
  process.stdout.write(out.replace(/\n\s*Total:[\s\S]*?Duration:.*\n/, '\n'));
  if (Number.isNaN(total) || r.status !== 0 && total === ok) {
    // The file died before uvu's summary (a crash, a signal, an exception at load).
    failed += 1 + (Number.isNaN(total) ? 0 : total - ok);
    passed += Number.isNaN(ok) ? 0 : ok;
    failures.push(`${name}: exited with ${r.signal ?? `code ${r.status}`} before finishing`);
  } else {
    passed += ok;
    failed += total - ok;
    if (total > ok) failures.push(`${name}: ${total - ok} failed`);
  }
  skipped += Number.isNaN(skip) ? 0 : skip;
  console.log(`  [${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s]\n`);
}

if (failures.length) console.log(`Failures:\n  ${failures.join('\n  ')}\n`);
if (!files.length) {
  console.log('no test files found');
  failed += 1;
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exitCode = failed ? 1 : 0;
