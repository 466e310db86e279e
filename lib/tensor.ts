// tensor.ts: Tensor, the public n-d array: shape, dtype, device and native storage. No
// autograd logic lives here.
import { native, type Device, type DType, type MemoryStats, type NativeTensor, type TransferStats } from './native.js';

export type { Device, DType, MemoryStats, TransferStats };

export interface TensorOptions {
  device?: Device;
  dtype?: DType;
}

export class Tensor {
  /** @internal */
  readonly native: NativeTensor;

  /** @internal Wraps native storage; use Tensor.fromArray, Tensor.empty or Tensor.full. */
  constructor(storage: NativeTensor) {
    this.native = storage;
  }

  /** Copies `data` (row-major, length = product of `shape`) to a new tensor. */
  static fromArray(data: Float32Array, shape: readonly number[], opts: TensorOptions = {}): Tensor {
    return new Tensor(new native.NativeTensor(data, shapeArg(shape), opts.device ?? 'cpu', opts.dtype ?? 'f32'));
  }

  /** A tensor whose contents are unspecified (they may be NaN). */
  static empty(shape: readonly number[], opts: TensorOptions = {}): Tensor {
    return new Tensor(new native.NativeTensor(null, shapeArg(shape), opts.device ?? 'cpu', opts.dtype ?? 'f32'));
  }

  static full(shape: readonly number[], value: number, opts: TensorOptions = {}): Tensor {
    return new Tensor(new native.NativeTensor(null, shapeArg(shape), opts.device ?? 'cpu', opts.dtype ?? 'f32', value));
  }

  static zeros(shape: readonly number[], opts: TensorOptions = {}): Tensor {
    return Tensor.full(shape, 0, opts);
  }

  get shape(): number[] {
    return this.native.shape;
  }
  get dtype(): DType {
    return this.native.dtype;
  }
  get device(): Device {
    return this.native.device;
  }
  get disposed(): boolean {
    return this.native.disposed;
  }
  /** Number of elements. */
  get size(): number {
    return this.native.shape.reduce((a, b) => a * b, 1);
  }

  /** Copies to the host as f32. */
  toArray(): Float32Array {
    return this.native.toArray();
  }

  /**
   * A copy on another device and/or dtype. Another dtype on the same device converts there
   * (no host copy); another device goes through the host.
   */
  to(opts: TensorOptions): Tensor {
    const device = opts.device ?? this.device, dtype = opts.dtype ?? this.dtype;
    if (device === this.device) return new Tensor(native.cast(this.native, dtype, null));
    return Tensor.fromArray(this.toArray(), this.shape, { device, dtype });
  }

  /**
   * A tensor of `shape` over this one's memory from element `offset` (no copy): writes through
   * either show in both. The view keeps this tensor alive; this one cannot be disposed while a
   * view of it is.
   */
  view(offset: number, shape: readonly number[]): Tensor {
    return new Tensor(new native.NativeTensor(null, shapeArg(shape), this.device, this.dtype, undefined, this.native, offset));
  }

  /** The same memory with another shape of the same size. */
  reshape(shape: readonly number[]): Tensor {
    const n = Array.isArray(shape) ? shape.reduce((a, b) => a * b, 1) : NaN;
    if (n !== this.size) throw new RangeError(`reshape: ${JSON.stringify(shape)} has ${n} elements, the tensor ${JSON.stringify(this.shape)} has ${this.size}`);
    return this.view(0, shape);
  }

  /** Frees the storage now; using the tensor afterwards throws. Idempotent. */
  dispose(): void {
    this.native.dispose();
  }

  toString(): string {
    return `Tensor(${JSON.stringify(this.shape)}, ${this.dtype}, ${this.device}${this.disposed ? ', disposed' : ''})`;
  }
}

/**
 * A new tensor on x's device, with x's dtype unless `dtype` says otherwise: contents unspecified,
 * or `fill` everywhere (filled on the device). Code that makes tensors from other tensors
 * allocates through this, so that a model placed on a device stays there.
 */
export function like(x: Tensor, shape: readonly number[] = x.shape, o: { fill?: number; dtype?: DType } = {}): Tensor {
  const opts = { device: x.device, dtype: o.dtype ?? x.dtype };
  return o.fill === undefined ? Tensor.empty(shape, opts) : Tensor.full(shape, o.fill, opts);
}

// A copy of an array shape; anything else goes to the addon as is, to be named in its error.
function shapeArg(shape: readonly number[]): number[] {
  return Array.isArray(shape) ? [...shape] : (shape as unknown as number[]);
}

/** The storage of a Tensor argument, or the value itself so that the addon names what it got. */
export function storage(t: unknown): NativeTensor {
  return (t instanceof Tensor ? t.native : t) as NativeTensor;
}

/** Devices usable in this process: ['cpu'] or ['cpu', 'cuda']. */
export function backends(): Device[] {
  return native.backends();
}

export function cudaStatus() {
  return native.cudaStatus();
}

export function buildInfo() {
  return native.buildInfo();
}

/**
 * Tensor memory: on the CPU, bytes in live tensors, their peak since the last
 * `memoryStats(true)` (which restarts it), and the bytes the backend holds from the OS (its
 * cache included); `cuda` the same for the device when it is available.
 */
export function memoryStats(reset = false): MemoryStats {
  return native.memoryStats(reset);
}

/** Host↔device copies and waits for the device since the CUDA backend started (all 0 without it). */
export function transferStats(): TransferStats {
  return native.transferStats();
}
