// ops.ts: the differentiable ops: each forward runs kernels and records what its backward
// needs; every derivative rule is in the table at the end of this file (defineRule).
// Shapes: x [..., D] means any leading dimensions, flattened to rows for the GEMMs.
import * as kernels from '../kernels/index.js';
import { like, Tensor } from '../tensor.js';
import { addInto, defineRule, record, type Node, Var } from './tape.js';


// C [R, N] written through a 2-D view of `out` (any shape of R·N elements).
function matmulInto(out: Tensor, a: Tensor, b: Tensor, opts: kernels.MatmulOptions & { M: number; K: number; N: number }) {
  const a2 = a.view(0, opts.transA ? [opts.K, opts.M] : [opts.M, opts.K]), b2 = b.view(0, opts.transB ? [opts.N, opts.K] : [opts.K, opts.N]);
  const o2 = out.view(0, [opts.M, opts.N]);
  try {
    kernels.matmul(a2, b2, { transA: opts.transA, transB: opts.transB, bias: opts.bias, out: o2, accumulate: opts.accumulate });
  } finally {
    a2.dispose(), b2.dispose(), o2.dispose();
  }
  return out;
}

// A new tensor for v's gradient, in the dtype of v's own gradient where it has one: a parameter's
// in mixed precision is f32 beside its 16-bit value, and the GEMMs that produce it write f32
// from 16-bit operands (one rounding, no 16-bit intermediate).
function gradFor(v: Var): Tensor {
  return like(v.value, undefined, { dtype: v.grad?.dtype ?? v.value.dtype });
}

// Column sums of g [R, N] as [N] into out (a bias gradient): onesᵀ·g.
function columnSums(g: Tensor, N: number, out: Tensor): Tensor {
  const R = g.size / N, ones = like(g, [R], { fill: 1 });
  matmulInto(out, ones, g, { M: 1, K: R, N });
  ones.dispose();
  return out;
}

/** a·t as a new tensor. */
function scaled(t: Tensor, a: number): Tensor {
  return kernels.residual(t, t, { alpha: a - 1 });
}

/**
 * x [..., in] · Wᵀ + b with W [out, in] (PyTorch's Linear layout), or x · W + b with W [in, out]
 * when inOut (GPT-2's Conv1D); y has outShape or [..., out].
 */
export function linear(x: Var, w: Var, b: Var | null, outShape?: number[], inOut = false): Var {
  const [N, K] = inOut ? [w.shape[1], w.shape[0]] : w.shape, M = x.value.size / K;
  if (!Number.isInteger(M)) throw new RangeError(`linear: x ${JSON.stringify(x.shape)} does not split into rows of ${K}`);
  const y = like(x.value, outShape ?? [...x.shape.slice(0, -1), N]);
  matmulInto(y, x.value, w.value, { M, K, N, transB: !inOut, bias: b?.value ?? null });
  return record('linear', [x, w, b], y, { M, K, N, inOut });
}

/** Rows of table at ids: [...shape, D] (shape's product = ids.length). */
export function embedding(table: Var, ids: Int32Array, shape: number[]): Var {
  const D = table.shape[1], flat = kernels.embedding(table.value, ids);
  const y = like(table.value, [...shape, D]);
  kernels.copy2d(flat, y, { rows: 1, cols: flat.size });
  flat.dispose();
  return record('embedding', [table], y, { ids });
}

/** Columns start .. start+cols of x [..., C] as [..., cols] (or outShape): a slice of a fused projection. */
export function columns(x: Var, start: number, cols: number, outShape?: number[]): Var {
  const C = x.shape[x.shape.length - 1], R = x.value.size / C;
  const y = like(x.value, outShape ?? [...x.shape.slice(0, -1), cols]);
  kernels.copy2d(x.value, y, { rows: R, cols, srcOffset: start, srcStride: C });
  return record('columns', [x], y, { start, cols, C, R });
}

/**
 * BatchNorm1d over x [R, C] (batch statistics when training, updating the running ones in
 * place; the running ones otherwise). weight, bias [C] or null.
 */
export function batchNorm(x: Var, weight: Var | null, bias: Var | null, o: { running?: [Tensor, Tensor]; training: boolean; momentum?: number; eps?: number }): Var {
  const r = kernels.batchNorm(x.value, {
    weight: weight?.value ?? null, bias: bias?.value ?? null, runningMean: o.running?.[0] ?? null, runningVar: o.running?.[1] ?? null,
    training: o.training, momentum: o.momentum, eps: o.eps,
  });
  return record('batchNorm', [x, weight, bias], r.y, { mean: r.mean, rstd: r.rstd, training: o.training });
}

/** What syncBatchNorm needs of a communicator (dist.Communicator has it). */
export interface Reducer extends Gatherer {
  /** t = Σ over ranks of t, in place, the same bits on every rank */
  allReduce(t: Tensor): Tensor;
}

/**
 * batchNorm over every rank's rows (PyTorch's SyncBatchNorm): in training, each rank's count,
 * mean and M2 (Σ(x − mean)², not Σx²: no cancellation where |mean| ≫ std) are gathered and
 * combined in rank order in f64 (Chan et al.), so every rank normalises by the same mean and
 * biased variance of the concatenated rows and moves its running statistics toward the same
 * mean and unbiased variance; the backward sums Σdy and Σdy·x̂ over the ranks, so dx is one
 * process's over the concatenation (times what the ranks scaled dy by), while dWeight and dBias
 * stay this rank's sums (the data-parallel gradient mean combines them). One rank, or
 * evaluation: batchNorm itself. Every rank must call it in the same order with the same C.
 */
export function syncBatchNorm(x: Var, weight: Var | null, bias: Var | null, o: { running?: [Tensor, Tensor]; training: boolean; momentum?: number; eps?: number; comm: Reducer }): Var {
  if (!o.training || o.comm.size === 1) return batchNorm(x, weight, bias, o);
  if (x.shape.length !== 2) throw new RangeError(`syncBatchNorm: x must be 2-D [R, C], got [${x.shape.join(', ')}]`);
  const [R, C] = x.shape, device = x.value.device, f32 = (a: ArrayLike<number>) => Tensor.fromArray(Float32Array.from(a), [C], { device });
  // This rank's mean and biased variance: with eps 0 the kernel's rstd is 1/√var (its y is unused).
  const loc = kernels.batchNorm(x.value, { training: true, eps: 0 }), mu = loc.mean.toArray(), rs = loc.rstd.toArray();
  loc.y.dispose(), loc.mean.dispose(), loc.rstd.dispose();
  const mine = new Float32Array(1 + 2 * C); // [count, mean [C], M2 [C]]
  mine[0] = R, mine.set(mu, 1);
  for (let c = 0; c < C; c++) mine[1 + C + c] = R / (rs[c] * rs[c]);
  const t = Tensor.fromArray(mine, [1, 1 + 2 * C], { device }), gathered = o.comm.allGather(t), all = gathered.toArray(); // [size, 1 + 2C]
  t.dispose(), gathered.dispose();
  let n = 0;
  const mean = new Float64Array(C), m2 = new Float64Array(C);
  for (let r = 0; r < o.comm.size; r++) {
    const row = all.subarray(r * (1 + 2 * C)), nb = row[0], tot = n + nb;
    for (let c = 0; c < C; c++) {
      const d = row[1 + c] - mean[c];
      mean[c] += (d * nb) / tot, m2[c] += row[1 + C + c] + (d * d * n * nb) / tot;
    }
    n = tot;
  }
  const gMean = f32(mean), gVar = f32(m2.map((v) => v / n));
  const r = kernels.batchNorm(x.value, { weight: weight?.value ?? null, bias: bias?.value ?? null, runningMean: gMean, runningVar: gVar, training: false, eps: o.eps });
  gMean.dispose(), gVar.dispose();
  if (o.running) {
    const m = o.momentum ?? 0.1, unbiased = f32(m2.map((v) => v / (n - 1)));
    for (const [run, stat] of [[o.running[0], r.mean], [o.running[1], unbiased]] as const) kernels.axpy(kernels.scale(run, 1 - m), stat, m);
    unbiased.dispose();
  }
  const out = record('syncBatchNorm', [x, weight, bias], r.y, { mean: r.mean, rstd: r.rstd, n });
  syncComms.set(out, o.comm);
  return out;
}
// The communicator of a syncBatchNorm output, for its backward (a node saves tensors and numbers only).
const syncComms = new WeakMap<Var, Reducer>();

/** pos [1 + h0·w0, D] (CLS first) → [1 + h1·w1, D]: the patch grid resampled bicubically (DINOv2). */
export function interpolatePos(pos: Var, from: [number, number], to: [number, number]): Var {
  const D = pos.shape[1], n0 = from[0] * from[1], n1 = to[0] * to[1];
  const grid = pos.value.view(D, [n0, D]);
  const moved = kernels.interpolatePos(grid, { from, to });
  grid.dispose();
  const y = like(pos.value, [1 + n1, D]);
  kernels.copy2d(pos.value, y, { rows: 1, cols: D });
  kernels.copy2d(moved, y, { rows: 1, cols: n1 * D, dstOffset: D });
  moved.dispose();
  return record('interpolatePos', [pos], y, { from: [...from], to: [...to] });
}

/** Tokens start .. start+count of x [B, T, D] as [B, count, D] (the patch tokens of a ViT). */
export function tokens(x: Var, start: number, count: number): Var {
  const [B, T, D] = x.shape;
  const y = like(x.value, [B, count, D]);
  kernels.copy2d(x.value, y, { rows: B, cols: count * D, srcOffset: start * D, srcStride: T * D });
  return record('tokens', [x], y, { start, count });
}

/** x + alpha·h. */
export function addScaled(x: Var, h: Var, alpha: number): Var {
  return record('addScaled', [x, h], kernels.residual(x.value, h.value, { alpha }), { alpha });
}

/** Inverted dropout with a counter-based mask (seed, offset); identity when p = 0. */
export function dropout(x: Var, p: number, seed: number, offset = 0): Var {
  if (p === 0) return x;
  return record('dropout', [x], kernels.dropout(x.value, { p, seed, offset }), { p, seed, offset });
}

export function layerNorm(x: Var, w: Var | null, b: Var | null, eps = 1e-6): Var {
  const r = kernels.layerNorm(x.value, w?.value ?? null, b?.value ?? null, { eps });
  return record('layerNorm', [x, w, b], r.y, { mean: r.mean, rstd: r.rstd });
}

export function gelu(x: Var, approximate: 'none' | 'tanh' = 'none'): Var {
  return record('gelu', [x], kernels.gelu(x.value, { approximate }), { tanh: approximate === 'tanh' });
}

export function relu(x: Var): Var {
  return record('relu', [x], kernels.relu(x.value));
}

/** Rows of x [R, D] (x may have any leading shape) at idx → [idx.length, D]: sentence features at their separators. */
export function gatherRows(x: Var, idx: Int32Array): Var {
  const D = x.shape[x.shape.length - 1], R = x.value.size / D;
  const flat = x.value.view(0, [R, D]);
  const y = kernels.embedding(flat, idx);
  flat.dispose();
  return record('gatherRows', [x], y, { idx });
}

/** The rows of each x [n_i, D] one after another → [Σ n_i, D]. */
export function concatRows(xs: Var[]): Var {
  const D = xs[0].shape[xs[0].shape.length - 1], y = like(xs[0].value, [xs.reduce((s, x) => s + x.value.size, 0) / D, D]);
  let off = 0;
  for (const x of xs) kernels.copy2d(x.value, y, { rows: 1, cols: x.value.size, dstOffset: off }), (off += x.value.size);
  return record('concatRows', xs, y);
}

/** x + gamma⊙h (LayerScale) or x + h. */
export function add(x: Var, h: Var, gamma: Var | null = null): Var {
  return record('add', [x, h, gamma], kernels.residual(x.value, h.value, { gamma: gamma?.value ?? null }));
}

/** q [B,Lq,H,Dh], k, v [B,Lk,H,Dh] → out [B,Lq,H,Dh]; the backward redraws the dropout mask of opts.dropout. */
export function attention(q: Var, k: Var, v: Var, opts: kernels.AttentionOptions = {}): Var {
  const r = kernels.flashAttention(q.value, k.value, v.value, opts);
  const d = opts.dropout;
  return record('attention', [q, k, v], r.out, {
    lse: r.lse, causal: opts.causal ?? false, scale: opts.scale ?? null, kvLens: opts.kvLens ?? null,
    dropP: d?.p ?? 0, dropSeed: d?.seed ?? 0, dropOffset: d?.offset ?? 0,
  });
}

/** x [B,L,D] → [B,D]. */
export function meanPool(x: Var): Var {
  return record('meanPool', [x], kernels.meanPool(x.value), { L: x.shape[1] });
}

export function l2Normalize(x: Var): Var {
  const r = kernels.l2Normalize(x.value);
  return record('l2Normalize', [x], r.y, { norm: r.norm });
}

export interface VitTokenOptions {
  patch: number;
  registers: number;
}

/**
 * DINOv2's token sequence [B, 1 + R + Np, D]: CLS + pos[0], R registers (no position), then the
 * patches embedded by the fused patchEmbed with pos[1..] — written straight into one buffer.
 * images [B,C,H,W] (a constant), weight [D, C·p·p], bias [D], pos [1 + Np, D], cls [1, D], reg [R, D].
 */
export function vitTokens(images: Tensor, weight: Var, bias: Var, pos: Var, cls: Var, reg: Var | null, o: VitTokenOptions): Var {
  const [B, , H, W] = images.shape, D = weight.shape[0];
  const np = pos.shape[0] - 1, T = 1 + o.registers + np;
  if ((H / o.patch) * (W / o.patch) !== np)
    throw new RangeError(`vitTokens: ${H}×${W} images in ${o.patch}-pixel patches make ${(H / o.patch) * (W / o.patch)} patches, pos has ${np}`);
  const out = like(weight.value, [B, T, D]);
  const posPatches = pos.value.view(D, [np, D]), pos0 = pos.value.view(0, [1, D]);
  const head = kernels.residual(cls.value, pos0);
  try {
    kernels.patchEmbed(images, weight.value, bias.value, posPatches, { patch: o.patch, out, offset: 1 + o.registers });
    for (let b = 0; b < B; b++) {
      const row = out.view(b * T * D, [1, D]);
      kernels.copy(head, row);
      row.dispose();
      if (reg && o.registers) {
        const rr = out.view((b * T + 1) * D, [o.registers, D]);
        kernels.copy(reg.value, rr);
        rr.dispose();
      }
    }
  } finally {
    posPatches.dispose(), pos0.dispose(), head.dispose();
  }
  return record('vitTokens', [weight, bias, pos, cls, reg], out, { _images: images, patch: o.patch, registers: o.registers });
}

/**
 * The symmetric InfoNCE loss [1] of img, txt [B,E]; logitScale a [1] Var (the log-scale).
 */
export function clipLoss(img: Var, txt: Var, logitScale: Var): Var {
  const scale = asF32(logitScale.value);
  const r = kernels.clipLoss(img.value, txt.value, scale);
  if (scale !== logitScale.value) scale.dispose();
  return record('lossHead', [img, txt, logitScale], r.lossTensor, { g0: r.dImg, g1: r.dTxt, g2: r.dLogitScaleTensor });
}

// A learnable log-scale as the f32 [1] that the loss kernels read on its device (a converted
// copy when the parameters are stored in 16 bits).
function asF32(t: Tensor): Tensor {
  return t.dtype === 'f32' ? t : t.to({ dtype: 'f32' });
}

/** The same values with another shape (a copy: values of the graph are never views). */
export function reshape(x: Var, shape: number[]): Var {
  const y = like(x.value, shape);
  if (y.size !== x.value.size) throw new RangeError(`reshape: ${JSON.stringify(shape)} does not hold the ${x.value.size} values of ${JSON.stringify(x.shape)}`);
  kernels.copy2d(x.value, y, { rows: 1, cols: y.size });
  return record('reshape', [x], y);
}

/** NT-Xent [1] of two views z0, z1 [B, E] (normalised inside). */
export function ntXent(z0: Var, z1: Var, temperature: number): Var {
  const r = kernels.ntXent(z0.value, z1.value, temperature);
  return record('lossHead', [z0, z1], r.lossTensor, { g0: r.dZ0, g1: r.dZ1 });
}

/** What ntXentGathered needs of a communicator (lib/dist's Communicator). */
export interface Gatherer {
  readonly rank: number;
  readonly size: number;
  /** t [n, …] → [size·n, …]: every rank's t in rank order */
  allGather(t: Tensor): Tensor;
}

/**
 * Every rank's rows of each xs[i] [n, …] in rank order → [Σn, …] (n the same for every xs[i] of a
 * rank, but it may differ between ranks: unreadable images shorten a batch), and where this
 * rank's rows start. The ranks' counts are `rows` where the caller has them (pretrain gathers
 * them once per micro-batch), else gathered first; unequal, the rows are padded to the largest
 * count for the gather and packed after it.
 */
function allGatherRows(xs: Tensor[], comm: Gatherer, rows?: readonly number[]): { all: Tensor[]; start: number } {
  const n = xs[0].shape[0];
  const ns = rows ? [...rows] : gatherCounts(n, comm);
  if (ns.length !== comm.size || ns[comm.rank] !== n) throw new RangeError(`gathered loss: rows [${ns.join(', ')}] do not give this rank (${comm.rank} of ${comm.size}) its ${n}`);
  const start = ns.slice(0, comm.rank).reduce((a, b) => a + b, 0), most = Math.max(...ns), total = ns.reduce((a, b) => a + b, 0);
  if (ns.every((m) => m === n)) return { all: xs.map((x) => comm.allGather(x)), start };
  const all = xs.map((x) => {
    const rest = x.shape.slice(1), cols = rest.reduce((a, b) => a * b, 1);
    const padded = like(x, [most, ...rest], { fill: 0 });
    if (n) kernels.copy2d(x, padded, { rows: n, cols });
    const g = comm.allGather(padded), packed = like(x, [total, ...rest]);
    padded.dispose();
    let at = 0;
    ns.forEach((m, r) => (m && kernels.copy2d(g, packed, { rows: m, cols, srcOffset: r * most * cols, dstOffset: at * cols }), (at += m)));
    g.dispose();
    return packed;
  });
  return { all, start };
}

/**
 * NT-Xent [1] over every rank's pairs (MaMA's, data parallel): this rank's z0, z1 [B, E] are
 * gathered to [ΣB, E] and every rank computes the loss of the whole gathered batch and its
 * gradients (the same bits on each: no collective in backward). Its own rows' gradients come
 * back times size, so that the ranks' mean gradient (the data-parallel allReduce) is one
 * process's over the concatenated features; so is the ranks' mean loss. B may differ per rank;
 * rows: the ranks' B where the caller knows them (else one more gather finds them).
 */
export function ntXentGathered(z0: Var, z1: Var, temperature: number, comm: Gatherer, rows?: readonly number[]): Var {
  if (comm.size === 1) return ntXent(z0, z1, temperature);
  const { all: [all0, all1], start } = allGatherRows([z0.value, z1.value], comm, rows); // [ΣB, E]
  const r = kernels.ntXent(all0, all1, temperature);
  all0.dispose(), all1.dispose();
  return record('lossHead', [z0, z1], r.lossTensor, { g0: ownRows(r.dZ0, comm, z0, start), g1: ownRows(r.dZ1, comm, z1, start) });
}

/**
 * CLIP's loss [1] over every rank's pairs (open_clip's local-loss form, whose ranks' mean is one
 * process's loss over the gathered batch), computed as ntXentGathered: the whole gathered batch
 * on every rank, its own rows' gradients times size; the logit scale's gradient as it is (the
 * same on every rank, so the ranks' mean is one process's).
 */
export function clipLossGathered(img: Var, txt: Var, logitScale: Var, comm: Gatherer, rows?: readonly number[]): Var {
  if (comm.size === 1) return clipLoss(img, txt, logitScale);
  const scale = asF32(logitScale.value), { all: [imgAll, txtAll], start } = allGatherRows([img.value, txt.value], comm, rows);
  const r = kernels.clipLoss(imgAll, txtAll, scale);
  if (scale !== logitScale.value) scale.dispose();
  imgAll.dispose(), txtAll.dispose();
  return record('lossHead', [img, txt, logitScale], r.lossTensor, { g0: ownRows(r.dImg, comm, img, start), g1: ownRows(r.dTxt, comm, txt, start), g2: r.dLogitScaleTensor });
}

/** MaMA's local alignment loss [1] over every rank's pairs, computed as clipLossGathered. */
export function localAlignGathered(patches: Var, sentences: Var, counts: Int32Array, localScale: Var, comm: Gatherer, rows?: readonly number[]): Var {
  if (comm.size === 1) return localAlign(patches, sentences, counts, localScale);
  const n = Tensor.fromArray(Float32Array.from(counts), [counts.length], { device: patches.value.device });
  const { all: [pAll, sAll, nAll], start } = allGatherRows([patches.value, sentences.value, n], comm, rows);
  const countsAll = Int32Array.from(nAll.toArray());
  n.dispose(), nAll.dispose();
  const scale = asF32(localScale.value);
  const r = kernels.localAlignLoss(pAll, sAll, countsAll, scale);
  if (scale !== localScale.value) scale.dispose();
  pAll.dispose(), sAll.dispose();
  return record('lossHead', [patches, sentences, localScale], r.lossTensor, {
    g0: ownRows(r.dPatches, comm, patches, start), g1: ownRows(r.dSentences, comm, sentences, start), g2: r.dLocalScaleTensor,
  });
}

function gatherCounts(n: number, comm: Gatherer): number[] {
  const nt = Tensor.fromArray(Float32Array.of(n), [1]), nAll = comm.allGather(nt), ns = Array.from(nAll.toArray());
  nt.dispose(), nAll.dispose();
  return ns;
}

// The gradient of a gathered input [ΣB, …] → this rank's rows [B, …] from row `start`, times size (d is freed).
function ownRows(d: Tensor, comm: Gatherer, x: Var, start: number): Tensor {
  const row = x.shape.slice(1).reduce((a, b) => a * b, 1), g = like(d, x.shape, { fill: 0 }), mine = d.view(start * row, x.shape);
  kernels.axpy(g, mine, comm.size);
  mine.dispose(), d.dispose();
  return g;
}

/** MaMA's local alignment loss [1]; localScale a [1] Var. */
export function localAlign(patches: Var, sentences: Var, counts: Int32Array, localScale: Var): Var {
  const scale = asF32(localScale.value);
  const r = kernels.localAlignLoss(patches.value, sentences.value, counts, scale);
  if (scale !== localScale.value) scale.dispose();
  return record('lossHead', [patches, sentences, localScale], r.lossTensor, {
    g0: r.dPatches, g1: r.dSentences, g2: r.dLocalScaleTensor,
  });
}

// --- rules -----------------------------------------------------------------------------------

const T = (n: Node, k: string) => n.saved[k] as Tensor;
const need = (n: Node, i: number) => n.inputs[i]?.requiresGrad === true;

defineRule('linear', (n, g) => {
  const [x, w, b] = n.inputs as [Var, Var, Var | null];
  const { M, K, N, inOut } = n.saved as { M: number; K: number; N: number; inOut: boolean };
  // W [out, in]: dx = g·W, dW = gᵀ·x. W [in, out]: dx = g·Wᵀ, dW = xᵀ·g.
  const dx = need(n, 0) ? matmulInto(like(x.value), g, w.value, { M, K: N, N: K, transB: inOut }) : null;
  const dw = !need(n, 1) ? null
    : inOut ? matmulInto(gradFor(w), x.value, g, { M: K, K: M, N, transA: true })
      : matmulInto(gradFor(w), g, x.value, { M: N, K: M, N: K, transA: true });
  const db = b && need(n, 2) ? columnSums(g, N, gradFor(b)) : null;
  return [dx, dw, db];
});

defineRule('layerNorm', (n, g) => {
  const [x, w, b] = n.inputs as [Var, Var | null, Var | null];
  const dw = w && need(n, 1) ? like(w.value, w.shape, { fill: 0 }) : null, db = b && need(n, 2) ? like(b.value, b.shape, { fill: 0 }) : null;
  const dx = kernels.layerNormBackward(g, x.value, T(n, 'mean'), T(n, 'rstd'), w?.value ?? null, { dWeight: dw, dBias: db });
  return [need(n, 0) ? dx : (dx.dispose(), null), dw, db];
});

defineRule('relu', (n, g) => [kernels.reluBackward(g, (n.inputs[0] as Var).value)]);

defineRule('gatherRows', (n, g) => {
  const x = n.inputs[0] as Var, D = x.shape[x.shape.length - 1];
  const dx = like(x.value, x.shape, { fill: 0 }), flat = dx.view(0, [x.value.size / D, D]);
  kernels.embeddingBackward(g, n.saved.idx as Int32Array, flat);
  flat.dispose();
  return [dx];
});

defineRule('concatRows', (n, g) => {
  let off = 0;
  return (n.inputs as Var[]).map((x) => {
    const dx = like(x.value);
    kernels.copy2d(g, dx, { rows: 1, cols: dx.size, srcOffset: off });
    off += dx.size;
    return dx;
  });
});

defineRule('gelu', (n, g) => [kernels.geluBackward(g, (n.inputs[0] as Var).value, { approximate: n.saved.tanh ? 'tanh' : 'none' })]);

defineRule('add', (n, g) => {
  const [, h, gamma] = n.inputs as [Var, Var, Var | null];
  const dGamma = gamma && need(n, 2) ? like(gamma.value, gamma.shape, { fill: 0 }) : null;
  const dh = need(n, 1) || dGamma ? kernels.residualBackward(g, h.value, { gamma: gamma?.value ?? null, dGamma }) : null;
  return [need(n, 0) ? kernels.copy(g) : null, need(n, 1) ? dh : (dh?.dispose(), null), dGamma];
});

defineRule('attention', (n, g) => {
  const [q, k, v] = n.inputs as [Var, Var, Var];
  const s = n.saved;
  const r = kernels.flashAttentionBackward(q.value, k.value, v.value, n.out.value, T(n, 'lse'), g, {
    causal: s.causal as boolean, scale: (s.scale as number | null) ?? undefined, kvLens: s.kvLens as Int32Array | null,
    dropout: s.dropP ? { p: s.dropP as number, seed: s.dropSeed as number, offset: s.dropOffset as number } : null,
  });
  return [r.dq, r.dk, r.dv];
});

defineRule('embedding', (n, g) => {
  const table = n.inputs[0] as Var;
  const dTable = like(table.value, table.shape, { fill: 0 }), flat = g.view(0, [g.size / table.shape[1], table.shape[1]]);
  kernels.embeddingBackward(flat, n.saved.ids as Int32Array, dTable);
  flat.dispose();
  return [dTable];
});

defineRule('columns', (n, g) => {
  const { start, cols, C, R } = n.saved as { start: number; cols: number; C: number; R: number };
  const dx = like((n.inputs[0] as Var).value, undefined, { fill: 0 });
  kernels.copy2d(g, dx, { rows: R, cols, dstOffset: start, dstStride: C });
  return [dx];
});

defineRule('tokens', (n, g) => {
  const x = n.inputs[0] as Var, [B, T, D] = x.shape, { start, count } = n.saved as { start: number; count: number };
  const dx = like(x.value, x.shape, { fill: 0 });
  kernels.copy2d(g, dx, { rows: B, cols: count * D, dstOffset: start * D, dstStride: T * D });
  return [dx];
});

defineRule('addScaled', (n, g) => [need(n, 0) ? kernels.copy(g) : null, need(n, 1) ? scaled(g, n.saved.alpha as number) : null]);

defineRule('dropout', (n, g) => {
  const s = n.saved as { p: number; seed: number; offset: number };
  return [kernels.dropoutBackward(g, { p: s.p, seed: s.seed, offset: s.offset })];
});

defineRule('batchNorm', (n, g) => {
  const [x, w, b] = n.inputs as [Var, Var | null, Var | null];
  const dw = w && need(n, 1) ? like(w.value, w.shape, { fill: 0 }) : null, db = b && need(n, 2) ? like(b.value, b.shape, { fill: 0 }) : null;
  const dx = kernels.batchNormBackward(g, x.value, T(n, 'mean'), T(n, 'rstd'), { weight: w?.value ?? null, training: n.saved.training as boolean, dWeight: dw, dBias: db });
  return [dx, dw, db];
});

defineRule('syncBatchNorm', (n, g) => {
  const [x, w, b] = n.inputs as [Var, Var | null, Var | null];
  const mean = T(n, 'mean'), rstd = T(n, 'rstd'), N = n.saved.n as number, comm = syncComms.get(n.out)!, C = mean.size;
  // This rank's Σdy·x̂ and Σdy (evaluation mode: the sums alone), then every rank's.
  const sdyx = like(x.value, [C], { fill: 0 }), sdy = like(x.value, [C], { fill: 0 });
  kernels.batchNormBackward(g, x.value, mean, rstd, { training: false, dWeight: sdyx, dBias: sdy }).dispose();
  const both = new Float32Array(2 * C);
  both.set(sdyx.toArray()), both.set(sdy.toArray(), C);
  const t = comm.allReduce(Tensor.fromArray(both, [2, C], { device: x.value.device })), sums = t.toArray(), rs = rstd.toArray();
  t.dispose();
  // dx = w·rstd·(dy − Σdy/N − x̂·Σdy·x̂/N); the subtracted part is an evaluation-mode BatchNorm of x
  // (mean, variance 1, eps 0) with weight rstd·Σdy·x̂/N and bias Σdy/N.
  const opt = { device: x.value.device, dtype: x.value.dtype }, ones = Tensor.full([C], 1, { device: x.value.device });
  const kw = Tensor.fromArray(Float32Array.from({ length: C }, (_, c) => (rs[c] * sums[c]) / N), [C], opt);
  const kb = Tensor.fromArray(Float32Array.from({ length: C }, (_, c) => sums[C + c] / N), [C], opt);
  const corr = kernels.batchNorm(x.value, { weight: kw, bias: kb, runningMean: mean, runningVar: ones, training: false, eps: 0 });
  const gc = kernels.axpy(kernels.copy(g), corr.y, -1);
  const dx = kernels.batchNormBackward(gc, x.value, mean, rstd, { weight: w?.value ?? null, training: false });
  for (const u of [ones, kw, kb, corr.y, corr.mean, corr.rstd, gc]) u.dispose();
  const dw = w && need(n, 1) ? sdyx : (sdyx.dispose(), null), db = b && need(n, 2) ? sdy : (sdy.dispose(), null);
  return [need(n, 0) ? dx : (dx.dispose(), null), dw, db];
});

defineRule('interpolatePos', (n, g) => {
  const pos = n.inputs[0] as Var, D = pos.shape[1];
  const [from, to] = [n.saved.from as [number, number], n.saved.to as [number, number]];
  const n1 = to[0] * to[1];
  const gGrid = g.view(D, [n1, D]);
  const dGrid = kernels.interpolatePosBackward(gGrid, { from, to });
  gGrid.dispose();
  const dPos = like(pos.value);
  kernels.copy2d(g, dPos, { rows: 1, cols: D });
  kernels.copy2d(dGrid, dPos, { rows: 1, cols: dGrid.size, dstOffset: D });
  dGrid.dispose();
  return [dPos];
});

defineRule('meanPool', (n, g) => [kernels.meanPoolBackward(g, n.saved.L as number)]);

defineRule('l2Normalize', (n, g) => [kernels.l2NormalizeBackward(g, n.out.value, T(n, 'norm'))]);

defineRule('vitTokens', (n, g) => {
  const [weight, bias, pos, cls, reg] = n.inputs as [Var, Var, Var, Var, Var | null];
  const R = n.saved.registers as number, D = weight.shape[0], np = pos.shape[0] - 1;
  const [B, Tn] = g.shape;
  const zeros = (v: Var) => like(v.value, v.shape, { fill: 0 });
  const dW = zeros(weight), dB = zeros(bias), dPos = zeros(pos);
  const dPosPatches = dPos.view(D, [np, D]);
  kernels.patchEmbedBackward(T(n, '_images'), g, { patch: n.saved.patch as number, offset: 1 + R, dWeight: dW, dBias: dB, dPos: dPosPatches });
  dPosPatches.dispose();
  // CLS (and pos[0]) and the registers get the sum over images of their rows.
  const dCls = zeros(cls), dReg = reg ? zeros(reg) : null;
  for (let b = 0; b < B; b++) {
    const row = g.view(b * Tn * D, [1, D]);
    addInto(dCls, row);
    row.dispose();
    if (dReg) {
      const rr = g.view((b * Tn + 1) * D, [R, D]);
      addInto(dReg, rr);
      rr.dispose();
    }
  }
  const dPos0 = dPos.view(0, [1, D]);
  addInto(dPos0, dCls);
  dPos0.dispose();
  return [dW, dB, dPos, dCls, dReg];
});

defineRule('reshape', (n, g) => {
  const dx = like((n.inputs[0] as Var).value);
  kernels.copy2d(g, dx, { rows: 1, cols: dx.size });
  return [dx];
});

// Fused loss heads: their gradients (for an upstream 1) were computed with the loss. They are
// scaled in place by the upstream g [1], read on the device, and handed on (not freed with the
// node); a gradient kept in f32 for a 16-bit input (a log-scale) stays f32 where the input's
// own gradient is (a parameter's in mixed precision), and is converted to its dtype otherwise.
function handOn(n: Node, i: number, g: Tensor, input: Var): Tensor {
  const t = n.saved[`g${i}`] as Tensor;
  delete n.saved[`g${i}`];
  kernels.scale(t, g);
  const want = input.grad?.dtype ?? input.value.dtype;
  if (t.dtype === want) return t;
  const c = t.to({ dtype: want });
  t.dispose();
  return c;
}

defineRule('lossHead', (n, g) => n.inputs.map((x, i) => handOn(n, i, g, x as Var)));

