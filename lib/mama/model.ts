// model.ts: MaMA (MAMA.md §2–3): the DINOv2 image encoder, the GPT-2 text encoder (LoRA on a
// frozen base, or fully trained when no pre-trained language model is loaded), the global
// projections, the local heads for patches and sentences, the SimCLR head and the two learnable
// scales; loss() runs both views through the image encoder and sums the four terms (before
// lateStep only the image-text term: the local heads and scale get no gradient then).
import * as ops from '../autograd/ops.js';
import { Var } from '../autograd/tape.js';
import { Gpt2, gpt2Presets, type Gpt2Config, type LoraConfig } from '../nn/gpt2.js';
import { BatchNorm1d, Linear } from '../nn/layers.js';
import { InitRng, Module, type Param } from '../nn/module.js';
import { VisionTransformer, vitPresets, type VitConfig } from '../nn/vit.js';
import { Tensor, type Device, type DType } from '../tensor.js';

export type TextPooling = 'mean' | 'first-pad';

export interface MamaConfig {
  vit: VitConfig;
  text: Gpt2Config;
  /** LoRA on a frozen text encoder (the paper's), or undefined to train it fully */
  lora?: LoraConfig;
  embed: number;
  localHidden: number;
  simclrOut: number;
  maxTokens: number;
  maxSentences: number;
  /** recompute each encoder block in backward instead of keeping its activations (both encoders) */
  checkpoint?: boolean;
}

export const mamaPresets = {
  /** the CPU default: a small ViT and GPT-2 at 112 px */
  tiny: {
    vit: { ...vitPresets['vit-tiny-reg4'], imageSize: 112, depth: 4 },
    text: { ...gpt2Presets['gpt2-tiny'], vocab: 788, depth: 2 },
    embed: 128, localHidden: 256, simclrOut: 128, maxTokens: 144, maxSentences: 12, checkpoint: false,
  },
  /** the paper's */
  base: {
    vit: vitPresets['vit-b14-reg4'], text: gpt2Presets.biomedlm, lora: { rank: 8, alpha: 32, dropout: 0.1 },
    embed: 512, localHidden: 2048, simclrOut: 512, maxTokens: 144, maxSentences: 12, checkpoint: true,
  },
} satisfies Record<string, MamaConfig>;

/** Linear → BatchNorm → ReLU → Linear → BatchNorm (no affine) → L2, per token (MAMA.md §2). */
class LocalHead extends Module {
  readonly fc1: Linear;
  readonly bn1: BatchNorm1d;
  readonly fc2: Linear;
  readonly bn2: BatchNorm1d;
  constructor(inF: number, hidden: number, out: number, rng: InitRng) {
    super();
    this.fc1 = this.child('0', new Linear(inF, hidden, rng));
    this.bn1 = this.child('1', new BatchNorm1d(hidden));
    this.fc2 = this.child('3', new Linear(hidden, out, rng));
    this.bn2 = this.child('4', new BatchNorm1d(out, { affine: false }));
  }
  /** x [N, in] → [N, out], unit rows. */
  forward(x: Var): Var {
    return ops.l2Normalize(this.bn2.forward(this.fc2.forward(ops.relu(this.bn1.forward(this.fc1.forward(x))))));
  }
}

/** SimCLR head: Linear (no bias) → BN → ReLU → Linear (no bias) → BN. */
class SimclrHead extends Module {
  readonly fc1: Linear;
  readonly bn1: BatchNorm1d;
  readonly fc2: Linear;
  readonly bn2: BatchNorm1d;
  constructor(D: number, out: number, rng: InitRng) {
    super();
    this.fc1 = this.child('0', new Linear(D, D, rng, { bias: false }));
    this.bn1 = this.child('1', new BatchNorm1d(D));
    this.fc2 = this.child('3', new Linear(D, out, rng, { bias: false }));
    this.bn2 = this.child('4', new BatchNorm1d(out));
  }
  forward(x: Var): Var {
    return this.bn2.forward(this.fc2.forward(ops.relu(this.bn1.forward(this.fc1.forward(x)))));
  }
}

/** What loss() needs of a batch (data.Loader's Batch has these fields). */
export interface MamaBatch {
  images: Float32Array;
  views: Float32Array | null;
  ids: Int32Array;
  lens: Int32Array;
  sentences: Int32Array[];
}

export class Mama extends Module {
  readonly image: VisionTransformer;
  readonly text: Gpt2;
  readonly imageProj: Linear;
  readonly textProj: Linear;
  readonly patchHead: LocalHead;
  readonly sentenceHead: LocalHead;
  readonly simclr: SimclrHead;
  readonly logitScale: Param;
  readonly localScale: Param;

  constructor(readonly cfg: MamaConfig, seed = 0) {
    super();
    const rng = new InitRng(seed + 1);
    this.image = this.child('image_encoder', new VisionTransformer(cfg.vit, seed));
    // MAMA.md §2: the image encoder's final LayerNorm (before the patch tokens) is frozen.
    this.image.norm.weight.requiresGrad = this.image.norm.bias.requiresGrad = false;
    this.text = this.child('text_encoder', new Gpt2(cfg.text, { seed: seed + 2, lora: cfg.lora }));
    this.image.checkpointBlocks = this.text.checkpointBlocks = cfg.checkpoint ?? false;
    this.imageProj = this.child('image_projection', new Linear(cfg.vit.width, cfg.embed, rng));
    this.textProj = this.child('text_projection', new Linear(cfg.text.width, cfg.embed, rng));
    this.patchHead = this.child('local_image_head', new LocalHead(cfg.vit.width, cfg.localHidden, cfg.embed, rng));
    this.sentenceHead = this.child('local_text_head', new LocalHead(cfg.text.width, cfg.localHidden, cfg.embed, rng));
    this.simclr = this.child('simclr_head', new SimclrHead(cfg.vit.width, cfg.simclrOut, rng));
    this.logitScale = this.param('logit_scale', [1], Math.log(1 / 0.07), false);
    this.localScale = this.param('local_scale', [1], Math.log(1 / 0.07), false);
  }

  /**
   * Data-parallel training with comm (null: each rank's own): the patch and SimCLR heads'
   * BatchNorm over every rank's rows. The sentence head's stays per caption (its statistics are
   * one caption's sentences, wherever the caption is).
   */
  syncBatchNorm(comm: ops.Reducer | null): void {
    for (const bn of [this.patchHead.bn1, this.patchHead.bn2, this.simclr.bn1, this.simclr.bn2]) bn.sync = comm;
  }

  /** The device the parameters live on (their ParamArena's). */
  get device(): Device {
    return this.logitScale.value.device;
  }

  /** the dtype the model computes in (its arena's) */
  get dtype(): DType {
    return this.logitScale.value.dtype;
  }

  /**
   * images [B·S·S] (one channel) → a tensor [B, C, S, S] for the encoder (grayscale copied to C
   * channels), uploaded to the model's device in one copy.
   */
  imageTensor(px: Float32Array): Tensor {
    const S = this.cfg.vit.imageSize, C = this.cfg.vit.channels, B = px.length / (S * S), device = this.device, dtype = this.dtype;
    if (C === 1) return Tensor.fromArray(px, [B, 1, S, S], { device, dtype });
    const out = new Float32Array(B * C * S * S);
    for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) out.set(px.subarray(b * S * S, (b + 1) * S * S), (b * C + c) * S * S);
    return Tensor.fromArray(out, [B, C, S, S], { device, dtype });
  }

  /** Global image features [B, E] (unit rows) and what the other heads need. */
  encodeImage(images: Tensor) {
    const { hidden, patches } = this.image.forward(images);
    const pooled = ops.meanPool(hidden); // all tokens, before the final norm
    return { v: ops.l2Normalize(this.imageProj.forward(pooled)), pooled, patches };
  }

  /**
   * Global text features [B, E] (unit rows), and the hidden states [B, L, Dt] for the sentences.
   * pooling 'mean': over all L positions, padding included (training); 'first-pad': the hidden
   * state at the first padding position (the last one when there is none), as the authors'
   * zero-shot code pools.
   */
  encodeText(ids: Int32Array, lens: Int32Array, pooling: TextPooling = 'mean', dropoutSeed = 0, dropoutRow = 0) {
    const B = lens.length, L = ids.length / B;
    const h = this.text.forward(ids, B, L, lens, dropoutSeed, dropoutRow);
    const pooled = pooling === 'mean' ? ops.meanPool(h) : ops.gatherRows(h, Int32Array.from(lens, (n, b) => b * L + Math.min(n, L - 1)));
    return { t: ops.l2Normalize(this.textProj.forward(pooled)), hidden: h };
  }

  /**
   * Sentence features [B, S, E] from the hidden states [B, L, Dt] at the separator positions,
   * and the real sentences per caption. The head runs once per caption (MAMA.md §2: the authors'
   * code does), so in training each caption's BatchNorm statistics are its own sentences' and the
   * running statistics take one momentum update per caption, in order. Rows past a caption's
   * count repeat a real one (localAlign never reads them, so they get no gradient).
   */
  sentenceFeatures(hidden: Var, sentences: Int32Array[]): { sent: Var; counts: Int32Array } {
    const [B, L, Dt] = hidden.shape, S = this.cfg.maxSentences, counts = new Int32Array(B), first = new Int32Array(B);
    const real: number[] = [];
    sentences.forEach((pos, b) => {
      counts[b] = Math.max(1, Math.min(S, pos.length));
      if (counts[b] < 2 && this.sentenceHead.training) throw new RangeError(`Mama: caption ${b} has ${pos.length} sentence(s); BatchNorm per caption needs 2 or more in training`);
      first[b] = real.length;
      for (let j = 0; j < counts[b]; j++) real.push(b * L + (pos.length ? pos[j] : 0));
    });
    // One gather (one index upload), then each caption's rows as a slice of it.
    const rows = ops.reshape(ops.gatherRows(hidden, Int32Array.from(real)), [1, real.length, Dt]);
    const heads = Array.from(counts, (n, b) => this.sentenceHead.forward(ops.reshape(ops.tokens(rows, first[b], n), [n, Dt])));
    const spread = Int32Array.from({ length: B * S }, (_, i) => first[Math.floor(i / S)] + Math.min(i % S, counts[Math.floor(i / S)] - 1));
    return { sent: ops.reshape(ops.gatherRows(ops.concatRows(heads), spread), [B, S, this.cfg.embed]), counts };
  }

  /**
   * The training loss [1] of a batch; late: all four terms (from lateStep on); dropoutSeed
   * draws the text encoder's dropout masks (give each micro-batch its own); o.gather, in
   * data-parallel training: NT-Xent over every rank's pairs (MaMA's), the other terms per rank,
   * or with o.all every term over every rank's pairs; o.rows, the ranks' batch sizes where known
   * (else the gathered terms gather them); o.dropoutRow, the batch's first row in the
   * batch that the ranks' batches make together (Gpt2.forward: the ranks draw that batch's
   * dropout masks). `inputs` are the image tensors, which backward still reads: dispose them after it.
   */
  loss(batch: MamaBatch, late: boolean, dropoutSeed = 0, o: { gather?: ops.Gatherer | null; all?: boolean; rows?: readonly number[]; dropoutRow?: number } = {}): { loss: Var; parts: Record<string, Var>; inputs: Tensor[] } {
    const B = batch.lens.length;
    const x = this.imageTensor(batch.images);
    const img = this.encodeImage(x);
    const txt = this.encodeText(batch.ids, batch.lens, 'mean', dropoutSeed, o.dropoutRow);
    const all = o.gather && o.all ? o.gather : null;
    const clip = (v: Var) => (all ? ops.clipLossGathered(v, txt.t, this.logitScale, all, o.rows) : ops.clipLoss(v, txt.t, this.logitScale));
    const parts: Record<string, Var> = { clip: clip(img.v) };
    const inputs = [x];
    let loss = parts.clip;
    if (late && batch.views) {
      const x2 = this.imageTensor(batch.views);
      inputs.push(x2);
      const img2 = this.encodeImage(x2);
      parts.clip2 = clip(img2.v);
      const z0 = this.simclr.forward(img.pooled), z1 = this.simclr.forward(img2.pooled);
      parts.ntxent = o.gather ? ops.ntXentGathered(z0, z1, 0.5, o.gather, o.rows) : ops.ntXent(z0, z1, 0.5);
      const { sent, counts } = this.sentenceFeatures(txt.hidden, batch.sentences);
      const [, Np, D] = img.patches.shape;
      const pat = ops.reshape(this.patchHead.forward(ops.reshape(img.patches, [B * Np, D])), [B, Np, this.cfg.embed]);
      parts.local = all ? ops.localAlignGathered(pat, sent, counts, this.localScale, all, o.rows) : ops.localAlign(pat, sent, counts, this.localScale);
      loss = ops.add(ops.add(ops.add(loss, parts.clip2), parts.ntxent), parts.local);
    }
    return { loss, parts, inputs };
  }
}
