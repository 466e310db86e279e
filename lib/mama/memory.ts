// memory.ts: the memory plan of one MaMA training micro-batch, from the config alone (nothing is
// allocated): the parameter arenas (values, 16-bit compute copy, gradients, AdamW moments), the
// activations the tape keeps (op by op, as lib/autograd/ops.ts records them: outputs plus the
// saved statistics), and the peak found by replaying the backward's frees and gradients in
// flight (tape.ts), a checkpointed block's recomputation included. `mamakit pretrain --dry-run`
// prints it; test/mama/memory.test.ts checks it against measured peaks.
import { gpt2ParamCount } from '../nn/gpt2.js';
import { vitParamCount } from '../nn/vit.js';
import type { Device } from '../tensor.js';
import type { MamaConfig } from './model.js';
import { precisionOf, type Precision } from './train.js';

export interface MemoryPlanOptions {
  /** images (and captions) per micro-batch */
  batch: number;
  /** image side in pixels (default the config's) */
  imageSize?: number;
  /** default f32 on the CPU, bf16 on CUDA */
  precision?: Precision;
  /** default 'cpu'; sets the allocation granularity */
  device?: Device;
  /** recompute encoder blocks in backward (default the config's `checkpoint`) */
  checkpoint?: boolean;
  /** all four loss terms (from lateStep on; the default) or the image-text term alone */
  late?: boolean;
  /** real sentences per caption (default maxSentences) */
  sentences?: number;
}

/** Bytes per parameter element in each arena, by role: the one place the precision semantics live. */
export function paramBytes(role: 'trainable' | 'frozen' | 'f32', precision: Precision) {
  const t = role === 'trainable';
  if (precision === 'f32') return { master: 4, compute: 0, grad: t ? 4 : 0, moments: t ? 8 : 0 };
  // Mixed precision (ParamArena): trainable parameters keep an f32 master, gradient and AdamW m, v
  // beside the bf16 copy the model reads; frozen ones the bf16 copy alone; BatchNorm statistics
  // are read in f32 (the compute arena spans every parameter, so they have an unused copy there).
  if (t) return { master: 4, compute: 2, grad: 4, moments: 8 };
  return { master: role === 'frozen' ? 0 : 4, compute: 2, grad: 0, moments: 0 };
}

/** Parameter counts of a MaMA by role, from its config. */
export function mamaParamCounts(cfg: MamaConfig): { trainable: number; frozen: number; f32: number } {
  const D = cfg.vit.width, Dt = cfg.text.width, E = cfg.embed, Hl = cfg.localHidden, So = cfg.simclrOut;
  const text = gpt2ParamCount(cfg.text, cfg.lora);
  // Linear → BN → ReLU → Linear → BN without affine; the running statistics stay f32.
  const localHead = (inF: number) => inF * Hl + Hl + 2 * Hl + Hl * E + E;
  const heads = D * E + E + Dt * E + E + localHead(D) + localHead(Dt) + D * D + 2 * D + D * So + 2 * So + 2;
  const stats = 2 * (2 * Hl + 2 * E) + 2 * D + 2 * So;
  const frozen = 2 * D + (cfg.lora ? text.total - text.lora : 0); // the image encoder's final LayerNorm, the language model
  return { trainable: vitParamCount(cfg.vit) - 2 * D + (cfg.lora ? text.lora : text.total) + heads, frozen, f32: stats };
}

// Bytes a tensor of `bytes` takes on the device: the CPU allocator rounds blocks of 1 MiB and
// more up to 2 MiB and puts 64 bytes before smaller ones (native/cpu/alloc.cpp); CUDA counts
// the bytes asked for.
function allocator(device: Device): (bytes: number) => number {
  return device === 'cpu' ? (b) => (b >= 2 ** 20 ? Math.ceil(b / 2 ** 21) * 2 ** 21 : b + 64) : (b) => b;
}

type Group = 'image' | 'text' | 'heads';
// A value of the plan: elements, allocated bytes, whether it needs a gradient; a parameter's
// gradient goes into its arena, an input leaf of a checkpointed block keeps its own.
interface Val { n: number; bytes: number; grad: boolean; param?: boolean; leaf?: boolean }
interface PNode { out: Val; inputs: Val[]; saved: number; back: number; handsOn?: number[]; sub?: Trace }

/** The forward of one graph as the tape records it: what stays live, what each backward rule allocates. */
class Trace {
  readonly nodes: PNode[] = [];
  /** bytes live at the end of the forward: recorded outputs, saved tensors, unrecorded values, inputs */
  live = 0;
  fwdPeak = 0;
  /** bytes of every output made (what a block run without recording holds until it returns) */
  outputs = 0;
  group: Group = 'image';
  readonly kept: Record<Group, number> = { image: 0, text: 0, heads: 0 };
  /** elt: bytes per element of activations and parameters as the model reads them */
  constructor(readonly elt: number, readonly alloc: (b: number) => number) {}

  val(n: number, grad: boolean, per = this.elt): Val {
    return { n, bytes: this.alloc(n * per), grad };
  }
  /** a parameter of n elements (its gradient a temporary of its compute dtype, added into the arena) */
  param(n: number, grad = true): Val {
    return { ...this.val(n, grad), param: true };
  }
  /** a constant input the caller allocated (images): live until after backward */
  input(n: number): Val {
    const v = this.val(n, false);
    this.keep(v.bytes);
    return v;
  }
  private keep(bytes: number): void {
    this.live += bytes;
    this.kept[this.group] += bytes;
    this.fwdPeak = Math.max(this.fwdPeak, this.live);
  }

  /**
   * An op: inputs, output elements; saved: f32 statistics kept for backward (elements); back:
   * bytes its rule allocates besides the input gradients; handsOn: loss heads' gradients (bytes),
   * made in forward and handed on; transient: forward scratch.
   */
  op(inputs: Array<Val | null>, n: number, o: { saved?: number[]; back?: number; handsOn?: number[]; transient?: number; per?: number } = {}): Val {
    const ins = inputs.filter((v): v is Val => v !== null);
    const out = this.val(n, ins.some((v) => v.grad), o.per);
    const saved = (o.saved ?? []).reduce((s, k) => s + this.alloc(4 * k), 0) + (o.handsOn ?? []).reduce((s, b) => s + b, 0);
    this.outputs += out.bytes;
    this.fwdPeak = Math.max(this.fwdPeak, this.live + out.bytes + saved + (o.transient ?? 0));
    // Unrecorded (no input needs a gradient): the statistics go at once, the value stays until the GC.
    this.keep(out.bytes + (out.grad ? saved : 0));
    if (out.grad) this.nodes.push({ out, inputs: ins, saved, back: o.back ?? 0, handsOn: o.handsOn });
    return out;
  }

  /**
   * checkpoint(fn, x, ...params): the block runs without recording (its values freed when it
   * returns); backward runs it again on a tape of its own.
   */
  checkpoint(block: (t: Trace, x: Val) => Val, x: Val, trainable: boolean): Val {
    const sub = new Trace(this.elt, this.alloc);
    sub.group = this.group;
    const y = block(sub, { ...x, leaf: true });
    const out = { n: y.n, bytes: y.bytes, grad: x.grad || trainable };
    this.fwdPeak = Math.max(this.fwdPeak, this.live + sub.outputs);
    this.keep(out.bytes);
    if (out.grad) this.nodes.push({ out, inputs: [x], saved: 0, back: 0, sub });
    return out;
  }

  // Shapes below follow ops.ts; R rows of width D.
  /** x [R, K] → [R, N] */
  linear(x: Val, w: Val, b: Val | null, K: number, N: number): Val {
    // The bias gradient sums the rows with a ones vector [R].
    return this.op([x, w, b], (x.n / K) * N, { back: b?.grad ? this.alloc((x.n / K) * this.elt) : 0 });
  }
  layerNorm(x: Val, w: Val | null, b: Val | null, D: number): Val {
    // The rule allocates dx even for an input that needs no gradient.
    return this.op([x, w, b], x.n, { saved: [x.n / D, x.n / D], back: x.grad ? 0 : x.bytes });
  }
  batchNorm(x: Val, w: Val | null, b: Val | null, C: number): Val {
    return this.op([x, w, b], x.n, { saved: [C, C] });
  }
  l2Normalize(x: Val, D: number): Val {
    return this.op([x], x.n, { saved: [x.n / D] });
  }
  /** out like q; lse [B, H, Lq] f32 */
  attention(q: Val, k: Val, v: Val, rows: number, heads: number): Val {
    return this.op([q, k, v], q.n, { saved: [rows * heads] });
  }
  /** a fused loss [1] f32: the gradients of its inputs are made with it */
  loss(inputs: Val[]): Val {
    return this.op(inputs, 1, { per: 4, handsOn: inputs.map((v) => v.bytes) });
  }
}

// Replays tape.backward over a trace from the gradient of its last output: nodes freed in
// reverse, gradients in flight, each rule's allocations. base: bytes live besides the trace.
// Returns the peak; an input leaf's gradient (a checkpointed block's) stays live at the end.
function replay(t: Trace, base: number, seedBytes: number): number {
  let live = base + seedBytes, peak = live;
  // The output backward starts from is kept (the caller's: a loss, a recomputed block's output).
  const last = t.nodes[t.nodes.length - 1].out;
  const pending = new Map<Val, number>([[last, seedBytes]]);
  const held = new Set<Val>();
  for (let i = t.nodes.length - 1; i >= 0; i--) {
    const node = t.nodes[i], g = pending.get(node.out);
    if (g !== undefined) {
      pending.delete(node.out);
      // A checkpoint: the recomputation and its own backward, on top of everything live, from a copy of g.
      const inner = node.sub ? replay(node.sub, live + node.sub.live, g) - live : 0;
      // Loss heads hand on the gradients they saved; other rules make one per input that needs it.
      const gin = node.inputs.map((v, k) => (!v.grad ? 0 : node.handsOn ? node.handsOn[k] : v.bytes));
      const made = node.handsOn ? node.back : gin.reduce((s, b) => s + b, 0) + node.back;
      peak = Math.max(peak, live + made, live + inner);
      live += made - g + (node.handsOn ? gin.reduce((s, b) => s + b, 0) : 0);
      node.inputs.forEach((v, k) => {
        if (!v.grad) return;
        if (v.param || pending.has(v) || held.has(v)) live -= gin[k]; // added into a gradient there, freed
        else if (v.leaf) held.add(v);
        else pending.set(v, gin[k]);
      });
    }
    live -= node.saved + (node.out === last ? 0 : node.out.bytes);
    if (node.sub) live += node.sub.live - node.sub.nodes.reduce((s, n) => s + n.out.bytes + n.saved, 0); // its unrecorded values, left to the GC
  }
  return peak;
}

// --- the model, as model.ts, vit.ts, gpt2.ts and layers.ts run it ---------------------------

const lin = (t: Trace, x: Val, K: number, N: number, grad = true, bias = true) => t.linear(x, t.param(K * N, grad), bias ? t.param(N, grad) : null, K, N);

function vitBlock(t: Trace, x: Val, c: MamaConfig['vit'], B: number, T: number): Val {
  const D = c.width, Hm = D * c.mlpRatio;
  const h = t.layerNorm(x, t.param(D), t.param(D), D);
  const q = lin(t, h, D, D), k = lin(t, h, D, D), v = lin(t, h, D, D);
  const x1 = t.op([x, lin(t, t.attention(q, k, v, B * T, c.heads), D, D), t.param(D)], x.n); // + LayerScale
  const f = lin(t, t.op([lin(t, t.layerNorm(x1, t.param(D), t.param(D), D), D, Hm)], B * T * Hm), Hm, D);
  return t.op([x1, f, t.param(D)], x.n);
}

/** { v [B, E], pooled [B, D], patches [B, Np, D] } of one view */
function encodeImage(t: Trace, cfg: MamaConfig, B: number, ckpt: boolean) {
  const c = cfg.vit, D = c.width, Np = (c.imageSize / c.patch) ** 2, T = 1 + c.registers + Np;
  t.group = 'image';
  const images = t.input(B * c.channels * c.imageSize ** 2);
  const P = (n: number) => t.param(n);
  let x = t.op([images, P(D * c.channels * c.patch ** 2), P(D), P((1 + Np) * D), P(D), c.registers ? P(c.registers * D) : null], B * T * D, { transient: t.alloc(D * t.elt) });
  for (let i = 0; i < c.depth; i++) x = ckpt ? t.checkpoint((s, y) => vitBlock(s, y, c, B, T), x, true) : vitBlock(t, x, c, B, T);
  const normed = t.layerNorm(x, t.param(D, false), t.param(D, false), D); // frozen (MAMA.md §2)
  const patches = t.op([normed], B * Np * D);
  const pooled = t.op([x], B * D);
  return { v: t.l2Normalize(lin(t, pooled, D, cfg.embed), cfg.embed), pooled, patches, Np };
}

// ops.dropout: a new output, nothing saved (backward redraws the mask); none at p = 0.
const dropout = (t: Trace, x: Val, p = 0) => (p ? t.op([x], x.n) : x);

function gpt2Block(t: Trace, x: Val, cfg: MamaConfig, B: number, L: number, base: boolean): Val {
  const D = cfg.text.width, lora = cfg.lora;
  const h = t.layerNorm(x, t.param(D, base), t.param(D, base), D);
  let qkv: Val;
  if (lora) {
    const dropped = dropout(t, h, lora.dropout);
    const low = t.linear(dropped, t.param(lora.rank * D), null, D, lora.rank);
    const frozen = lin(t, h, D, 3 * D, base);
    qkv = t.op([frozen, t.linear(low, t.param(3 * D * lora.rank), null, lora.rank, 3 * D)], frozen.n);
  } else qkv = lin(t, h, D, 3 * D, base);
  const [q, k, v] = [0, 1, 2].map(() => t.op([qkv], B * L * D));
  const x1 = t.op([x, dropout(t, lin(t, t.attention(q, k, v, B * L, cfg.text.heads), D, D, base), cfg.text.residPdrop)], x.n);
  const f = lin(t, t.op([lin(t, t.layerNorm(x1, t.param(D, base), t.param(D, base), D), D, 4 * D, base)], B * L * 4 * D), 4 * D, D, base);
  return t.op([x1, dropout(t, f, cfg.text.residPdrop)], x.n);
}

/** { t [B, E], hidden [B, L, Dt] } */
function encodeText(t: Trace, cfg: MamaConfig, B: number, ckpt: boolean) {
  const c = cfg.text, D = c.width, L = cfg.maxTokens, base = !cfg.lora, n = B * L * D;
  t.group = 'text';
  const embed = (rows: number) => t.op([t.param(rows * D, base)], n, { transient: t.alloc(n * t.elt) });
  let x = dropout(t, t.op([embed(c.vocab), embed(c.positions)], n), c.embdPdrop);
  for (let i = 0; i < c.depth; i++) x = ckpt ? t.checkpoint((s, y) => gpt2Block(s, y, cfg, B, L, base), x, true) : gpt2Block(t, x, cfg, B, L, base);
  const hidden = t.layerNorm(x, t.param(D, base), t.param(D, base), D);
  return { t: t.l2Normalize(lin(t, t.op([hidden], B * D), D, cfg.embed), cfg.embed), hidden };
}

/** LocalHead over x [N, inF] → [N, E], unit rows */
function localHead(t: Trace, x: Val, cfg: MamaConfig, inF: number): Val {
  const Hl = cfg.localHidden, E = cfg.embed, N = x.n / inF;
  const r = t.op([t.batchNorm(lin(t, x, inF, Hl), t.param(Hl), t.param(Hl), Hl)], N * Hl);
  return t.l2Normalize(t.batchNorm(lin(t, r, Hl, E), null, null, E), E);
}

function simclrHead(t: Trace, x: Val, cfg: MamaConfig): Val {
  const D = cfg.vit.width, So = cfg.simclrOut, B = x.n / D;
  const r = t.op([t.batchNorm(lin(t, x, D, D, true, false), t.param(D), t.param(D), D)], B * D);
  return t.batchNorm(lin(t, r, D, So, true, false), t.param(So), t.param(So), So);
}

/** Mama.loss: the trace of one micro-batch. */
function mamaLoss(t: Trace, cfg: MamaConfig, B: number, o: { ckpt: boolean; late: boolean; sentences: number }): Trace {
  const img = encodeImage(t, cfg, B, o.ckpt);
  const txt = encodeText(t, cfg, B, o.ckpt);
  t.group = 'heads';
  const logitScale = t.param(1);
  let loss = t.loss([img.v, txt.t, logitScale]);
  if (o.late) {
    const img2 = encodeImage(t, cfg, B, o.ckpt);
    t.group = 'heads';
    const clip2 = t.loss([img2.v, txt.t, logitScale]);
    const nt = t.loss([simclrHead(t, img.pooled, cfg), simclrHead(t, img2.pooled, cfg)]);
    const S = cfg.maxSentences, E = cfg.embed, Dt = cfg.text.width, D = cfg.vit.width;
    // The sentence head once per caption (Mama.sentenceFeatures), its outputs concatenated.
    const n = Math.min(o.sentences, S);
    const rows = t.op([t.op([txt.hidden], B * n * Dt)], B * n * Dt); // gathered, reshaped
    const each = Array.from({ length: B }, () => localHead(t, t.op([t.op([rows], n * Dt)], n * Dt), cfg, Dt)); // a slice, reshaped
    const sent = t.op([t.op([t.op(each, B * n * E)], B * S * E)], B * S * E);
    const pat = t.op([localHead(t, t.op([img.patches], B * img.Np * D), cfg, D)], B * img.Np * E);
    const local = t.loss([pat, sent, t.param(1)]);
    for (const term of [clip2, nt, local]) loss = t.op([loss, term], 1, { per: 4 });
  }
  return t;
}

// --- the plan ---------------------------------------------------------------------------------

export interface MemoryPlan {
  config: MamaConfig;
  options: Required<MemoryPlanOptions>;
  /** parameter counts: trained, frozen, f32 statistics (BatchNorm's running mean and variance) */
  params: { trainable: number; frozen: number; f32: number };
  /** tensor bytes: f32 values (masters), 16-bit compute copy, gradients, AdamW m and v */
  arenas: { values: number; compute: number; grads: number; moments: number };
  /** bytes the activations kept for backward take at the end of the forward, by part (inputs included) */
  activations: { image: number; text: number; heads: number };
  /** the arenas as allocated */
  staticBytes: number;
  /** beyond the arenas and the kept activations, at the peak: gradients in flight, a recomputed block */
  transientBytes: number;
  peakBytes: number;
  format(): string;
}

/** The memory of one training micro-batch of `config` (forward, backward, AdamW), without allocating. */
export function memoryPlan(config: MamaConfig, opts: MemoryPlanOptions): MemoryPlan {
  const device = opts.device ?? 'cpu', precision = precisionOf({ precision: opts.precision, device });
  if (!(Number.isInteger(opts.batch) && opts.batch >= 1)) throw new RangeError(`memoryPlan: batch must be an integer ≥ 1, got ${opts.batch}`);
  if (precision !== 'f32' && precision !== 'bf16') throw new RangeError(`memoryPlan: precision must be f32 or bf16, got ${precision}`);
  if (precision !== 'f32' && device !== 'cuda') throw new RangeError(`memoryPlan: precision ${precision} needs device cuda (the CPU computes in f32)`);
  const cfg = opts.imageSize ? { ...config, vit: { ...config.vit, imageSize: opts.imageSize } } : config;
  const options: Required<MemoryPlanOptions> = {
    batch: opts.batch, imageSize: cfg.vit.imageSize, precision, device, checkpoint: opts.checkpoint ?? cfg.checkpoint ?? false,
    late: opts.late ?? true, sentences: opts.sentences ?? cfg.maxSentences,
  };
  const params = mamaParamCounts(cfg), alloc = allocator(device);
  const bytes = (k: 'master' | 'compute' | 'grad' | 'moments') =>
    params.trainable * paramBytes('trainable', precision)[k] + params.frozen * paramBytes('frozen', precision)[k] + params.f32 * paramBytes('f32', precision)[k];
  const arenas = { values: bytes('master'), compute: bytes('compute'), grads: Math.max(bytes('grad'), 4), moments: bytes('moments') };
  // One tensor each: values, compute copy (16-bit only), gradients, m, v.
  const staticBytes = alloc(arenas.values) + (arenas.compute ? alloc(arenas.compute) : 0) + alloc(arenas.grads) + 2 * alloc(arenas.moments / 2);
  const elt = precision === 'f32' ? 4 : 2;
  const t = mamaLoss(new Trace(elt, alloc), cfg, options.batch, { ckpt: options.checkpoint, late: options.late, sentences: options.sentences });
  // backward seeds the loss with a [1] tensor.
  const peakBytes = Math.max(staticBytes + t.fwdPeak, replay(t, staticBytes + t.live, alloc(4)));
  const activations = t.kept;
  const transientBytes = peakBytes - staticBytes - activations.image - activations.text - activations.heads;
  const plan: MemoryPlan = { config: cfg, options, params, arenas, activations, staticBytes, transientBytes, peakBytes, format: () => formatPlan(plan) };
  return plan;
}

/** 1.23 GiB, 45.6 MiB, 7.8 KiB */
export function formatBytes(b: number): string {
  const [unit, scale] = b >= 2 ** 30 ? ['GiB', 2 ** 30] : b >= 2 ** 20 ? ['MiB', 2 ** 20] : ['KiB', 2 ** 10];
  return `${(b / scale).toFixed(2)} ${unit}`;
}

const count = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : `${n}`);

function formatPlan(p: MemoryPlan): string {
  const o = p.options, c = p.config, a = p.activations, half = o.precision === 'f32' ? '' : ` (${o.precision})`;
  const rows: Array<[string, number]> = [
    ['parameter values (f32)', p.arenas.values],
    ...(p.arenas.compute ? [[`compute copy${half}`, p.arenas.compute] as [string, number]] : []),
    ['gradients (f32)', p.arenas.grads],
    ['AdamW m and v (f32)', p.arenas.moments],
    [`activations: image encoder (${o.late ? '2 views' : '1 view'}, images included)`, a.image],
    ['activations: text encoder', a.text],
    ['activations: heads and losses', a.heads],
    [`backward transient (gradients in flight${o.checkpoint ? ', one recomputed block' : ''})`, p.transientBytes],
    ['peak', p.peakBytes],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  const head = `MaMA memory plan: batch ${o.batch}, ${o.imageSize} px (${(o.imageSize / c.vit.patch) ** 2} patches), ${c.maxTokens} tokens, ` +
    `${o.precision} on ${o.device}, checkpointing ${o.checkpoint ? 'on' : 'off'}, ${o.late ? 'all four loss terms' : 'image-text term only'}`;
  const params = `parameters: ${count(p.params.trainable)} trained, ${count(p.params.frozen)} frozen${c.lora ? ` (LoRA r${c.lora.rank} on the text encoder)` : ''}, ${count(p.params.f32)} BatchNorm statistics`;
  return [head, params, ...rows.map(([k, b]) => `  ${k.padEnd(w)}  ${formatBytes(b).padStart(11)}`)].join('\n') + '\n';
}
