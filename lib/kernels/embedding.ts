// embedding.ts: row lookup and its scatter-add backward. Native: native/cpu/embedding.cpp.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

/** table [V,D], ids Int32Array [N] (each in [0,V)) → [N,D]. */
export function embedding(table: Tensor, ids: Int32Array): Tensor {
  return new Tensor(native.embedding(storage(table), ids));
}

/** Adds dy [N,D] into the rows ids of dTable [V,D]; returns dTable. */
export function embeddingBackward(dy: Tensor, ids: Int32Array, dTable: Tensor): Tensor {
  native.embeddingBackward(storage(dy), ids, storage(dTable));
  return dTable;
}
