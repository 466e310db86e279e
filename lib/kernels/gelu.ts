// gelu.ts: GELU, exact (erf) or tanh approximation (GPT-2). Native: native/cpu/gelu.cpp.
import { native } from '../native.js';
import { storage, Tensor } from '../tensor.js';

export interface GeluOptions {
  /** 'none' (default): ½x(1 + erf(x/√2)); 'tanh': ½x(1 + tanh(√(2/π)(x + 0.044715x³))) */
  approximate?: 'none' | 'tanh';
}

function tanhForm(opts: GeluOptions): boolean {
  const a = opts.approximate ?? 'none';
  if (a !== 'none' && a !== 'tanh') throw new TypeError(`gelu: approximate must be 'none' or 'tanh', got ${String(a)}`);
  return a === 'tanh';
}

export function gelu(x: Tensor, opts: GeluOptions = {}): Tensor {
  return new Tensor(native.gelu(storage(x), tanhForm(opts)));
}

export function geluBackward(dy: Tensor, x: Tensor, opts: GeluOptions = {}): Tensor {
  return new Tensor(native.geluBackward(storage(dy), storage(x), tanhForm(opts)));
}
