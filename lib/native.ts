// native.ts: loads mamakit.node and is the one typed mirror of everything it exports.
// Every function is synchronous; every one throws TypeError (wrong kind of argument),
// RangeError (wrong shape or value) or Error (backend failure) with the op and argument named.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Device = 'cpu' | 'cuda';
export type DType = 'f32' | 'bf16' | 'f16';

/** Storage behind a Tensor: one allocation on one device. */
export interface NativeTensor {
  readonly shape: number[];
  readonly dtype: DType;
  readonly device: Device;
  readonly disposed: boolean;
  /** Frees the memory now; later use throws. Idempotent. */
  dispose(): void;
  /** Copies to a new host Float32Array (converting bf16/f16 to f32). */
  toArray(): Float32Array;
}

export interface NativeTensorConstructor {
  /** data null: uninitialised, or filled with `fill`. */
  new (data: Float32Array | null, shape: number[], device: Device, dtype: DType, fill?: number): NativeTensor;
  /** A view of `base`'s memory from element `offset` (no copy; keeps base alive). */
  new (data: null, shape: number[], device: Device, dtype: DType, fill: undefined, base: NativeTensor, offset: number): NativeTensor;
}

export interface CudaStatus {
  /** libmamakit_cuda.so was found beside the addon. */
  built: boolean;
  /** a driver and a device answered. */
  available: boolean;
  /** the device description, or why it is unavailable: "not built: …", "no driver: …", "no device: …". */
  detail: string;
  /** the emulated CUDA library (MAMAKIT_CUDA_LIB, the test runner) runs it on the CPU: not a GPU, never timed */
  emulated: boolean;
}

export interface MemoryStats {
  /** bytes in live CPU tensors */
  liveBytes: number;
  /** their peak since the last memoryStats(true) */
  peakBytes: number;
  /** bytes the CPU backend holds from the OS (its cache of freed blocks included) */
  footprintBytes: number;
  /** the same on the CUDA device, when it is available: live and peak tensor bytes, bytes its pool holds */
  cuda?: { liveBytes: number; peakBytes: number; heldBytes: number };
}

export interface TransferStats {
  /** copies from the host to the CUDA device (uploads, staged index arrays) */
  toDevice: number;
  /** copies from the device to the host (downloads, scalars read back) */
  toHost: number;
  /** waits for the device (each copy to the host waits once) */
  syncs: number;
}

export interface BuildInfo {
  abiVersion: number;
  napiVersion: number;
  buildSystem: 'cmake-js' | 'node-gyp' | string;
  compiler: string;
  /** instruction set the CPU kernels use now, and the best this CPU supports */
  isa: 'avx512' | 'avx2' | 'scalar';
  bestIsa: 'avx512' | 'avx2' | 'scalar';
  threads: number;
  cudaBuilt: boolean;
  /** the CUDA backend is the emulated library (see CudaStatus.emulated) */
  cudaEmulated: boolean;
  cpu: string;
}

export interface DistStatus {
  /** libmamakit_mpi.so: found beside the addon (MAMAKIT_MPI_LIB names another); detail: its path,
   *  the MPI library once initialised, or why it is missing */
  mpi: { built: boolean; detail: string };
  /** NCCL entries in the CUDA library in use (false without CUDA), libnccl.so.2 opened by them (by the
   *  emulated library, only the stand-in NCCL that MAMAKIT_NCCL_LIB names);
   *  detail: the NCCL version and path, or why it cannot be used */
  nccl: { built: boolean; available: boolean; detail: string };
}

export interface DistInfo {
  rank: number;
  size: number;
  /** rank among the processes on this host (the GPU it uses) */
  localRank: number;
  backend: 'mpi' | 'single';
  detail: string;
}

export interface NativeAddon {
  NativeTensor: NativeTensorConstructor;
  backends(): Device[];
  cudaStatus(): CudaStatus;
  buildInfo(): BuildInfo;
  /** Lowers the CPU instruction set (for tests); RangeError when the CPU cannot run it. */
  setIsa(name: 'avx512' | 'avx2' | 'scalar'): void;
  noop(): void;
  noopTensor(t: NativeTensor): void;
  /** C = op(A)·op(B) (+bias) (+C when accumulate); returns `out` or a new tensor in `outDtype`
   *  (null: out's dtype, else a's). The output is a's dtype, or f32 when a is bf16/f16. */
  matmul(
    a: NativeTensor,
    b: NativeTensor,
    bias: NativeTensor | null,
    out: NativeTensor | null,
    transA: boolean,
    transB: boolean,
    accumulate: boolean,
    outDtype: DType | null,
  ): NativeTensor;
  /** LayerNorm over the last dim; returns [y, mean [R], rstd [R]] (stats f32). */
  layerNorm(x: NativeTensor, w: NativeTensor | null, b: NativeTensor | null, eps: number): [NativeTensor, NativeTensor, NativeTensor];
  /** Returns dx; dw, db (when given) accumulate Σ dy·x̂ and Σ dy. */
  layerNormBackward(dy: NativeTensor, x: NativeTensor, mean: NativeTensor, rstd: NativeTensor, w: NativeTensor | null, dw: NativeTensor | null, db: NativeTensor | null): NativeTensor;
  gelu(x: NativeTensor, tanh: boolean): NativeTensor;
  geluBackward(dy: NativeTensor, x: NativeTensor, tanh: boolean): NativeTensor;
  /** logits [R,C], targets [R] in [0,C) or < 0 (ignored); returns [loss [R], lse [R]]. */
  softmaxCrossEntropy(logits: NativeTensor, targets: Int32Array): [NativeTensor, NativeTensor];
  /** dlogits = scale·(softmax − onehot), 0 on ignored rows. */
  softmaxCrossEntropyBackward(logits: NativeTensor, lse: NativeTensor, targets: Int32Array, scale: number): NativeTensor;
  /** y = x / max(‖x‖, eps) per row; returns [y, norm [R]]. */
  l2Normalize(x: NativeTensor, eps: number): [NativeTensor, NativeTensor];
  l2NormalizeBackward(dy: NativeTensor, y: NativeTensor, norm: NativeTensor, eps: number): NativeTensor;
  /** x + s⊙h with s = gamma [D] or alpha. */
  residual(x: NativeTensor, h: NativeTensor, gamma: NativeTensor | null, alpha: number): NativeTensor;
  /** Returns dh = s⊙dy; dGamma (when given) accumulates Σ h⊙dy. */
  residualBackward(dy: NativeTensor, h: NativeTensor, gamma: NativeTensor | null, alpha: number, dGamma: NativeTensor | null): NativeTensor;
  meanPool(x: NativeTensor): NativeTensor;
  meanPoolBackward(dy: NativeTensor, L: number): NativeTensor;
  embedding(table: NativeTensor, ids: Int32Array): NativeTensor;
  /** Accumulates the scatter of dy into dTable and returns it. */
  embeddingBackward(dy: NativeTensor, ids: Int32Array, dTable: NativeTensor): NativeTensor;
  /** Returns [y, mean [C], rstd [C]]; running stats update in place when training. */
  batchNorm(x: NativeTensor, w: NativeTensor | null, b: NativeTensor | null, runningMean: NativeTensor | null, runningVar: NativeTensor | null, training: boolean, momentum: number, eps: number): [NativeTensor, NativeTensor, NativeTensor];
  batchNormBackward(dy: NativeTensor, x: NativeTensor, mean: NativeTensor, rstd: NativeTensor, w: NativeTensor | null, training: boolean, dw: NativeTensor | null, db: NativeTensor | null): NativeTensor;
  dropout(x: NativeTensor, p: number, seed: number, offset: number): NativeTensor;
  /** In place over [offset, offset + length) of the arenas. */
  adamw(p: NativeTensor, g: NativeTensor, m: NativeTensor, v: NativeTensor, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, bc1: number, bc2: number, gradScale: number, offset?: number, length?: number): void;
  sgd(p: NativeTensor, g: NativeTensor, buf: NativeTensor | null, lr: number, momentum: number, weightDecay: number, gradScale: number, offset?: number, length?: number): void;
  /** Σ x², accumulated in double. */
  sumSquares(x: NativeTensor): number;
  copy(src: NativeTensor, dst: NativeTensor | null): NativeTensor;
  /** x = value in place; returns x. */
  fill(x: NativeTensor, value: number): NativeTensor;
  /** src in another dtype on the same device, into dst when given; returns it. */
  cast(src: NativeTensor, dtype: DType, dst: NativeTensor | null): NativeTensor;
  /** y += alpha·x in place; returns y. */
  axpy(y: NativeTensor, x: NativeTensor, alpha: number): NativeTensor;
  /** x *= alpha in place; returns x. */
  scale(x: NativeTensor, alpha: number | NativeTensor): NativeTensor;
  relu(x: NativeTensor): NativeTensor;
  reluBackward(dy: NativeTensor, x: NativeTensor): NativeTensor;
  /** CPU tensor memory (live bytes, their peak since the last reset, bytes held from the OS), and CUDA's when available. */
  memoryStats(reset?: boolean): MemoryStats;
  /** Host↔device copies and waits for the device since the CUDA backend started. */
  transferStats(): TransferStats;
  copy2d(src: NativeTensor, dst: NativeTensor, rows: number, cols: number, srcOffset: number, srcStride: number, dstOffset: number, dstStride: number): NativeTensor;
  /** images [B,C,H,W], weight [D,C·p·p] → tokens [B,Np,D], or written into out [B,T,D] at offset (default T − Np). */
  patchEmbed(images: NativeTensor, weight: NativeTensor, bias: NativeTensor | null, pos: NativeTensor | null, patch: number, out: NativeTensor | null, offset: number | undefined): NativeTensor;
  /** Returns [dWeight, dBias, dPos]: the given ones accumulated into, the others created from zero. */
  patchEmbedBackward(images: NativeTensor, dTokens: NativeTensor, patch: number, offset: number | undefined, dWeight: NativeTensor | null, dBias: NativeTensor | null, dPos: NativeTensor | null): [NativeTensor, NativeTensor, NativeTensor];
  /** pos [h0·w0, D] → [h1·w1, D]; scales are source steps per output pixel. */
  interpolatePos(pos: NativeTensor, h0: number, w0: number, h1: number, w1: number, scaleH: number, scaleW: number): NativeTensor;
  interpolatePosBackward(dy: NativeTensor, h0: number, w0: number, h1: number, w1: number, scaleH: number, scaleW: number): NativeTensor;
  /** q [B,Lq,H,Dh], k, v [B,Lk,H,Dh] → [out, lse [B,H,Lq]]; scale undefined: 1/√Dh; p undefined: no dropout. */
  flashAttention(q: NativeTensor, k: NativeTensor, v: NativeTensor, causal: boolean, scale: number | undefined, kvLens: Int32Array | null,
    p: number | null | undefined, seed: number | undefined, offset: number | undefined): [NativeTensor, NativeTensor];
  /** Returns [loss, dLogitScale (f32 [1] each), dImg, dTxt, dImgAll | null, dTxtAll | null]. */
  clipLoss(img: NativeTensor, txt: NativeTensor, logitScale: number | NativeTensor, imgAll: NativeTensor | null, txtAll: NativeTensor | null, offset: number | undefined): [NativeTensor, NativeTensor, NativeTensor, NativeTensor, NativeTensor | null, NativeTensor | null];
  /** Returns [loss (f32 [1]), dZ0, dZ1]. */
  ntXent(z0: NativeTensor, z1: NativeTensor, temperature: number): [NativeTensor, NativeTensor, NativeTensor];
  /** Returns [loss, dLocalScale (f32 [1] each), dPatches, dSentences, dPatchesAll | null, dSentencesAll | null]. */
  localAlignLoss(patches: NativeTensor, sentences: NativeTensor, counts: Int32Array, localScale: number | NativeTensor, patchesAll: NativeTensor | null, sentencesAll: NativeTensor | null, countsAll: Int32Array | null, offset: number | undefined): [NativeTensor, NativeTensor, NativeTensor, NativeTensor, NativeTensor | null, NativeTensor | null];
  /** The collective backends this build has and can load. */
  distStatus(): DistStatus;
  /** Starts MPI (mpi true; Error when the MPI library is missing) or one process; once. */
  distInit(mpi: boolean, timeoutS: number): DistInfo;
  /** In place over [offset, offset + length) (default: all); returns t. Every rank must call the same
   *  (RangeError on every rank when they differ); Error when the transport fails or times out. */
  distAllReduce(t: NativeTensor, op: 'sum' | 'mean', offset?: number, length?: number): NativeTensor;
  /** t [n, …] → [size·n, …], every rank's t in rank order. */
  distAllGather(t: NativeTensor): NativeTensor;
  /** t overwritten with root's t; returns t. */
  distBroadcast(t: NativeTensor, root: number): NativeTensor;
  distBarrier(): void;
  /** Writes message to stderr; under MPI ends every rank (does not return); one process: returns. */
  distAbort(message: string, code: number): void;
  /** Ends the communicators (a rank that finished normally; every rank must). */
  distFinalize(): void;
  flashAttentionBackward(q: NativeTensor, k: NativeTensor, v: NativeTensor, out: NativeTensor, lse: NativeTensor, dOut: NativeTensor, causal: boolean, scale: number | undefined, kvLens: Int32Array | null,
    p: number | null | undefined, seed: number | undefined, offset: number | undefined): [NativeTensor, NativeTensor, NativeTensor];
}

const require = createRequire(import.meta.url);
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function load(): NativeAddon {
  // MAMAKIT_ADDON points at another build of the addon (the node-gyp one, in CI).
  const explicit = process.env.MAMAKIT_ADDON;
  if (explicit) return require(explicit) as NativeAddon;
  const bindings = require('bindings') as (opts: { bindings: string; module_root: string }) => unknown;
  return bindings({ bindings: 'mamakit.node', module_root: packageRoot }) as NativeAddon;
}

export const native: NativeAddon = load();
