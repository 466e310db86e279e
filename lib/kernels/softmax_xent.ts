// softmax_xent.ts: softmax cross-entropy over rows. Native: native/cpu/softmax_xent.cpp.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

/**
 * logits [R,C], targets Int32Array [R] (class index, or < 0 to ignore the row) →
 * { loss: mean over the rows not ignored, losses [R], lse [R] (for the backward), count }.
 */
export function softmaxCrossEntropy(logits: Tensor, targets: Int32Array) {
  const [losses, lse] = native.softmaxCrossEntropy(storage(logits), targets);
  const per = losses.toArray();
  let sum = 0, count = 0;
  for (let i = 0; i < per.length; i++) {
    if (targets[i] >= 0) {
      sum += per[i];
      count++;
    }
  }
  return { loss: count ? sum / count : 0, losses: new Tensor(losses), lse: new Tensor(lse), count };
}

/** dlogits [R,C] of the mean loss (scale = 1/count by default) times an upstream gradient. */
export function softmaxCrossEntropyBackward(logits: Tensor, lse: Tensor, targets: Int32Array, opts: { scale?: number } = {}): Tensor {
  let scale = opts.scale;
  if (scale === undefined) {
    let count = 0;
    for (const t of targets) if (t >= 0) count++;
    scale = count ? 1 / count : 0;
  }
  return new Tensor(native.softmaxCrossEntropyBackward(storage(logits), storage(lse), targets, scale));
}
