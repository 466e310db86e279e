// local_align.ts: MaMA's symmetric local alignment loss (MAMA.md §3.4), fused with its
// gradients; the B·B·S·P similarities are never held. Native: native/cpu/local_align_loss.cpp
// and native/cpu/local_align.cpp.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

export interface LocalAlignOptions {
  /** the gathered batch of all processes; the local rows are offset .. offset+B of it */
  patchesAll?: Tensor | null;
  sentencesAll?: Tensor | null;
  sentenceCountsAll?: Int32Array | null;
  offset?: number;
}

/**
 * patches [B,P,E], sentences [B,S,E] (L2-normalised), sentenceCounts Int32Array [B] in [1, S]
 * (rows past the count are ignored entirely), localScale the learnable log-scale (a number, or
 * an f32 [1] tensor on the patches' device) → the loss and dLocalScale as f32 [1] tensors there
 * (lossTensor, dLocalScaleTensor; `loss`, `dLocalScale` read them back), dPatches, dSentences
 * (+ dPatchesAll, dSentencesAll with the gathered options).
 */
export function localAlignLoss(patches: Tensor, sentences: Tensor, sentenceCounts: Int32Array, localScale: number | Tensor,
  opts: LocalAlignOptions = {}) {
  const [loss, dLocalScale, dPatches, dSentences, dPatchesAll, dSentencesAll] = native.localAlignLoss(storage(patches), storage(sentences),
    sentenceCounts, typeof localScale === 'number' ? localScale : storage(localScale),
    opts.patchesAll ? storage(opts.patchesAll) : null, opts.sentencesAll ? storage(opts.sentencesAll) : null,
    opts.sentenceCountsAll ?? null, opts.offset);
  return {
    lossTensor: new Tensor(loss), dLocalScaleTensor: new Tensor(dLocalScale),
    get loss() { return this.lossTensor.toArray()[0]; },
    get dLocalScale() { return this.dLocalScaleTensor.toArray()[0]; },
    dPatches: new Tensor(dPatches), dSentences: new Tensor(dSentences),
    dPatchesAll: dPatchesAll ? new Tensor(dPatchesAll) : null, dSentencesAll: dSentencesAll ? new Tensor(dSentencesAll) : null,
  };
}
