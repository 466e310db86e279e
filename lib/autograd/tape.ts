// tape.ts: reverse-mode automatic differentiation over Tensors. Each differentiable op (ops.ts)
// computes its forward with the kernels and, when an input needs a gradient, records a node:
// the op's name, its inputs and output, and what its backward needs. backward() walks the tape
// in reverse, looks each node's rule up in the one rules table (ops.ts), frees what the node
// saved as soon as the rule has run, and adds the gradients of parameters into their `grad`
// (which persists, so micro-batches accumulate until the optimiser zeroes it).
import * as kernels from '../kernels/index.js';
import { like, Tensor } from '../tensor.js';

/** A value in the graph. Leaves with requiresGrad are parameters (or inputs) that collect `grad`. */
export class Var {
  /** leaves: the accumulated gradient (often a view into a model's gradient arena) */
  grad: Tensor | null = null;
  /** @internal the node that produced this value, if recorded */
  node: Node | null = null;
  constructor(
    public value: Tensor,
    public requiresGrad = false,
    public name = '',
  ) {}
  get shape(): number[] {
    return this.value.shape;
  }
  /** The value is dropped; later use throws. Intermediates are freed by backward() anyway. */
  dispose(): void {
    this.value.dispose();
  }
}

/** What a rule gets: the recorded inputs and output, the saved tensors, the output gradient. */
export interface Node {
  op: string;
  inputs: Array<Var | null>;
  out: Var;
  /**
   * tensors and numbers the rule needs; the tensors here are disposed after the rule ran,
   * except under keys that start with '_' (borrowed: constants such as input images)
   */
  saved: Record<string, Tensor | number | boolean | null | number[] | Int32Array>;
}

/** A rule returns one gradient per input (null where none is needed). */
export type Rule = (node: Node, g: Tensor) => Array<Tensor | null>;

let enabled = true;
// The tape being recorded; checkpoint() records a block's recomputation on a tape of its own.
let tape: Node[] = [];
const rules = new Map<string, Rule>();

/** @internal ops.ts registers every rule here once. */
export function defineRule(op: string, rule: Rule): void {
  if (rules.has(op)) throw new Error(`autograd: rule ${op} defined twice`);
  rules.set(op, rule);
}

/** @internal The ops that have a rule (the gradient test walks this list). */
export function ruleNames(): string[] {
  return [...rules.keys()];
}

// Values made without recording inside noGrad(), freed when it returns (except its result).
let scope: Var[] | null = null;

/**
 * Runs fn without recording: no node is kept, no activation is saved, and every intermediate
 * value made inside is freed on return except the Vars in the result (a Var, or an object or
 * array of them).
 */
export function noGrad<T>(fn: () => T): T {
  const was = enabled, outer = scope;
  enabled = false;
  const made: Var[] = (scope = []);
  let result: T | undefined;
  try {
    result = fn();
    return result;
  } finally {
    enabled = was;
    scope = outer;
    const keep = new Set<Var>();
    const r = result as unknown;
    if (r instanceof Var) keep.add(r);
    else if (r && typeof r === 'object') for (const v of Object.values(r)) if (v instanceof Var) keep.add(v);
    for (const v of made) {
      if (keep.has(v)) outer?.push(v);
      else if (!v.value.disposed) v.value.dispose();
    }
  }
}

export function gradEnabled(): boolean {
  return enabled;
}

/**
 * @internal Wraps an op's output; records the node when grad mode is on and an input needs a
 * gradient. Otherwise the saved tensors are freed at once.
 */
export function record(op: string, inputs: Array<Var | null>, value: Tensor, saved: Node['saved'] = {}): Var {
  const out = new Var(value);
  if (enabled && inputs.some((v) => v?.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, inputs, out, saved };
    tape.push(out.node);
  } else {
    freeSaved(saved, inputs, out);
    scope?.push(out);
  }
  return out;
}

function freeSaved(saved: Node['saved'], inputs: Array<Var | null>, out: Var): void {
  for (const [k, v] of Object.entries(saved))
    if (!k.startsWith('_') && v instanceof Tensor && v !== out.value && !inputs.some((i) => i?.value === v) && !v.disposed) v.dispose();
}

/** dst += src in place (dst may be a view), allocating nothing. */
export function addInto(dst: Tensor, src: Tensor): void {
  kernels.axpy(dst, src, 1);
}

/**
 * Back-propagates from `loss` (seed: its gradient, default 1 for a one-element loss) through
 * every node recorded since the last backward(); adds into the `grad` of leaves that require
 * one, then frees the intermediates (their values and saved tensors) and clears the tape.
 * `keep` lists Vars whose values the caller still needs.
 */
export function backward(loss: Var, seed?: Tensor, keep: Var[] = []): void {
  const grads = new Map<Var, Tensor>();
  grads.set(loss, seed ?? like(loss.value, loss.shape, { fill: 1 }));
  const kept = new Set(keep);
  kept.add(loss);
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    const g = grads.get(node.out);
    if (g) {
      grads.delete(node.out);
      const rule = rules.get(node.op);
      if (!rule) throw new Error(`autograd: no rule for ${node.op}`);
      const gin = rule(node, g);
      g.dispose();
      node.inputs.forEach((input, k) => {
        const gi = gin[k];
        if (!gi) return;
        if (!input || !input.requiresGrad) return void gi.dispose();
        if (!input.node) {
          // A leaf: accumulate into its persistent gradient.
          if (input.grad) {
            addInto(input.grad, gi);
            gi.dispose();
          } else {
            input.grad = gi;
          }
          return;
        }
        const prev = grads.get(input);
        if (prev) {
          addInto(prev, gi);
          gi.dispose();
        } else {
          grads.set(input, gi);
        }
      });
    }
    freeSaved(node.saved, node.inputs, node.out);
    if (!kept.has(node.out) && !node.out.value.disposed) node.out.value.dispose();
    node.out.node = null;
  }
  for (const g of grads.values()) g.dispose();
  tape.length = 0;
}

/** Drops the recorded nodes without a backward (evaluation that forgot noGrad, an error path). */
export function clearTape(): void {
  for (const node of tape) {
    freeSaved(node.saved, node.inputs, node.out);
    node.out.node = null;
  }
  tape.length = 0;
}

/** Nodes currently recorded (for tests and memory reports). */
export function tapeLength(): number {
  return tape.length;
}

/**
 * Activation checkpointing: runs fn(...inputs) without keeping its activations and records one
 * node; backward recomputes fn on a tape of its own (parameters inside fn receive their
 * gradients then) and hands the input gradients on. Trades a second forward for the memory of
 * everything fn saves, per block of a large model.
 */
export function checkpoint(fn: (...xs: Var[]) => Var, ...inputs: Var[]): Var {
  const out = noGrad(() => fn(...inputs));
  return record('checkpoint', inputs, out.value, { fn: fn as unknown as number });
}

defineRule('checkpoint', (node, g) => {
  const fn = node.saved.fn as unknown as (...xs: Var[]) => Var;
  delete node.saved.fn;
  const outer = tape;
  tape = [];
  try {
    // Fresh leaves over the same values: their grads are the inputs' gradients.
    const leaves = node.inputs.map((v) => new Var(v!.value, v!.requiresGrad));
    const out = fn(...leaves);
    backward(out, kernels.copy(g));
    out.value.dispose();
    return leaves.map((l) => l.grad);
  } finally {
    tape = outer;
  }
});
