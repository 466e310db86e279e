// emu.test.ts: the CUDA emulation's own test (native/tests/emu_selftest.cpp) — shuffles, votes,
// barriers and what a missing one does, barriers that cannot complete, __trap, launch limits,
// atomics, dynamic shared memory, device memory checks, mma fragments — since every CUDA test
// that runs without a GPU trusts the emulation; and that only MAMAKIT_CUDA_LIB selects it.
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

test('MAMAKIT_CUDA_LIB selects the emulated library, which says that it is emulated; without it the addon never loads it', () => {
  const ask = (env: NodeJS.ProcessEnv) => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e',
      "const m = await import('mamakit'); console.log(JSON.stringify({ b: m.backends(), s: m.cudaStatus(), e: m.buildInfo().cudaEmulated }))"],
    { encoding: 'utf8', env });
    assert.is(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { b: string[]; s: { available: boolean; detail: string; emulated: boolean }; e: boolean };
  };
  const lib = join(dirname(exe), 'libmamakit_cuda_emu.so');
  const on = ask({ ...process.env, MAMAKIT_CUDA_LIB: lib });
  assert.equal(on.b, ['cpu', 'cuda']);
  assert.ok(on.s.available && on.s.emulated && on.e, JSON.stringify(on));
  assert.match(on.s.detail, /^emulated CUDA on the CPU \(\d+ threads, not a GPU\), sm_90/);
  const env = { ...process.env };
  delete env.MAMAKIT_CUDA_LIB;
  const off = ask(env);
  assert.ok(!off.s.emulated && !off.e, JSON.stringify(off));
  assert.is(off.b.includes('cuda'), off.s.available);
  if (!off.s.available) assert.match(off.s.detail, /^(not built|not loadable|no driver|no device)/);
});

test.run();
