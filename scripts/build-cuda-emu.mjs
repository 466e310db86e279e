// build-cuda-emu.mjs: builds, when stale, what runs the CUDA backend without a GPU, in the
// cmake-js build folder (build/): the emulated CUDA library (build/Release/libmamakit_cuda_emu.so),
// its AddressSanitizer twin, the cross-backend op test (backend_ops, backend_ops_asan) and the
// emulation's own test (cuda_emu_selftest), and, where CMake found MPI, the stand-in NCCL over MPI
// (build/Release/libnccl_standin.so) that the emulated library's NCCL collectives run against in
// test/dist (MAMAKIT_NCCL_LIB).
// g++ only, no nvcc. `npm test` runs it (a no-op when up to date); `node scripts/build-cuda-emu.mjs`
// by hand.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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
  // The stand-in's target exists only where CMake found MPI (CMakeLists.txt records which in the
  // cache; a build folder configured before it did learns it in the first build, which reconfigures).
  const standin = () => /^MAMAKIT_NCCL_STANDIN:INTERNAL=ON$/m.test(readFileSync(join(root, 'build', 'CMakeCache.txt'), 'utf8'));
  if (standin()) targets.push('nccl_standin');
  const t0 = Date.now();
  const cmake = (t) => execFileSync('cmake', ['--build', join(root, 'build'), '--parallel', String(availableParallelism()), '--target', ...t], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  let out = cmake(targets);
  if (!targets.includes('nccl_standin') && standin()) targets.push('nccl_standin'), (out += cmake(['nccl_standin']));
  const built = /(Building|Linking)/.test(out);
  if (!quiet || built) console.log(`CUDA emulation: ${built ? 'built' : 'up to date'} (${targets.join(', ')}; ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) buildCudaEmu();
