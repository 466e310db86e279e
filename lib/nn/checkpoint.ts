// checkpoint.ts: a training run's state on disk, written atomically: state.safetensors holds every
// parameter's value in f32, the AdamW moments, the step and each parameter's idle steps (a resumed run
// continues bit-identically); model.safetensors every parameter under its Hugging Face name (it
// opens in PyTorch). Each arena comes back from its device in one copy (the masters and the
// 16-bit frozen values two in mixed precision).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import * as kernels from '../kernels/index.js';
import type { AdamW } from '../optim/adamw.js';
import { Tensor } from '../tensor.js';
import type { ParamArena } from './module.js';

export function saveCheckpoint(dir: string, arena: ParamArena, opt: AdamW, state: object): void {
  mkdirSync(dir, { recursive: true });
  const values = arena.read();
  const t = (name: string, data: Float32Array): [string, { shape: number[]; data: Float32Array }] => [name, { shape: [data.length], data }];
  const idle = Object.fromEntries(arena.params.filter(([, p]) => opt.idleSteps(p)).map(([n, p]) => [n, opt.idleSteps(p)]));
  writeSafetensors(join(dir, 'state.safetensors'), [t('values', values), t('adam_m', opt.m.toArray()), t('adam_v', opt.v.toArray())], {
    state: JSON.stringify({ ...state, idle }),
  });
  const weights = arena.layout.map(({ name, param, offset, length }): [string, { shape: number[]; data: Float32Array }] => [
    name, { shape: param.hfShape, data: values.subarray(offset, offset + length) },
  ]);
  // model.safetensors in the module's declaration order, as saveWeights writes it.
  const order = new Map(arena.params.map(([n], i) => [n, i]));
  weights.sort((a, b) => order.get(a[0])! - order.get(b[0])!);
  writeSafetensors(join(dir, 'model.safetensors'), weights, { format: 'pt' });
}

/** Restores weights and AdamW; returns the state saveCheckpoint was given (its step 0 if absent). */
export function loadCheckpoint(dir: string, arena: ParamArena, opt: AdamW): { step: number } & Record<string, unknown> {
  const { tensors, metadata } = readSafetensors(join(dir, 'state.safetensors'));
  const total = arena.compute.size;
  for (const name of ['values', 'adam_m', 'adam_v'] as const) {
    const t = tensors.get(name), dst = name === 'values' ? null : name === 'adam_m' ? opt.m : opt.v, want = dst?.size ?? total;
    // Checkpoints before the moments covered the trainable prefix alone held them for every value.
    const data = t && dst && t.data.length === total ? t.data.subarray(0, want) : t?.data;
    if (!data || data.length !== want) throw new Error(`${dir}: checkpoint ${name} does not match this model (${t?.data.length} values, ${want} expected)`);
    if (!dst) {
      arena.write(data);
      continue;
    }
    const src = Tensor.fromArray(data, [data.length], { device: dst.device });
    kernels.copy(src, dst);
    src.dispose();
  }
  const state = JSON.parse(metadata.state ?? '{}') as { step?: number; idle?: Record<string, number> } & Record<string, unknown>;
  opt.step = state.step ?? 0;
  const byName = new Map(arena.params);
  for (const [n, k] of Object.entries(state.idle ?? {})) {
    const p = byName.get(n);
    if (!p) throw new Error(`${dir}: checkpoint names a parameter this model lacks (${n})`);
    opt.setIdleSteps(p, k);
  }
  const { idle: _, ...rest } = state;
  return { ...rest, step: state.step ?? 0 };
}
