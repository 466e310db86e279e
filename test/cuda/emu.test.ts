// emu.test.ts: the CUDA emulation's own test (native/tests/emu_selftest.cpp) — shuffles, votes,
// barriers and what a missing one does, barriers that cannot complete, __trap, launch limits,
// atomics, dynamic shared memory, device memory checks, mma fragments — since every CUDA test
// that runs without a GPU trusts the emulation.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const test = suite('cuda emulation');
const exe = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'build', 'Release', 'cuda_emu_selftest');

test('the emulation behaves as CUDA specifies', () => {
  assert.ok(existsSync(exe), `${exe} is not built (node scripts/build-cuda-emu.mjs builds it)`);
  const r = spawnSync(exe, [], { encoding: 'utf8' });
  const m = r.stdout.match(/^selftest: (\d+) passed, (\d+) failed$/m);
  assert.ok(m && r.status === 0 && m[2] === '0', `exit ${r.status ?? r.signal}\n${r.stdout.split('\n').filter((l) => l.startsWith('FAIL')).join('\n') || r.stdout + r.stderr}`);
  assert.ok(Number(m![1]) >= 25, r.stdout);
});

test.run();
