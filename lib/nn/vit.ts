// vit.ts: the DINOv2 vision transformer with register tokens (MAMA.md §2), parameter names as
// Hugging Face's Dinov2WithRegistersModel: embeddings.{cls_token, register_tokens,
// position_embeddings, patch_embeddings.projection}, encoder.layer.N.*, layernorm.
import * as ops from '../autograd/ops.js';
import { checkpoint, type Var } from '../autograd/tape.js';
import type { Tensor } from '../tensor.js';
import { Block } from './layers.js';
import { Group, InitRng, Module, type Param } from './module.js';
import { LayerNorm } from './layers.js';

export interface VitConfig {
  imageSize: number;
  patch: number;
  channels: number;
  width: number;
  depth: number;
  heads: number;
  mlpRatio: number;
  registers: number;
  layerScale: number;
  eps: number;
}

export const vitPresets = {
  /** the paper's: DINOv2 ViT-B/14 with 4 registers at 518 px (3 channels: grayscale copied) */
  'vit-b14-reg4': { imageSize: 518, patch: 14, channels: 3, width: 768, depth: 12, heads: 12, mlpRatio: 4, registers: 4, layerScale: 1e-5, eps: 1e-6 },
  /** a small one for CPU training: 6 layers, width 192, 3 heads, grayscale 224 px, patch 16 */
  'vit-tiny-reg4': { imageSize: 224, patch: 16, channels: 1, width: 192, depth: 6, heads: 3, mlpRatio: 4, registers: 4, layerScale: 1e-5, eps: 1e-6 },
} satisfies Record<string, VitConfig>;

/** Parameters of a ViT from its config alone (the model is never allocated). */
export function vitParamCount(c: VitConfig): number {
  const D = c.width, g = c.imageSize / c.patch, H = D * c.mlpRatio;
  const emb = D + c.registers * D + (1 + g * g) * D + D * c.channels * c.patch * c.patch + D;
  const layer = 4 * D + 4 * (D * D + D) + 2 * D + (D * H + H) + (H * D + D);
  return emb + c.depth * layer + 2 * D;
}

export class VisionTransformer extends Module {
  readonly cls: Param;
  readonly reg: Param | null;
  readonly pos: Param;
  readonly patchW: Param;
  readonly patchB: Param;
  readonly blocks: Block[] = [];
  readonly norm: LayerNorm;
  /** recompute each block in backward instead of keeping its activations (large configurations) */
  checkpointBlocks = false;

  constructor(readonly cfg: VitConfig, seed = 0) {
    super();
    const rng = new InitRng(seed);
    const D = cfg.width, g = cfg.imageSize / cfg.patch;
    if (!Number.isInteger(g)) throw new RangeError(`VisionTransformer: image size ${cfg.imageSize} is not a multiple of patch ${cfg.patch}`);
    const emb = this.child('embeddings', new EmbeddingParams());
    this.cls = emb.p('cls_token', [1, D], rng.truncNormal(D, 1e-6), false, [1, 1, D]);
    this.reg = cfg.registers ? emb.p('register_tokens', [cfg.registers, D], rng.truncNormal(cfg.registers * D, 1e-6), false, [1, cfg.registers, D]) : null;
    this.pos = emb.p('position_embeddings', [1 + g * g, D], rng.truncNormal((1 + g * g) * D, 0.02), false, [1, 1 + g * g, D]);
    const proj = emb.add('patch_embeddings', new Group()).add('projection', new EmbeddingParams());
    const kp = cfg.channels * cfg.patch * cfg.patch;
    this.patchW = proj.p('weight', [D, kp], rng.truncNormal(D * kp, 0.02), true, [D, cfg.channels, cfg.patch, cfg.patch]);
    this.patchB = proj.p('bias', [D], 0, false);
    const layers = this.child('encoder', new Group()).add('layer', new Group());
    for (let i = 0; i < cfg.depth; i++)
      this.blocks.push(layers.add(String(i), new Block(D, cfg.heads, cfg.mlpRatio, rng, cfg.layerScale, cfg.eps)));
    this.norm = this.child('layernorm', new LayerNorm(D, cfg.eps));
  }

  /** Tokens per image: CLS, registers, patches. */
  get tokens(): number {
    return 1 + this.cfg.registers + (this.cfg.imageSize / this.cfg.patch) ** 2;
  }

  /**
   * images [B, C, H, W] (the configured size, or any multiple of the patch: the position
   * embedding is then interpolated) → { hidden: the last block's output before the final norm
   * [B, T, D], normed: after it, patches: its patch tokens [B, Np, D] (the local features) }.
   */
  forward(images: Tensor): { hidden: Var; normed: Var; patches: Var } {
    const [, , H, W] = images.shape, p = this.cfg.patch, g = this.cfg.imageSize / p;
    if (H % p || W % p) throw new RangeError(`VisionTransformer: ${H}×${W} images are not in whole ${p}-pixel patches`);
    // Another grid than the one trained: the position embedding is resampled (DINOv2's bicubic).
    const pos = H === this.cfg.imageSize && W === this.cfg.imageSize ? this.pos : ops.interpolatePos(this.pos, [g, g], [H / p, W / p]);
    let x = ops.vitTokens(images, this.patchW, this.patchB, pos, this.cls, this.reg, { patch: p, registers: this.cfg.registers });
    for (const b of this.blocks) x = this.checkpointBlocks ? checkpoint((t) => b.forward(t), x) : b.forward(x);
    const normed = this.norm.forward(x), first = 1 + this.cfg.registers;
    return { hidden: x, normed, patches: ops.tokens(normed, first, normed.shape[1] - first) };
  }
}

class EmbeddingParams extends Group {
  p(name: string, shape: number[], init: Float32Array | number, decay: boolean, hfShape?: number[]): Param {
    return this.param(name, shape, init, decay, hfShape);
  }
}
