// patch_embed.ts: the fused patch embedding (a Conv2d with kernel = stride = patch, flattened
// in raster order, plus bias and position embedding). Native: native/cpu/patch_embed.cpp,
// native/cuda/patch_embed.cu.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

export interface PatchEmbedOptions {
  /** patch side p; H and W must be multiples of it */
  patch: number;
  /** [B, T, D] with T ≥ Np: the patch tokens are written into it, the other rows untouched */
  out?: Tensor | null;
  /** first patch row in `out` (default T − Np: CLS and register tokens first, as in DINOv2) */
  offset?: number;
}

/**
 * images [B,C,H,W], weight [D, C·p·p] (a Conv2d kernel [D,C,p,p] flattened), bias [D] or null,
 * pos [Np, D] or null (Np = (H/p)(W/p)) → tokens [B, Np, D] (or `out`).
 */
export function patchEmbed(images: Tensor, weight: Tensor, bias: Tensor | null, pos: Tensor | null, opts: PatchEmbedOptions): Tensor {
  const out = opts.out ?? null;
  const r = native.patchEmbed(storage(images), storage(weight), bias && storage(bias), pos && storage(pos), opts.patch,
    out && storage(out), opts.offset);
  return out ?? new Tensor(r);
}

export interface PatchEmbedBackwardOptions {
  patch: number;
  /** as in the forward: first patch row of dTokens (default T − Np) */
  offset?: number;
  /** gradients to accumulate into; those not given are returned fresh */
  dWeight?: Tensor | null;
  dBias?: Tensor | null;
  dPos?: Tensor | null;
}

/** dTokens [B, T, D] → { dWeight [D, C·p·p], dBias [D], dPos [Np, D] } (no image gradient). */
export function patchEmbedBackward(images: Tensor, dTokens: Tensor, opts: PatchEmbedBackwardOptions) {
  const given = [opts.dWeight, opts.dBias, opts.dPos];
  const r = native.patchEmbedBackward(storage(images), storage(dTokens), opts.patch, opts.offset,
    opts.dWeight ? storage(opts.dWeight) : null, opts.dBias ? storage(opts.dBias) : null, opts.dPos ? storage(opts.dPos) : null);
  const wrap = (i: number) => given[i] ?? new Tensor(r[i]);
  return { dWeight: wrap(0), dBias: wrap(1), dPos: wrap(2) };
}
