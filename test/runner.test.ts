// runner.test.ts: scripts/test.mjs itself, on test files this test writes: a file that hangs is
// killed at its timeout and counted as a failure naming the file and the test it was in, and
// the files after it still run; a large bit-for-bit mismatch fails at once with its first index.
import { suite } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { assertIdentical } from './helpers/index.js';

const test = suite('runner');
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const suiteUrl = pathToFileURL(join(here, 'helpers', 'suite.js')).href;

const fixture = (body: string) => `import { suite } from '${suiteUrl}';\nconst test = suite('fixture');\n${body}\ntest.run();\n`;

test('a hanging file is killed at its timeout, named with the test it was in; later files still run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mamakit-runner-'));
  writeFileSync(join(dir, 'a-hang.test.js'), fixture(`test('quick', () => {});\ntest('spins forever', () => { for (;;); });\ntest('never reached', () => {});`));
  writeFileSync(join(dir, 'b-fine.test.js'), fixture(`test('passes', () => {});`));
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'test.mjs'), '--no-build', '--timeout', '2'], {
    cwd: root, encoding: 'utf8', env: { ...process.env, MAMAKIT_TEST_DIR: dir },
  });
  const out = r.stdout + r.stderr;
  assert.is(r.status, 1, out);
  assert.match(out, /TIMEOUT: \S*a-hang\.test\.js ran past 2 s in test "fixture › spins forever"; killed/);
  assert.match(out, /a-hang\.test\.js: timed out after 2 s in test "fixture › spins forever"/);
  assert.match(out, /\n1 passed, 1 failed, 0 skipped\n?$/);
  assert.ok(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms`);
});

test('assertIdentical on 600 k elements fails at once, naming the count and the first difference', () => {
  const a = new Float32Array(600_000).map((_, i) => Math.sin(i)), b = a.slice();
  b[123_457] += 1, (b[500_000] = NaN);
  const t0 = Date.now();
  assert.throws(() => assertIdentical(a, b, 'rows'), (e: Error) => /^rows: 2 of 600000 elements differ; first at \[123457\]: got -?[\d.]+, expected -?[\d.]+$/.test(e.message));
  assert.ok(Date.now() - t0 < 1000);
  assertIdentical(Float32Array.of(NaN, 1), Float32Array.of(NaN, 1));
  assert.throws(() => assertIdentical(Float32Array.of(0), Float32Array.of(-0)), /1 of 1 elements differ/);
  assert.throws(() => assertIdentical(Float32Array.of(0), Float32Array.of(0, 1)), /length 1 but expected 2/);
});

test.run();
