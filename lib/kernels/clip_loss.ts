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
 * img, txt [B, E] (L2-normalised), logitScale the learnable log-scale (a number, or an f32 [1]
 * tensor on img's device, read there) → the loss and dLogitScale as f32 [1] tensors on that device
 * (lossTensor, dLogitScaleTensor; `loss` and `dLogitScale` read them back), dImg, dTxt for an
 * upstream gradient of 1; with imgAll/txtAll also dImgAll, dTxtAll, the gradients of the gathered
 * tensors (to be reduced across processes).
 */
export function clipLoss(img: Tensor, txt: Tensor, logitScale: number | Tensor, opts: ClipLossOptions = {}) {
  const [loss, dLogitScale, dImg, dTxt, dImgAll, dTxtAll] = native.clipLoss(storage(img), storage(txt),
    typeof logitScale === 'number' ? logitScale : storage(logitScale),
    opts.imgAll ? storage(opts.imgAll) : null, opts.txtAll ? storage(opts.txtAll) : null, opts.offset);
  return {
    lossTensor: new Tensor(loss), dLogitScaleTensor: new Tensor(dLogitScale),
    get loss() { return this.lossTensor.toArray()[0]; },
    get dLogitScale() { return this.dLogitScaleTensor.toArray()[0]; },
    dImg: new Tensor(dImg), dTxt: new Tensor(dTxt),
    dImgAll: dImgAll ? new Tensor(dImgAll) : null, dTxtAll: dTxtAll ? new Tensor(dTxtAll) : null,
  };
}
