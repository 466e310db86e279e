// syncbn_inputs.ts: the seeded inputs of test/dist/syncbn.test.ts per rank and call, made the same
// way by the rank program and by the test (one process over the ranks' rows).
import { rankInput } from './inputs.js';

export const C = 6, calls = 2, momentum = 0.1, eps = 1e-5;
/** rows of `rank` (unequal: the counts are combined, not assumed equal) */
export const rows = (rank: number) => 5 + 2 * rank;
/** x [R, C]: channels offset from 0 by up to 3 (|mean| ≫ std for some), spread 0.5 to 1.5 */
export function x(rank: number, call: number): Float32Array {
  const R = rows(rank), z = rankInput(`x${call}`, rank, R * C);
  return z.map((v, i) => (i % C) * 0.6 - 1 + (0.5 + (i % C) * 0.2) * v);
}
/** the upstream gradient dy [R, C] */
export const dy = (rank: number, call: number) => rankInput(`dy${call}`, rank, rows(rank) * C);
/** the affine weight and bias [C], the same on every rank */
export const weight = () => rankInput('weight', 0, C).map((v) => 1 + 0.3 * v);
export const bias = () => rankInput('bias', 0, C).map((v) => 0.3 * v);
