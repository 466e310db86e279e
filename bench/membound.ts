// membound.ts: shared by the memory-bound benches (layerNorm, GELU, AdamW): the copy
// bandwidth they are held against, measured with kernels.copy in the same run, right after
// each measurement of the kernel (this VM's memory bandwidth drifts by tens of percent over
// seconds, so the two must be taken together). Two references:
//   memory: a copy of 64 MiB into 64 MiB, far beyond the 32 MiB L3 (STREAM's copy: the
//     machine's copy bandwidth, what a memory-bound kernel is held to);
//   same size: a copy of the kernel's own bytes, which for the small ViT cases stays in
//     L2/L3 and so shows how far the kernel is from the cache's speed as well.
// Each side keeps its best (shortest) time over the run, as the peer comparisons do: the best
// ratio of paired runs would pick the round where the copy happened to be slow.
import { kernels, Tensor } from 'mamakit';
import { measure, type CopyFractions } from './harness.js';

const copies = new Map<number, { src: Tensor; dst: Tensor }>();
const MEMORY_BYTES = 2 * 64 * 2 ** 20;

/** Seconds kernels.copy takes to move `bytes` in total (half read, half written). */
export function copySeconds(bytes: number): number {
  const n = Math.floor(bytes / 8);
  let c = copies.get(n);
  if (!c) {
    c = { src: Tensor.fromArray(new Float32Array(n).fill(1), [n]), dst: Tensor.empty([n]) };
    copies.set(n, c);
  }
  const { src, dst } = c;
  return measure('copy', () => kernels.copy(src, dst), { maxTime: 0.5 }).seconds;
}

/** The kernel's bandwidth as a fraction of the copy bandwidth, best time of each side. */
export class CopyRatio {
  private best = new Map<string, { bytes: number; kernel: number; same: number }>();
  private memory = Infinity;
  /** Measures fn, then a copy of the same bytes and the memory copy. */
  measure(name: string, bytes: number, fn: () => void) {
    const t = measure(name, fn, { maxTime: 1 });
    const b = this.best.get(name) ?? { bytes, kernel: Infinity, same: Infinity };
    b.kernel = Math.min(b.kernel, t.seconds);
    b.same = Math.min(b.same, copySeconds(bytes));
    this.best.set(name, b);
    this.memory = Math.min(this.memory, copySeconds(MEMORY_BYTES));
    return t;
  }
  get(name: string): CopyFractions | undefined {
    const b = this.best.get(name);
    if (!b) return undefined;
    const gbs = b.bytes / b.kernel;
    return { memory: gbs / (MEMORY_BYTES / this.memory), sameSize: b.same / b.kernel };
  }
}

export function randomTensor(shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.random() * 2 - 1;
  return Tensor.fromArray(x, shape);
}
