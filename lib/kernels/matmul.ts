// matmul.ts: C = op(A)·op(B) (+ bias) (+ C). Native: native/cpu/matmul.cpp, native/cuda/matmul.cu.
import { storage, Tensor } from '../tensor.js';
import type { DType } from '../tensor.js';
import { native } from '../native.js';

export interface MatmulOptions {
  /** a is stored [K,M] and used transposed */
  transA?: boolean;
  /** b is stored [N,K] and used transposed */
  transB?: boolean;
  /** [N], added to every row */
  bias?: Tensor | null;
  /** [M,N]: written instead of a new tensor */
  out?: Tensor | null;
  /** add to the previous contents of `out` (C += A·B) */
  accumulate?: boolean;
  /** dtype of the result: a's (the default), or 'f32' when a and b are bf16/f16 (f32 weight
   *  gradients from 16-bit activations; CUDA only). With `out`, it must be out's dtype. */
  outDtype?: DType;
}

/** a [M,K] (or [K,M] with transA) · b [K,N] (or [N,K] with transB) → [M,N]. */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const out = opts.out ?? null;
  const r = native.matmul(
    storage(a),
    storage(b),
    opts.bias == null ? null : storage(opts.bias),
    out === null ? null : storage(out),
    opts.transA ?? false,
    opts.transB ?? false,
    opts.accumulate ?? false,
    opts.outDtype ?? null,
  );
  return out ?? new Tensor(r);
}
