// mpirun.ts: what the 2-rank tests share: whether mpirun can run here (the tests skip visibly,
// saying why, where it cannot) and a node script run on N ranks under it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'uvu';
import { backends, cudaStatus, dist } from 'mamakit';

/** Why rank programs cannot run here (what the skipped tests print), or null. */
export const noMpi: string | null = spawnSync('mpirun', ['--version']).error
  ? 'mpirun is not installed (Debian: apt-get install openmpi-bin libopenmpi-dev)'
  : !dist.status().mpi.built ? `libmamakit_mpi.so is not built (${dist.status().mpi.detail}); install libopenmpi-dev and rebuild` : null;

/** The stand-in NCCL over MPI (native/tests/nccl_mpi_standin.cpp), built by scripts/build-cuda-emu.mjs where CMake found MPI. */
export const standin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'build', 'Release', 'libnccl_standin.so');

/** Why the emulated CUDA library's NCCL backend cannot run against the stand-in here (what the skipped tests print), or null. */
export const noStandin: string | null = !backends().includes('cuda') || !cudaStatus().emulated ? `CUDA is not the emulated library (${cudaStatus().detail})`
  : !dist.status().nccl.built ? `the emulated CUDA library has no NCCL entries: ${dist.status().nccl.detail}`
  : !existsSync(standin) ? `${standin} is not built (scripts/build-cuda-emu.mjs builds it where CMake found MPI)` : noMpi;

/** The ranks' environment: MAMAKIT_NCCL_LIB set to `nccl` (null: unset), and `more`. */
export function ranksEnv(nccl: string | null, more: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...more };
  if (nccl) env.MAMAKIT_NCCL_LIB = nccl;
  else delete env.MAMAKIT_NCCL_LIB;
  return env;
}

/** Registers a test that needs what `why` says is missing (null: nothing): skipped visibly then. */
export function needs(test: Test, why: string | null, name: string, fn: () => void | Promise<void>): void {
  if (!why) return test(name, fn);
  console.log(`  skip: ${name} (${why})`);
  test.skip(name, fn);
}

export interface RankRun {
  /** the command line, for messages */
  cmd: string;
  status: number | null;
  signal: NodeJS.Signals | null;
  /** set when it could not start or ran past the time limit */
  error?: Error;
  /** stdout then stderr */
  out: string;
}

/** `node argv…` on np ranks under mpirun (np null: one plain process), killed after timeoutMs; env: the ranks' environment (mpirun passes its own on). */
export function onRanks(np: number | null, argv: string[], timeoutMs = 60_000, env: NodeJS.ProcessEnv = process.env): RankRun {
  const cmd = np === null ? [process.execPath, ...argv] : ['mpirun', '--oversubscribe', '--allow-run-as-root', '-np', String(np), process.execPath, ...argv];
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 << 20, env });
  return { cmd: cmd.join(' '), status: r.status, signal: r.signal, error: r.error, out: `${r.stdout}${r.stderr}` };
}
