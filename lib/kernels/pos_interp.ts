// pos_interp.ts: bicubic resampling of a grid of position embeddings, as PyTorch's
// interpolate(mode: 'bicubic', align_corners: false) and DINOv2 do it. Native:
// native/cpu/pos_interp.cpp, native/cuda/pos_interp.cu.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

export interface InterpolatePosOptions {
  /** source grid [rows, columns]; pos has rows·columns rows */
  from: [number, number];
  /** target grid [rows, columns] */
  to: [number, number];
  /**
   * PyTorch's scale_factor: when given, source coordinates step by 1/scaleFactor instead of
   * from/to (DINOv2 passes ((h + 0.1)/M, (w + 0.1)/M) with `to` = [h, w]).
   */
  scaleFactor?: [number, number];
}

function grid(op: string, opts: InterpolatePosOptions): [number, number, number, number, number, number] {
  const pair = (v: unknown, name: string) => {
    if (!Array.isArray(v) || v.length !== 2) throw new TypeError(`${op}: ${name} must be [rows, columns], got ${String(v)}`);
    return v as [number, number];
  };
  const [h0, w0] = pair(opts?.from, 'from'), [h1, w1] = pair(opts?.to, 'to');
  let sh = h0 / h1, sw = w0 / w1;
  if (opts.scaleFactor !== undefined) {
    const [fh, fw] = pair(opts.scaleFactor, 'scaleFactor');
    sh = 1 / fh, sw = 1 / fw;
  }
  return [h0, w0, h1, w1, sh, sw];
}

/** pos [h0·w0, D] → [h1·w1, D]. */
export function interpolatePos(pos: Tensor, opts: InterpolatePosOptions): Tensor {
  return new Tensor(native.interpolatePos(storage(pos), ...grid('interpolatePos', opts)));
}

/** dy [h1·w1, D] → dPos [h0·w0, D]. */
export function interpolatePosBackward(dy: Tensor, opts: InterpolatePosOptions): Tensor {
  return new Tensor(native.interpolatePosBackward(storage(dy), ...grid('interpolatePosBackward', opts)));
}
