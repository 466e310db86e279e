// inputs.ts: the seeded inputs of test/dist's rank programs, made the same way by the programs
// and by the test that checks them.
import { Rng } from '../helpers/index.js';

/** What rank `rank` contributes to case `what`: n standard normals (never zeros). */
export function rankInput(what: string, rank: number, n: number): Float32Array {
  let seed = 17 + rank * 7919;
  for (const ch of what) seed = (seed * 31 + ch.charCodeAt(0)) >>> 0;
  return new Rng(seed).randn(n);
}

/** The cases of programs/collectives.ts: element counts (shape [rows, cols] for the gather). */
export const sizes = { sum: 1003, mean: 1003, bf16: 517, f16: 517, big: 200_003, arena: 4096, bcast: 257, gather: [3, 5] } as const;
/** allReduceRange's range within the arena */
export const range = { offset: 1000, length: 2000 } as const;

export const toBase64 = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64');
export function fromBase64(s: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
