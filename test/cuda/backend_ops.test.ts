// backend_ops.test.ts: the cross-backend op test (native/tests/backend_ops): every kernel entry
// of the CUDA table against the CPU backend, in f32, bf16 and f16, on the CUDA library the tests
// use (a GPU's, or the emulated one), then the emulated library under AddressSanitizer, which
// reports out-of-bounds reads and writes of device and shared memory as compute-sanitizer would.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cudaStatus } from 'mamakit';
import { cudaTest } from '../helpers/index.js';

const test = suite('backend_ops');
const release = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'build', 'Release');

// Runs the op test; fails with every FAIL line (or the sanitizer's report) when it does not pass.
function opTest(exe: string, lib: string, env: NodeJS.ProcessEnv = {}) {
  assert.ok(existsSync(exe), `${exe} is not built (node scripts/build-cuda-emu.mjs builds it)`);
  const r = spawnSync(exe, ['--lib', lib], { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  const m = out.match(/^checks: (\d+) passed, (\d+) failed$/m);
  const fails = out.split('\n').filter((l) => l.startsWith('FAIL')).join('\n');
  assert.ok(m && r.status === 0 && m[2] === '0', `${exe} --lib ${lib}: exit ${r.status ?? r.signal}\n${fails || out.slice(-3000)}`);
  assert.ok(Number(m![1]) >= 150, `only ${m![1]} checks ran`);
  console.log(`  ${out.match(/^table: .*$/m)?.[0]}; ${m![0]}`);
}

cudaTest(test, 'every CUDA kernel entry matches the CPU backend (f32, bf16, f16; odd shapes, tile edges)', () => {
  opTest(join(release, 'backend_ops'), process.env.MAMAKIT_CUDA_LIB ?? join(release, 'libmamakit_cuda.so'));
});

test(`the emulated library under AddressSanitizer${cudaStatus().detail.startsWith('emulated') ? '' : ' (besides the GPU)'}`, () => {
  opTest(join(release, 'backend_ops_asan'), join(release, 'libmamakit_cuda_emu_asan.so'));
});

test.run();
