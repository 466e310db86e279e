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
export const sizes = { sum: 1003, mean: 1003, bf16: 517, f16: 517, arena: 4096, bcast: 257, gather: [3, 5] } as const;
/** past the MPI library's 16 MB chunks (native/dist/mpi.cpp), checked by the program itself */
export const bigSize = (16 << 20) / 4 + 1003;
/** allReduceRange's range within the arena */
export const range = { offset: 1000, length: 2000 } as const;

export const toBase64 = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64');
export function fromBase64(s: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** FNV-1a over the bytes: equal results on every rank without sending them all back. */
export function hash(x: Float32Array): string {
  const b = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193) >>> 0;
  return h.toString(16);
}

/** The worst |got − Σ inputs| over its bound size·2^-24·Σ|inputs| (f32 additions), per element: ≤ 1 passes. */
export function worstSumError(got: Float32Array, what: string, size: number): number {
  const ref = new Float64Array(got.length), mag = new Float64Array(got.length);
  for (let r = 0; r < size; r++) {
    const x = rankInput(what, r, got.length);
    for (let i = 0; i < x.length; i++) (ref[i] += x[i]), (mag[i] += Math.abs(x[i]));
  }
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]) / (size * 2 ** -24 * mag[i]));
  return worst;
}
