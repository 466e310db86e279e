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
  /** U(-bound, bound) */
  uniform(n: number, bound: number): Float32Array {
    return Float32Array.from({ length: n }, () => (2 * this.u() - 1) * bound);
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
  private mode = true;

  /**
   * Training mode (the default): dropout draws masks and BatchNorm uses batch statistics;
   * evaluation mode is deterministic. Setting it sets every submodule.
   */
  get training(): boolean {
    return this.mode;
  }
  set training(t: boolean) {
    this.mode = t;
    for (const [, m] of this.kids) m.training = t;
  }

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
   * the dtype the model computes in (default 'f32'). In bf16 or f16 (CUDA only, mixed
   * precision) the model reads 16-bit copies of the parameters; trainable ones keep an f32
   * master, which the optimizer updates and checkpoints save, and f32 gradients; frozen ones are
   * the 16-bit copy alone; BatchNorm statistics stay f32.
   */
  dtype?: DType;
}

/**
 * The parameters of a module in arenas on one device, in one order: trainable with decay,
 * trainable without, frozen. `values` holds them in f32 — in mixed precision only the trainable
 * ones and frozen ones kept in f32 (BatchNorm statistics), which come right after them — and
 * `compute` every parameter in the model's dtype (`values` itself in f32), refreshed from the
 * masters by sync(). The gradients of the trainable ones are f32 in an arena over that prefix:
 * frozen parameters have a value and nothing else.
 */
export class ParamArena {
  /** [master length] f32: every parameter in f32, or in mixed precision the masters */
  readonly values: Tensor;
  /** [trainable.length] f32: the gradients of values[0 .. trainable.length) */
  readonly grads: Tensor;
  readonly decay: Range;
  readonly noDecay: Range;
  readonly trainable: Range;
  readonly params: Array<[string, Param]>;
  /** Every parameter with its place in the arena, in arena order. */
  readonly layout: ReadonlyArray<{ name: string; param: Param; offset: number; length: number }>;
  /** [total]: the parameters' values as the model reads them, `values` itself in f32 */
  readonly compute: Tensor;

  constructor(module: Module, opts: ParamArenaOptions = {}) {
    this.params = module.namedParameters();
    const device = opts.device ?? 'cpu', dtype = opts.dtype ?? 'f32', mixed = dtype !== 'f32';
    if (mixed && device !== 'cuda') throw new RangeError(`ParamArena: dtype ${dtype} needs device cuda (the CPU computes in f32)`);
    const frozen = this.params.filter(([, p]) => !p.requiresGrad);
    const groups = [
      this.params.filter(([, p]) => p.requiresGrad && p.decay),
      this.params.filter(([, p]) => p.requiresGrad && !p.decay),
      frozen.filter(([, p]) => p.keepF32),
      frozen.filter(([, p]) => !p.keepF32),
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
    const masters = (this.masters = mixed ? sizes[0] + sizes[1] + sizes[2] : total);
    this.values = Tensor.fromArray(host.subarray(0, Math.max(1, masters)), [Math.max(1, masters)], { device });
    this.compute = mixed ? Tensor.fromArray(host, [total], { device, dtype }) : this.values;
    // A model with nothing to train still gets a one-element arena (tensors are never empty).
    this.grads = Tensor.zeros([Math.max(1, sizes[0] + sizes[1])], { device });
    this.decay = { offset: 0, length: sizes[0] };
    this.noDecay = { offset: sizes[0], length: sizes[1] };
    this.trainable = { offset: 0, length: sizes[0] + sizes[1] };
    this.layout = this.params.map(([name, param]) => ({ name, param, offset: offsets.get(param)!, length: param.init.length })).sort((a, b) => a.offset - b.offset);
    for (const [, p] of this.params) {
      const o = offsets.get(p)!;
      p.value = (mixed && !p.keepF32 ? this.compute : this.values).view(o, p.shape);
      p.master = mixed && p.requiresGrad ? this.values.view(o, p.shape) : null;
      if (p.requiresGrad) p.grad = this.grads.view(o, p.shape);
    }
  }

  get dtype(): DType {
    return this.compute.dtype;
  }

  /** After the f32 masters changed (an optimizer step, a checkpoint loaded), the compute copy follows. */
  sync(range: Range = this.trainable): void {
    if (this.compute === this.values || !range.length) return;
    const src = this.values.view(range.offset, [range.length]), dst = this.compute.view(range.offset, [range.length]);
    kernels.cast(src, this.compute.dtype, dst);
    src.dispose(), dst.dispose();
  }

  get device(): Device {
    return this.values.device;
  }

  /** Every parameter's value in f32, in arena order ([total]; two copies from the device in mixed precision). */
  read(): Float32Array {
    const total = this.compute.size, out = new Float32Array(total), masters = this.masters;
    out.set(this.values.toArray().subarray(0, masters));
    if (masters < total) {
      const rest = this.compute.view(masters, [total - masters]);
      out.set(rest.toArray(), masters);
      rest.dispose();
    }
    return out;
  }

  /** The reverse of read(): every parameter from f32 values in arena order (16-bit ones rounded). */
  write(all: Float32Array): void {
    const total = this.compute.size, masters = this.masters;
    if (all.length !== total) throw new RangeError(`ParamArena: ${all.length} values written, the arena holds ${total}`);
    const put = (dst: Tensor, data: Float32Array) => {
      const src = Tensor.fromArray(data, [data.length], { device: dst.device, dtype: dst.dtype });
      kernels.copy(src, dst);
      src.dispose(), dst.dispose();
    };
    put(this.values.view(0, [masters]), all.subarray(0, masters));
    if (masters < total) put(this.compute.view(masters, [total - masters]), all.subarray(masters));
    this.sync();
  }

  // Elements of `values` that hold parameters (its one-element placeholder excluded).
  private readonly masters: number;

  /** Gradients to zero, in place (one fill over the gradient arena). */
  zeroGrad(): void {
    kernels.fill(this.grads, 0);
  }

  /** The values of the trainable parameters, values[0 .. trainable.length): the optimizer's arena. */
  trainableValues(): Tensor {
    return this.values.view(0, [this.grads.size]);
  }
}
