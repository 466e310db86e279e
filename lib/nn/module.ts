// module.ts: parameters, modules and the arena they live in. A module declares its parameters
// (Hugging Face names, shapes, initial values, whether weight decay applies); materialize()
// then places every value in one f32 arena and every gradient in another, as views, so that
// the optimiser updates the whole model with one native call per group.
import { Var } from '../autograd/tape.js';
import * as kernels from '../kernels/index.js';
import { Tensor, type Device, type DType } from '../tensor.js';

export class Param extends Var {
  constructor(
    name: string,
    readonly init: Float32Array,
    readonly pshape: number[],
    /** weight decay applies (not to norms, biases, tokens, scales) */
    readonly decay: boolean,
    trainable = true,
    /** the shape Hugging Face stores (a Conv2d kernel [D,C,p,p] for our [D, C·p·p]) */
    readonly hfShape: number[] = pshape,
  ) {
    // Until materialize(), the value is a placeholder of the right shape.
    super(null as unknown as Tensor, trainable, name);
  }
  /** the f32 master value when the arena computes in 16 bits (the optimizer's; `value` follows it) */
  master: Tensor | null = null;
  /** kept in f32 whatever the arena's dtype: statistics that kernels update in place (BatchNorm's) */
  keepF32 = false;
  override get shape(): number[] {
    return this.pshape;
  }
}

/** Seeded normal(0, std) truncated at ±2 std (timm's trunc_normal_), for reproducible inits. */
export class InitRng {
  private s: bigint;
  constructor(seed: number) {
    this.s = BigInt(seed) | 1n;
  }
  private u(): number {
    // splitmix64
    this.s = (this.s + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
    let z = this.s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
    return Number((z ^ (z >> 31n)) >> 11n) / 2 ** 53;
  }
  truncNormal(n: number, std: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let x: number;
      do x = Math.sqrt(-2 * Math.log(this.u() || 1e-300)) * Math.cos(2 * Math.PI * this.u());
      while (Math.abs(x) > 2);
      out[i] = x * std;
    }
    return out;
  }
}

export abstract class Module {
  private readonly own: Param[] = [];
  private readonly kids: Array<[string, Module]> = [];

  protected param(name: string, shape: number[], init: Float32Array | number, decay: boolean, hfShape?: number[]): Param {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = typeof init === 'number' ? new Float32Array(n).fill(init) : init;
    if (data.length !== n) throw new RangeError(`${name}: initial value has ${data.length} elements, shape ${JSON.stringify(shape)} needs ${n}`);
    const p = new Param(name, data, shape, decay, true, hfShape ?? shape);
    this.own.push(p);
    return p;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this.kids.push([name, m]);
    return m;
  }

  /** Every parameter with its dotted name, in declaration order. */
  namedParameters(prefix = ''): Array<[string, Param]> {
    const out: Array<[string, Param]> = this.own.map((p) => [prefix + p.name, p]);
    // An empty name merges a child's parameters into this level (an adapter around a layer).
    for (const [name, m] of this.kids) out.push(...m.namedParameters(name ? `${prefix}${name}.` : prefix));
    return out;
  }

  parameterCount(): number {
    return this.namedParameters().reduce((s, [, p]) => s + p.init.length, 0);
  }
}

/** A named level of the parameter tree with no parameters of its own (HF's `attention.attention`). */
export class Group extends Module {
  add<M extends Module>(name: string, m: M): M {
    return this.child(name, m);
  }
  addParam(name: string, shape: number[], init: Float32Array | number, decay: boolean, trainable = true): Param {
    const p = this.param(name, shape, init, decay);
    p.requiresGrad = trainable;
    return p;
  }
}

/** Where a group of parameters lies in the arenas. */
export interface Range {
  offset: number;
  length: number;
}

export interface ParamArenaOptions {
  /** where the values and gradients live (default 'cpu') */
  device?: Device;
  /**
   * the dtype the model computes in (default 'f32'). In bf16 or f16 (CUDA only) the parameters
   * the model reads and their gradients are 16-bit copies of an f32 master arena, which the
   * optimizer updates and checkpoints save (mixed precision); BatchNorm statistics stay f32.
   */
  dtype?: DType;
}

/**
 * The parameters of a module in one f32 arena on one device (trainable with decay, trainable
 * without, frozen last), and the gradients of the trainable ones in another arena of the same
 * layout over that prefix: frozen parameters have a value and nothing else. With a 16-bit dtype
 * the model reads `compute`, a copy of `values` in that dtype, refreshed by sync().
 */
export class ParamArena {
  readonly values: Tensor;
  /** [trainable.length]: the gradients of values[0 .. trainable.length) */
  readonly grads: Tensor;
  readonly decay: Range;
  readonly noDecay: Range;
  readonly trainable: Range;
  readonly params: Array<[string, Param]>;
  /** Every parameter with its place in the arena, in arena order. */
  readonly layout: ReadonlyArray<{ name: string; param: Param; offset: number; length: number }>;

  constructor(module: Module, opts: ParamArenaOptions = {}) {
    this.params = module.namedParameters();
    const groups = [
      this.params.filter(([, p]) => p.requiresGrad && p.decay),
      this.params.filter(([, p]) => p.requiresGrad && !p.decay),
      this.params.filter(([, p]) => !p.requiresGrad),
    ];
    const total = this.params.reduce((s, [, p]) => s + p.init.length, 0);
    const host = new Float32Array(total);
    let off = 0;
    const offsets = new Map<Param, number>();
    const sizes = groups.map((g) => {
      const start = off;
      for (const [, p] of g) {
        offsets.set(p, off);
        host.set(p.init, off);
        off += p.init.length;
      }
      return off - start;
    });
    const device = opts.device ?? 'cpu', dtype = opts.dtype ?? 'f32';
    if (dtype !== 'f32' && device !== 'cuda') throw new RangeError(`ParamArena: dtype ${dtype} needs device cuda (the CPU computes in f32)`);
    this.values = Tensor.fromArray(host, [total], { device });
    this.compute = dtype === 'f32' ? this.values : kernels.cast(this.values, dtype);
    // A model with nothing to train still gets a one-element arena (tensors are never empty).
    this.grads = Tensor.zeros([Math.max(1, sizes[0] + sizes[1])], { device, dtype });
    this.decay = { offset: 0, length: sizes[0] };
    this.noDecay = { offset: sizes[0], length: sizes[1] };
    this.trainable = { offset: 0, length: sizes[0] + sizes[1] };
    this.layout = this.params.map(([name, param]) => ({ name, param, offset: offsets.get(param)!, length: param.init.length })).sort((a, b) => a.offset - b.offset);
    for (const [, p] of this.params) {
      const o = offsets.get(p)!, mixed = this.compute !== this.values && !p.keepF32;
      p.value = (mixed ? this.compute : this.values).view(o, p.shape);
      p.master = mixed ? this.values.view(o, p.shape) : null;
      if (p.requiresGrad) p.grad = this.grads.view(o, p.shape);
    }
  }

  /** the parameters' values as the model reads them: `values` itself in f32, a 16-bit copy otherwise */
  readonly compute: Tensor;

  get dtype(): DType {
    return this.compute.dtype;
  }

  /** After the f32 values changed (an optimizer step, a checkpoint loaded), the compute copy follows. */
  sync(range: Range = { offset: 0, length: this.values.size }): void {
    if (this.compute === this.values || !range.length) return;
    const src = this.values.view(range.offset, [range.length]), dst = this.compute.view(range.offset, [range.length]);
    kernels.cast(src, this.compute.dtype, dst);
    src.dispose(), dst.dispose();
  }

  get device(): Device {
    return this.values.device;
  }

  /** Gradients to zero, in place (one fill over the gradient arena). */
  zeroGrad(): void {
    kernels.fill(this.grads, 0);
  }

  /** The values of the trainable parameters, values[0 .. trainable.length): the optimizer's arena. */
  trainableValues(): Tensor {
    return this.values.view(0, [this.grads.size]);
  }
}
