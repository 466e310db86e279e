// membound.ts: shared by the memory-bound benches (layerNorm, GELU, AdamW): the copy
// bandwidth they are held against, measured with kernels.copy on the same number of bytes
// right after each measurement of the kernel (this VM's memory bandwidth drifts by tens of
// percent over seconds, so the two must be taken together).
import { kernels, Tensor } from 'mamakit';
import { measure } from './harness.js';

const copies = new Map<number, { src: Tensor; dst: Tensor }>();

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

/** Fraction of the copy bandwidth: kernel bytes / kernel seconds over the copy's GB/s. */
export class CopyRatio {
  private best = new Map<string, number>();
  /** Measures fn, then a copy of the same bytes; keeps the best ratio seen for `name`. */
  measure(name: string, bytes: number, fn: () => void) {
    const t = measure(name, fn, { maxTime: 1 });
    const ratio = copySeconds(bytes) / t.seconds;
    this.best.set(name, Math.max(this.best.get(name) ?? 0, ratio));
    return t;
  }
  get(name: string): number | undefined {
    return this.best.get(name);
  }
}

export function randomTensor(shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.random() * 2 - 1;
  return Tensor.fromArray(x, shape);
}
