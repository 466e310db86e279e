// weights.ts: a module's parameters to and from safetensors under their Hugging Face names and
// shapes, so a published DINOv2-with-registers checkpoint loads here and ours open in PyTorch.
import { readSafetensors, writeSafetensors, type StoredTensor } from '../io/safetensors.js';
import * as kernels from '../kernels/index.js';
import { Tensor } from '../tensor.js';
import type { Module } from './module.js';

/** Writes every parameter (values must be materialised in a ParamArena). */
export function saveWeights(module: Module, path: string, metadata: Record<string, string> = {}): void {
  const out: Array<[string, StoredTensor]> = module.namedParameters().map(([name, p]) => [name, { shape: p.hfShape, data: (p.master ?? p.value).toArray() }]);
  writeSafetensors(path, out, metadata);
}

export interface LoadOptions {
  /**
   * prepended to our names to find them in the file; 'auto' (the default) finds it from the file,
   * so that a whole model's checkpoint loads into its encoder (GPT2LMHeadModel's "transformer.",
   * a DINOv2 classifier's "dinov2.")
   */
  prefix?: string;
  /** every parameter must be found (default true); names in the file that we lack are ignored */
  strict?: boolean;
  /**
   * parameters that may have more rows than the file holds (a vocabulary with tokens added after
   * the pre-trained ones): the file's rows are copied first, the rest keep their initialisation
   */
  extraRows?: string[];
}

/** The prefix under which the file holds our names ('' when they are there as they are). */
function findPrefix(names: string[], keys: string[]): string {
  const have = new Set(keys);
  if (names.some((n) => have.has(n))) return '';
  for (const n of names)
    for (const k of keys) if (k.endsWith('.' + n)) return k.slice(0, k.length - n.length);
  return '';
}

/** Copies matching tensors into the parameters; returns the names that were loaded. */
export function loadWeights(module: Module, path: string, opts: LoadOptions = {}): string[] {
  const { tensors } = readSafetensors(path);
  const named = module.namedParameters();
  const prefix = opts.prefix === undefined || opts.prefix === 'auto' ? findPrefix(named.map(([n]) => n), [...tensors.keys()]) : opts.prefix;
  const loaded: string[] = [], missing: string[] = [];
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
  for (const [name, p] of named) {
    const t = tensors.get(prefix + name);
    if (!t) {
      missing.push(name);
      continue;
    }
    let rows = 0;
    if (!same(t.shape, p.hfShape) && !same(t.shape, p.shape)) {
      const fewer = opts.extraRows?.includes(name) && t.shape.length === p.shape.length && t.shape[0] <= p.shape[0] && same(t.shape.slice(1), p.shape.slice(1));
      if (!fewer) throw new RangeError(`${path}: ${prefix}${name} has shape ${JSON.stringify(t.shape)}, the model needs ${JSON.stringify(p.hfShape)}`);
      rows = t.shape[0];
    }
    // Into the f32 master when there is one (the 16-bit value the model reads follows it), else
    // into the value (a frozen parameter in mixed precision: rounded to its 16 bits).
    const target = p.master ?? p.value;
    const dst = rows ? target.view(0, [rows, ...p.shape.slice(1)]) : target;
    const src = Tensor.fromArray(t.data, dst.shape, { device: dst.device, dtype: dst.dtype });
    kernels.copy(src, dst);
    if (p.master) kernels.cast(p.master, p.value.dtype, p.value);
    src.dispose();
    if (dst !== target) dst.dispose();
    loaded.push(name);
  }
  if ((opts.strict ?? true) && missing.length)
    throw new RangeError(`${path}: ${missing.length} parameter(s) not in the file${prefix ? ` under ${prefix}` : ''}: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
  return loaded;
}
