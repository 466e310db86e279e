// op_test.ts: runs the cross-backend op test binary (native/tests/backend_ops) for the test files
// that use it (backend_ops.test.ts, backend_ops_asan.test.ts).
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const release = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'build', 'Release');

// Runs the op test; fails with every FAIL line (or the sanitizer's report) when it does not pass.
export function opTest(exe: string, lib: string, env: NodeJS.ProcessEnv = {}) {
  assert.ok(existsSync(exe), `${exe} is not built (node scripts/build-cuda-emu.mjs builds it)`);
  const r = spawnSync(exe, ['--lib', lib], { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  const m = out.match(/^checks: (\d+) passed, (\d+) failed$/m);
  const fails = out.split('\n').filter((l) => l.startsWith('FAIL')).join('\n');
  assert.ok(m && r.status === 0 && m[2] === '0', `${exe} --lib ${lib}: exit ${r.status ?? r.signal}\n${fails || out.slice(-3000)}`);
  assert.ok(Number(m![1]) >= 150, `only ${m![1]} checks ran`);
  console.log(`  ${out.match(/^table: .*$/m)?.[0]}; ${m![0]}`);
}
