// weights.ts: a module's parameters to and from safetensors under their Hugging Face names and
// shapes, so a published DINOv2-with-registers checkpoint loads here and ours open in PyTorch.
import { readSafetensors, writeSafetensors, type StoredTensor } from '../io/safetensors.js';
import * as kernels from '../kernels/index.js';
import { Tensor } from '../tensor.js';
import type { Module } from './module.js';

/** Writes every parameter (values must be materialised in a ParamArena). */
export function saveWeights(module: Module, path: string, metadata: Record<string, string> = {}): void {
  const out: Array<[string, StoredTensor]> = module.namedParameters().map(([name, p]) => [name, { shape: p.hfShape, data: p.value.toArray() }]);
  writeSafetensors(path, out, metadata);
}

export interface LoadOptions {
  /** prepended to our names to find them in the file ('' by default) */
  prefix?: string;
  /** every parameter must be found (default true); names in the file that we lack are ignored */
  strict?: boolean;
}

/** Copies matching tensors into the parameters; returns the names that were loaded. */
export function loadWeights(module: Module, path: string, opts: LoadOptions = {}): string[] {
  const { tensors } = readSafetensors(path);
  const loaded: string[] = [], missing: string[] = [];
  for (const [name, p] of module.namedParameters()) {
    const t = tensors.get((opts.prefix ?? '') + name);
    if (!t) {
      missing.push(name);
      continue;
    }
    const same = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
    if (!same(t.shape, p.hfShape) && !same(t.shape, p.shape))
      throw new RangeError(`${path}: ${name} has shape ${JSON.stringify(t.shape)}, the model needs ${JSON.stringify(p.hfShape)}`);
    const src = Tensor.fromArray(t.data, p.shape);
    kernels.copy(src, p.value);
    src.dispose();
    loaded.push(name);
  }
  if ((opts.strict ?? true) && missing.length)
    throw new RangeError(`${path}: ${missing.length} parameter(s) not in the file: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
  return loaded;
}
