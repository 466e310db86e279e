// test.mjs: `npm test`. Builds what is stale, runs every dist/test/**/*.test.js in its own
// process (a crash fails that file, not the run) and ends with "N passed, N failed, N skipped".
// Arguments filter files by substring: `npm test -- matmul`. A file that runs past its timeout
// (--timeout S, or MAMAKIT_TEST_TIMEOUT; 300 s) is killed and counted as a failure that names
// the test it was in (test/helpers/suite.ts notes each test as it starts).
// CUDA tests run on a GPU when one answers, else against the emulated CUDA library (built here
// when stale, g++ only): they pass or fail, never skip. MAMAKIT_CUDA_LIB, when set, is used as is.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { buildIfNeeded, root } from './build-if-needed.mjs';
import { buildCudaEmu, emuLib } from './build-cuda-emu.mjs';

const args = process.argv.slice(2);
let timeoutS = Number(process.env.MAMAKIT_TEST_TIMEOUT ?? 300), build = true;
const filters = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--timeout') timeoutS = Number(args[++i]);
  else if (args[i] === '--no-build') build = false;
  else filters.push(args[i]);
}
if (!(timeoutS > 0)) throw new RangeError(`test.mjs: --timeout must be a positive number of seconds, got ${timeoutS}`);
// MAMAKIT_TEST_DIR: another folder of compiled tests (the runner's own test uses it).
const testDir = process.env.MAMAKIT_TEST_DIR ?? join(root, 'dist', 'test');

if (build) buildIfNeeded({ quiet: true });

// What the CUDA tests run on, asked of the addon in a child process.
if (process.env.MAMAKIT_CUDA_LIB) {
  console.log(`CUDA tests: MAMAKIT_CUDA_LIB=${process.env.MAMAKIT_CUDA_LIB}`);
} else {
  const ask = spawnSync(process.execPath, ['--input-type=module', '-e', "const m = await import('./dist/lib/index.js'); console.log(JSON.stringify(m.cudaStatus()))"],
    { cwd: root, encoding: 'utf8' });
  const status = ask.status === 0 ? JSON.parse(ask.stdout) : { available: false, detail: `the addon did not load: ${ask.stderr.trim().split('\n').pop()}` };
  // The op test runs the emulated library under AddressSanitizer on every machine.
  if (build) buildCudaEmu({ quiet: true });
  if (status.available) {
    console.log(`CUDA tests: ${status.detail}`);
  } else {
    process.env.MAMAKIT_CUDA_LIB = emuLib;
    console.log(`CUDA tests: the emulated CUDA library (no GPU: ${status.detail})`);
  }
}

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? find(join(dir, e.name)) : e.name.endsWith('.test.js') ? [join(dir, e.name)] : [],
  );
}

const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
const scratch = mkdtempSync(join(tmpdir(), 'mamakit-test-'));

/** Runs one file; resolves with its output, exit status and, when killed for time, the test it was in. */
function runFile(file, progress) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--enable-source-maps', file], {
      cwd: root, env: { ...process.env, FORCE_COLOR: '0', MAMAKIT_TEST_PROGRESS: progress }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '', timedOut = false;
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, timeoutS * 1000);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      let inTest = null;
      try {
        inTest = readFileSync(progress, 'utf8');
      } catch {}
      resolve({ out: strip(out), status, signal, timedOut, inTest });
    });
  });
}

const files = find(testDir).filter((f) => !filters.length || filters.some((s) => f.includes(s))).sort();
let passed = 0, failed = 0, skipped = 0;
const failures = [];

for (const [i, file] of files.entries()) {
  const name = relative(join(testDir, '..'), file);
  const t0 = Date.now();
  const r = await runFile(file, join(scratch, `progress-${i}`));
  const num = (label) => Number((r.out.match(new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm')) ?? [])[1] ?? NaN);
  const total = num('Total'), ok = num('Passed'), skip = num('Skipped');
  process.stdout.write(r.out.replace(/\n\s*Total:[\s\S]*?Duration:.*\n/, '\n'));
  if (r.timedOut) {
    const where = r.inTest ? `in test "${r.inTest}"` : 'before its first test started';
    console.log(`\n  TIMEOUT: ${name} ran past ${timeoutS} s ${where}; killed`);
    failed += 1;
    failures.push(`${name}: timed out after ${timeoutS} s ${where}`);
  } else if (Number.isNaN(total) || (r.status !== 0 && total === ok)) {
    // The file died before uvu's summary (a crash, a signal, an exception at load).
    failed += 1 + (Number.isNaN(total) ? 0 : total - ok);
    passed += Number.isNaN(ok) ? 0 : ok;
    const where = r.inTest ? ` (in test "${r.inTest}")` : '';
    failures.push(`${name}: exited with ${r.signal ?? `code ${r.status}`} before finishing${where}`);
  } else {
    passed += ok;
    failed += total - ok;
    if (total > ok) failures.push(`${name}: ${total - ok} failed`);
  }
  skipped += Number.isNaN(skip) ? 0 : skip;
  console.log(`  [${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s]\n`);
}
rmSync(scratch, { recursive: true, force: true });

if (failures.length) console.log(`Failures:\n  ${failures.join('\n  ')}\n`);
if (!files.length) {
  console.log('no test files found');
  failed += 1;
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exitCode = failed ? 1 : 0;
