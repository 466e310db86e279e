// copy.ts: moving values: copy, copy2d (a block between row-strided layouts), fill, and cast
// to another dtype on the same device. Native: native/cpu/copy.cpp, copy2d.cpp; native/cuda/copy.cu.
import { native } from '../native.js';
import { storage, Tensor, type DType } from '../tensor.js';

export interface Copy2dOptions {
  rows: number;
  cols: number;
  srcOffset?: number;
  /** elements between row starts in src (default cols) */
  srcStride?: number;
  dstOffset?: number;
  dstStride?: number;
}

/** Copies a rows × cols block between row-strided layouts of src and dst (blocks may not overlap); returns dst. */
export function copy2d(src: Tensor, dst: Tensor, o: Copy2dOptions): Tensor {
  native.copy2d(storage(src), storage(dst), o.rows, o.cols, o.srcOffset ?? 0, o.srcStride ?? o.cols, o.dstOffset ?? 0, o.dstStride ?? o.cols);
  return dst;
}

/** src copied into dst (same shape, device, dtype), or into a new tensor. */
export function copy(src: Tensor, dst?: Tensor | null): Tensor {
  const r = native.copy(storage(src), dst ? storage(dst) : null);
  return dst ?? new Tensor(r);
}

/** x = value, in place; returns x. */
export function fill(x: Tensor, value: number): Tensor {
  native.fill(storage(x), value);
  return x;
}

/** src in `dtype` on its device (to 16 bits: rounded to nearest even), into dst when given. */
export function cast(src: Tensor, dtype: DType, dst?: Tensor | null): Tensor {
  const r = native.cast(storage(src), dtype, dst ? storage(dst) : null);
  return dst ?? new Tensor(r);
}
