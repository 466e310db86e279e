// dist/index.ts: the communicator of a job launched by mpirun (`mpirun -np 2 npx mamakit …`):
// rank, size and the collectives training needs, on the tensors' own device (MPI for CPU
// tensors, NCCL for CUDA tensors). Not launched by mpirun: one process, whose collectives are
// identities (allGather a copy), so the same code runs unchanged.
// Native: native/addon/dist.cpp, native/dist/. Tests: test/dist/dist.test.ts (2 ranks under mpirun).
import { native, type DistInfo, type DistStatus } from '../native.js';
import { storage, Tensor } from '../tensor.js';

export type { DistStatus };
export type ReduceOp = 'sum' | 'mean';

export interface InitOptions {
  /** seconds a collective waits for every rank before this one aborts them all (default
   *  MAMAKIT_DIST_TIMEOUT, else 300; 0: no limit, MPI's blocking collectives) */
  timeout?: number;
}

/** Whether mpirun (Open MPI, MPICH's hydra, a PMIx launcher) started this process. */
export function launchedByMpi(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['OMPI_COMM_WORLD_SIZE', 'PMI_SIZE', 'PMIX_RANK'].some((k) => env[k] !== undefined);
}

/** The number of ranks mpirun started, from the launcher's environment (before dist.init), or null where it does not say. */
export function launchedSize(env: NodeJS.ProcessEnv = process.env): number | null {
  const n = Number(env.OMPI_COMM_WORLD_SIZE ?? env.PMI_SIZE);
  return Number.isInteger(n) && n >= 1 ? n : null;
}

/** The collective backends this build has: the MPI library, NCCL (through the CUDA library). */
export function status(): DistStatus {
  return native.distStatus();
}

/**
 * Rank, size and collectives. Every rank must make the same calls in the same order with the same
 * sizes (under MPI the ranks compare each call first: a mismatch is the same RangeError on every
 * rank). Bad arguments throw TypeError/RangeError on this rank; CUDA tensors without NCCL an Error
 * on every rank. A failed or timed-out transfer (a rank died, hangs, or the network broke) aborts
 * every rank with the message on stderr, since the ranks no longer agree on where they are. Calls
 * are synchronous.
 */
export class Communicator {
  readonly rank: number;
  readonly size: number;
  /** rank among the processes on this host: the GPU a CUDA rank uses */
  readonly localRank: number;
  /** 'mpi', or 'single' without mpirun */
  readonly backend: DistInfo['backend'];
  /** the MPI library ("Open MPI v4.1.4"), or why there is one process */
  readonly detail: string;

  /** @internal use init() */
  constructor(info: DistInfo) {
    ({ rank: this.rank, size: this.size, localRank: this.localRank, backend: this.backend, detail: this.detail } = info);
  }

  /** t = Σ over ranks of t ('mean': divided by size), in place; returns t. Every rank gets the same bits. */
  allReduce(t: Tensor, op: ReduceOp = 'sum'): Tensor {
    this.guard(() => native.distAllReduce(storage(t), op));
    return t;
  }

  /** The same over arena[offset, offset + length) only (e.g. the gradients of one parameter group). */
  allReduceRange(arena: Tensor, offset: number, length: number, op: ReduceOp = 'sum'): Tensor {
    this.guard(() => native.distAllReduce(storage(arena), op, offset, length));
    return arena;
  }

  /** t [n, …] → a new tensor [size·n, …]: every rank's t in rank order, on t's device. */
  allGather(t: Tensor): Tensor {
    return new Tensor(this.guard(() => native.distAllGather(storage(t))));
  }

  /** t = root's t, in place; returns t. */
  broadcast(t: Tensor, root = 0): Tensor {
    this.guard(() => native.distBroadcast(storage(t), root));
    return t;
  }

  /** Returns once every rank has called it. */
  barrier(): void {
    this.guard(() => native.distBarrier());
  }

  /** Writes `message` (with this rank) to stderr and ends every rank with exit code `code`. */
  abort(message: string, code = 1): never {
    native.distAbort(`mamakit: rank ${this.rank} of ${this.size} ends every rank: ${message}`, code);
    process.exit(code);
  }

  private guard<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      if ((e as { code?: string }).code !== 'ERR_MAMAKIT_DIST_FAILED') throw e;
      this.abort((e as Error).message);
    }
  }
}

let comm: Communicator | null = null;

/**
 * The communicator: started on the first call (later calls return it, whatever their options).
 * Under mpirun, a rank that exits with a nonzero code ends every rank (naming itself), and one
 * that exits normally finalises MPI (which waits for the others to finish too).
 */
export function init(opts: InitOptions = {}): Communicator {
  if (comm) return comm;
  const timeout = opts.timeout ?? Number(process.env.MAMAKIT_DIST_TIMEOUT ?? 300);
  if (!(timeout >= 0 && timeout <= 1e9)) throw new RangeError(`dist.init: timeout must be a number of seconds in [0, 1e9], got ${timeout}`);
  const c = (comm = new Communicator(native.distInit(launchedByMpi(), timeout)));
  if (c.backend === 'mpi') {
    // Node prints an uncaught error after the 'exit' listeners, which abort here: say it first.
    let fatal = '';
    process.on('uncaughtExceptionMonitor', (e) => (fatal = `\n${e instanceof Error ? e.stack : String(e)}`));
    process.on('exit', (code) => {
      if (code === 0) native.distFinalize();
      else native.distAbort(`mamakit: rank ${c.rank} of ${c.size} exited with code ${code}; ending every rank${fatal}`, Math.min(Math.max(code, 1), 255));
    });
  }
  return c;
}
