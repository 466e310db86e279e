// clip_loss.ts: symmetric InfoNCE, CE(s·I·Tᵀ) + CE(s·T·Iᵀ) with s = exp(logitScale), fused with
// its gradients. Native: native/cpu/clip_loss.cpp.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

export interface ClipLossOptions {
  /** the gathered batch [Bg, E] of all processes (data parallel); img/txt are rows offset .. offset+B of it */
  imgAll?: Tensor | null;
  txtAll?: Tensor | null;
  offset?: number;
}

/**
 * img, txt [B, E] (L2-normalised), logitScale the learnable log-scale → { loss, dImg, dTxt,
 * dLogitScale } for an upstream gradient of 1; with imgAll/txtAll also { dImgAll, dTxtAll }, the
 * gradients of the gathered tensors (to be reduced across processes).
 */
export function clipLoss(img: Tensor, txt: Tensor, logitScale: number, opts: ClipLossOptions = {}) {
  const [loss, dLogitScale, dImg, dTxt, dImgAll, dTxtAll] = native.clipLoss(storage(img), storage(txt), logitScale,
    opts.imgAll ? storage(opts.imgAll) : null, opts.txtAll ? storage(opts.txtAll) : null, opts.offset);
  return {
    loss, dLogitScale, dImg: new Tensor(dImg), dTxt: new Tensor(dTxt),
    dImgAll: dImgAll ? new Tensor(dImgAll) : null, dTxtAll: dTxtAll ? new Tensor(dTxtAll) : null,
  };
}
