// build-cuda-emu.mjs: builds, when stale, what runs the CUDA backend without a GPU, in the
// cmake-js build folder (build/): the emulated CUDA library (build/Release/libmamakit_cuda_emu.so),
// its AddressSanitizer twin, the cross-backend op test (backend_ops, backend_ops_asan) and the
// emulation's own test (cuda_emu_selftest).
// g++ only, no nvcc. `npm test` runs it (a no-op when up to date); `node scripts/build-cuda-emu.mjs`
// by hand.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildIfNeeded, root } from './build-if-needed.mjs';

export const emuLib = join(root, 'build', 'Release', 'libmamakit_cuda_emu.so');
export const emuAsanLib = join(root, 'build', 'Release', 'libmamakit_cuda_emu_asan.so');
export const opTest = join(root, 'build', 'Release', 'backend_ops');
export const opTestAsan = join(root, 'build', 'Release', 'backend_ops_asan');
export const emuSelftest = join(root, 'build', 'Release', 'cuda_emu_selftest');

export function buildCudaEmu({ quiet = false } = {}) {
  if (!existsSync(join(root, 'build', 'CMakeCache.txt'))) buildIfNeeded({ quiet });
  const targets = ['mamakit_cuda_emu', 'mamakit_cuda_emu_asan', 'backend_ops', 'backend_ops_asan', 'cuda_emu_selftest'];
  const t0 = Date.now();
  const out = execFileSync('cmake', ['--build', join(root, 'build'), '--parallel', String(availableParallelism()), '--target', ...targets], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const built = /(Building|Linking)/.test(out);
  if (!quiet || built) console.log(`CUDA emulation: ${built ? 'built' : 'up to date'} (${targets.join(', ')}; ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) buildCudaEmu();
