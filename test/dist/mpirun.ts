// mpirun.ts: what the 2-rank tests share: whether mpirun can run here (the tests skip visibly,
// saying why, where it cannot) and a node script run on N ranks under it.
import { spawnSync } from 'node:child_process';
import type { Test } from 'uvu';
import { dist } from 'mamakit';

/** Why rank programs cannot run here (what the skipped tests print), or null. */
export const noMpi: string | null = spawnSync('mpirun', ['--version']).error
  ? 'mpirun is not installed (Debian: apt-get install openmpi-bin libopenmpi-dev)'
  : !dist.status().mpi.built ? `libmamakit_mpi.so is not built (${dist.status().mpi.detail}); install libopenmpi-dev and rebuild` : null;

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

/** `node argv…` on np ranks under mpirun (np null: one plain process), killed after timeoutMs. */
export function onRanks(np: number | null, argv: string[], timeoutMs = 60_000): RankRun {
  const cmd = np === null ? [process.execPath, ...argv] : ['mpirun', '--oversubscribe', '--allow-run-as-root', '-np', String(np), process.execPath, ...argv];
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 << 20 });
  return { cmd: cmd.join(' '), status: r.status, signal: r.signal, error: r.error, out: `${r.stdout}${r.stderr}` };
}
