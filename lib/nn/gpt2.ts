// gpt2.ts: the GPT-2 text encoder (MAMA.md §2: learned positions, GELU tanh form, LN eps 1e-5,
// optionally each layer l dividing its attention logits by l + 1, right padding through
// kvLens; in training mode Hugging Face's embedding, attention-probability and residual dropout),
// returning the final hidden states after ln_f, with LoRA on the fused QKV projection.
// Parameter names and shapes are Hugging Face's GPT2Model (Conv1D weights stored [in, out]) and
// PEFT's for LoRA (…c_attn.lora_A.weight [r, in], …c_attn.lora_B.weight [3D, r]).
import * as ops from '../autograd/ops.js';
import { checkpoint, type Var } from '../autograd/tape.js';
import { LoRA } from './layers.js';
import { Group, InitRng, Module, type Param } from './module.js';

export interface Gpt2Config {
  vocab: number;
  positions: number;
  width: number;
  depth: number;
  heads: number;
  eps: number;
  /** divide layer l's attention logits by l + 1 as well (BioMedLM) */
  scaleByLayer: boolean;
  /**
   * dropout in training mode (Hugging Face's embd_pdrop on wte + wpe, attn_pdrop on the attention
   * probabilities, inside the flash-attention kernels, resid_pdrop after the attention's and the
   * MLP's c_proj; 0 when absent)
   */
  embdPdrop?: number;
  attnPdrop?: number;
  residPdrop?: number;
}

export interface LoraConfig {
  rank: number;
  alpha: number;
  dropout: number;
}

export const gpt2Presets = {
  /** BioMedLM (the paper's): 28 896 tokens + 6 special ones */
  biomedlm: { vocab: 28896 + 6, positions: 1024, width: 2560, depth: 32, heads: 20, eps: 1e-5, scaleByLayer: true, embdPdrop: 0.1, attnPdrop: 0.1, residPdrop: 0.1 },
  /** a small one for CPU training */
  'gpt2-tiny': { vocab: 4096 + 6, positions: 144, width: 128, depth: 4, heads: 4, eps: 1e-5, scaleByLayer: true, embdPdrop: 0.1, attnPdrop: 0.1, residPdrop: 0.1 },
} satisfies Record<string, Gpt2Config>;

/** Parameters of a GPT-2 (and its LoRA) from the config alone: the 2.7 B model is never allocated. */
export function gpt2ParamCount(c: Gpt2Config, lora?: LoraConfig): { total: number; lora: number } {
  const D = c.width;
  const layer = 2 * D + (D * 3 * D + 3 * D) + (D * D + D) + 2 * D + (D * 4 * D + 4 * D) + (4 * D * D + D);
  const l = lora ? c.depth * lora.rank * (D + 3 * D) : 0;
  return { total: c.vocab * D + c.positions * D + c.depth * layer + 2 * D + l, lora: l };
}

class P extends Group {
  p(name: string, shape: number[], init: Float32Array | number, decay: boolean, trainable: boolean): Param {
    const x = this.param(name, shape, init, decay);
    x.requiresGrad = trainable;
    return x;
  }
}

class Conv1D extends P {
  readonly weight: Param;
  readonly bias: Param;
  constructor(readonly inF: number, readonly outF: number, rng: InitRng, trainable: boolean) {
    super();
    this.weight = this.p('weight', [inF, outF], rng.truncNormal(inF * outF, 0.02), true, trainable);
    this.bias = this.p('bias', [outF], 0, false, trainable);
  }
  forward(x: Var, outShape?: number[]): Var {
    return ops.linear(x, this.weight, this.bias, outShape, true);
  }
}

class LayerNormP extends P {
  readonly weight: Param;
  readonly bias: Param;
  constructor(D: number, readonly eps: number, trainable: boolean) {
    super();
    this.weight = this.p('weight', [D], 1, false, trainable);
    this.bias = this.p('bias', [D], 0, false, trainable);
  }
  forward(x: Var): Var {
    return ops.layerNorm(x, this.weight, this.bias, this.eps);
  }
}

class Gpt2Block extends Group {
  readonly ln1: LayerNormP;
  readonly cAttn: Conv1D;
  /** LoRA on c_attn; its A and B are named attn.c_attn.lora_A.weight / lora_B.weight (PEFT) */
  readonly lora: LoRA | null = null;
  readonly cProj: Conv1D;
  readonly ln2: LayerNormP;
  readonly cFc: Conv1D;
  readonly mlpProj: Conv1D;
  constructor(readonly cfg: Gpt2Config, readonly index: number, rng: InitRng, trainable: boolean, lora?: LoraConfig) {
    super();
    const D = cfg.width;
    this.ln1 = this.add('ln_1', new LayerNormP(D, cfg.eps, trainable));
    const attn = this.add('attn', new Group());
    this.cAttn = attn.add('c_attn', new Conv1D(D, 3 * D, rng, trainable));
    this.cProj = attn.add('c_proj', new Conv1D(D, D, rng, trainable));
    // The adapter's parameters sit under c_attn, as PEFT names them.
    if (lora) this.lora = this.cAttn.add('', new LoRA(this.cAttn, lora.rank, lora.alpha, lora.dropout, rng));
    this.ln2 = this.add('ln_2', new LayerNormP(D, cfg.eps, trainable));
    const mlp = this.add('mlp', new Group());
    this.cFc = mlp.add('c_fc', new Conv1D(D, 4 * D, rng, trainable));
    this.mlpProj = mlp.add('c_proj', new Conv1D(4 * D, D, rng, trainable));
  }

  /**
   * dropoutSeed: the block's; its sites (LoRA, attention residual, MLP residual, attention
   * probabilities) draw from seed + 0, 1, 2, 3. dropoutRow: the batch's first row as a row of a
   * larger batch (see Gpt2.forward).
   */
  forward(x: Var, kvLens: Int32Array | null, dropoutSeed: number, dropoutRow = 0): Var {
    const [B, L, D] = x.shape, H = this.cfg.heads, Dh = D / H;
    const resid = (t: Var, site: number) => ops.dropout(t, this.training ? this.cfg.residPdrop ?? 0 : 0, dropoutSeed + site, dropoutRow * L * D);
    const attnP = this.training ? this.cfg.attnPdrop ?? 0 : 0;
    const h = this.ln1.forward(x);
    const qkv = this.lora ? this.lora.forward(h, undefined, dropoutSeed, dropoutRow * L * D) : this.cAttn.forward(h);
    const heads = [B, L, H, Dh];
    const q = ops.columns(qkv, 0, D, heads), k = ops.columns(qkv, D, D, heads), v = ops.columns(qkv, 2 * D, D, heads);
    const scale = 1 / Math.sqrt(Dh) / (this.cfg.scaleByLayer ? this.index + 1 : 1);
    const a = ops.attention(q, k, v, { causal: true, scale, kvLens, dropout: attnP ? { p: attnP, seed: dropoutSeed + 3, offset: dropoutRow * H * L * L } : null });
    const x1 = ops.add(x, resid(this.cProj.forward(a, [B, L, D]), 1));
    return ops.add(x1, resid(this.mlpProj.forward(ops.gelu(this.cFc.forward(this.ln2.forward(x1)), 'tanh')), 2));
  }
}

export class Gpt2 extends Module {
  readonly wte: Param;
  readonly wpe: Param;
  readonly blocks: Gpt2Block[] = [];
  readonly lnF: LayerNormP;
  /** recompute each block in backward instead of keeping its activations (large configurations) */
  checkpointBlocks = false;

  /** trainBase false freezes everything but LoRA (the paper's setting). */
  constructor(readonly cfg: Gpt2Config, opts: { seed?: number; lora?: LoraConfig; trainBase?: boolean } = {}) {
    super();
    if (cfg.width % cfg.heads) throw new RangeError(`Gpt2: width ${cfg.width} is not a multiple of ${cfg.heads} heads`);
    const rng = new InitRng(opts.seed ?? 0), base = opts.trainBase ?? !opts.lora;
    const e = this.child('wte', new P()), pe = this.child('wpe', new P());
    this.wte = e.p('weight', [cfg.vocab, cfg.width], rng.truncNormal(cfg.vocab * cfg.width, 0.02), false, base);
    this.wpe = pe.p('weight', [cfg.positions, cfg.width], rng.truncNormal(cfg.positions * cfg.width, 0.01), false, base);
    const h = this.child('h', new Group());
    for (let i = 0; i < cfg.depth; i++) this.blocks.push(h.add(String(i), new Gpt2Block(cfg, i, rng, base, opts.lora)));
    this.lnF = this.child('ln_f', new LayerNormP(cfg.width, cfg.eps, base));
  }

  /**
   * ids [B·L] (right-padded), lens [B] the real lengths → final hidden states [B, L, D] after
   * ln_f. Padded positions attend to the real tokens only (kvLens), as a causal LM would.
   * Dropout (training) draws its masks from dropoutSeed, each element's by its index in the batch
   * (counter-based, b-major at every site) plus dropoutRow rows: a batch cut into parts with
   * dropoutRow at each part's first row draws the whole batch's masks (data-parallel ranks do).
   */
  forward(ids: Int32Array, B: number, L: number, lens: Int32Array | null = null, dropoutSeed = 0, dropoutRow = 0): Var {
    if (ids.length !== B * L) throw new RangeError(`Gpt2: ${ids.length} ids for ${B}×${L} tokens`);
    if (L > this.cfg.positions) throw new RangeError(`Gpt2: ${L} tokens exceed the ${this.cfg.positions} positions`);
    const pos = Int32Array.from({ length: B * L }, (_, i) => i % L);
    // Dropout seeds: 4 per layer (the embedding's slot first), 1024 layers per call's seed.
    if (this.cfg.depth >= 1024) throw new RangeError(`Gpt2: ${this.cfg.depth} layers exceed the 1023 the dropout seeds allow`);
    const seedOf = (layer: number) => (dropoutSeed * 1024 + layer) * 4;
    const embd = ops.add(ops.embedding(this.wte, ids, [B, L]), ops.embedding(this.wpe, pos, [B, L]));
    let x = ops.dropout(embd, this.training ? this.cfg.embdPdrop ?? 0 : 0, seedOf(0), dropoutRow * L * this.cfg.width);
    this.blocks.forEach((b, i) => {
      const seed = seedOf(i + 1), block = (t: Var) => b.forward(t, lens, seed, dropoutRow);
      // The block's trainable parameters ride along as inputs: the first block's input (frozen
      // embeddings under LoRA) needs no gradient, and the node must be recorded all the same.
      // The recomputation draws the same dropout masks (counter-based, from the same seed).
      x = this.checkpointBlocks ? checkpoint(block, x, ...b.namedParameters().map(([, p]) => p).filter((p) => p.requiresGrad)) : block(x);
    });
    return this.lnF.forward(x);
  }
}
