// gathered_inputs.ts: the loss heads of test/dist/gathered.test.ts with their seeded inputs per
// rank, made the same way by the rank program and by the test (one process over the ranks' rows).
// The ranks have different row counts (rowsOf), as when unreadable images shorten a rank's batch.
import { autograd, type Tensor } from 'mamakit';
import { rankInput } from './inputs.js';

type Var = InstanceType<typeof autograd.Var>;
type Gatherer = Parameters<typeof autograd.ops.ntXentGathered>[3];
export const E = 8, Np = 3, S = 4;
/** the rows of rank r */
export const rowsOf = (r: number) => 5 + 2 * r;
const x = (what: string, rank: number, shape: number[], scale = 0.4) => ({ shape, data: rankInput(what, rank, shape.reduce((a, b) => a * b)).map((v) => v * scale) });
const scale = (what: string) => ({ shape: [1], data: Float32Array.of(what === 'clip' ? 2.2 : 1.7) });

export interface Head {
  name: string;
  /** the inputs of `rank`: features, then (for clip and local) the log-scale, the same on every rank */
  inputs(rank: number): Array<{ shape: number[]; data: Float32Array }>;
  counts(rank: number): Int32Array;
  /** rows: the ranks' row counts, passed on (else the op gathers them) */
  gathered(xs: Var[], counts: Int32Array, comm: Gatherer, rows?: number[]): Var;
  /** the loss head on the concatenated inputs (one process) */
  single(xs: Var[], counts: Int32Array): Var;
  /** which inputs are rows of the batch (the others, the scales, are not gathered) */
  rows: boolean[];
}

export const heads: Head[] = [
  {
    name: 'ntxent', rows: [true, true], counts: () => new Int32Array(0),
    inputs: (r) => [x('z0', r, [rowsOf(r), E], 1), x('z1', r, [rowsOf(r), E], 1)],
    gathered: ([a, b], _, c, rows) => autograd.ops.ntXentGathered(a, b, 0.5, c, rows),
    single: ([a, b]) => autograd.ops.ntXent(a, b, 0.5),
  },
  {
    name: 'clip', rows: [true, true, false], counts: () => new Int32Array(0),
    inputs: (r) => [x('img', r, [rowsOf(r), E]), x('txt', r, [rowsOf(r), E]), scale('clip')],
    gathered: ([a, b, s], _, c, rows) => autograd.ops.clipLossGathered(a, b, s, c, rows),
    single: ([a, b, s]) => autograd.ops.clipLoss(a, b, s),
  },
  {
    name: 'local', rows: [true, true, false],
    counts: (r) => Int32Array.from({ length: rowsOf(r) }, (_, i) => 1 + ((i * 7 + r * 3) % S)),
    inputs: (r) => [x('patches', r, [rowsOf(r), Np, E]), x('sentences', r, [rowsOf(r), S, E]), scale('local')],
    gathered: ([p, s, k], n, c, rows) => autograd.ops.localAlignGathered(p, s, n, k, c, rows),
    single: ([p, s, k], n) => autograd.ops.localAlign(p, s, n, k),
  },
];

export type { Tensor };
