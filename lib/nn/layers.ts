// layers.ts: Linear, LayerNorm, the MLP, multi-head self-attention and the pre-norm
// transformer Block with LayerScale, with Hugging Face (DINOv2) parameter names.
import * as ops from '../autograd/ops.js';
import type { Var } from '../autograd/tape.js';
import type { Tensor } from '../tensor.js';
import { Group, InitRng, Module, type Param } from './module.js';

export class Linear extends Module {
  readonly weight: Param; // [out, in]
  readonly bias: Param | null;
  constructor(readonly inF: number, readonly outF: number, rng: InitRng, opts: { bias?: boolean; std?: number } = {}) {
    super();
    this.weight = this.param('weight', [outF, inF], rng.truncNormal(outF * inF, opts.std ?? 0.02), true);
    this.bias = opts.bias === false ? null : this.param('bias', [outF], 0, false);
  }
  /** x [..., in] → [..., out] (or outShape). */
  forward(x: Var, outShape?: number[]): Var {
    return ops.linear(x, this.weight, this.bias, outShape);
  }
}

export class LayerNorm extends Module {
  readonly weight: Param;
  readonly bias: Param;
  constructor(readonly dim: number, readonly eps = 1e-6) {
    super();
    this.weight = this.param('weight', [dim], 1, false);
    this.bias = this.param('bias', [dim], 0, false);
  }
  forward(x: Var): Var {
    return ops.layerNorm(x, this.weight, this.bias, this.eps);
  }
}

export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(dim: number, hidden: number, rng: InitRng, readonly approximate: 'none' | 'tanh' = 'none') {
    super();
    this.fc1 = this.child('fc1', new Linear(dim, hidden, rng));
    this.fc2 = this.child('fc2', new Linear(hidden, dim, rng));
  }
  forward(x: Var): Var {
    return this.fc2.forward(ops.gelu(this.fc1.forward(x), this.approximate));
  }
}

/** Multi-head self-attention with separate query/key/value projections (DINOv2's layout). */
export class SelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly dense: Linear;
  constructor(readonly dim: number, readonly heads: number, rng: InitRng) {
    super();
    if (dim % heads) throw new RangeError(`SelfAttention: width ${dim} is not a multiple of ${heads} heads`);
    const attn = this.child('attention', new Group());
    this.query = attn.add('query', new Linear(dim, dim, rng));
    this.key = attn.add('key', new Linear(dim, dim, rng));
    this.value = attn.add('value', new Linear(dim, dim, rng));
    this.dense = this.child('output', new Group()).add('dense', new Linear(dim, dim, rng));
  }
  /** x [B, L, D] → [B, L, D]. */
  forward(x: Var): Var {
    const [B, L] = x.shape, Dh = this.dim / this.heads;
    const heads = [B, L, this.heads, Dh];
    const q = this.query.forward(x, heads), k = this.key.forward(x, heads), v = this.value.forward(x, heads);
    return this.dense.forward(ops.attention(q, k, v), [B, L, this.dim]);
  }
}

export class LayerScale extends Module {
  readonly lambda1: Param;
  constructor(dim: number, init: number) {
    super();
    this.lambda1 = this.param('lambda1', [dim], init, false);
  }
}

/** Pre-norm block: x + ls1⊙attn(norm1(x)), then x + ls2⊙mlp(norm2(x)). */
export class Block extends Module {
  readonly norm1: LayerNorm;
  readonly attention: SelfAttention;
  readonly ls1: LayerScale;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly ls2: LayerScale;
  constructor(dim: number, heads: number, mlpRatio: number, rng: InitRng, layerScale = 1e-5, eps = 1e-6) {
    super();
    this.norm1 = this.child('norm1', new LayerNorm(dim, eps));
    this.attention = this.child('attention', new SelfAttention(dim, heads, rng));
    this.ls1 = this.child('layer_scale1', new LayerScale(dim, layerScale));
    this.norm2 = this.child('norm2', new LayerNorm(dim, eps));
    this.mlp = this.child('mlp', new Mlp(dim, dim * mlpRatio, rng));
    this.ls2 = this.child('layer_scale2', new LayerScale(dim, layerScale));
  }
  forward(x: Var): Var {
    const a = ops.add(x, this.attention.forward(this.norm1.forward(x)), this.ls1.lambda1);
    return ops.add(a, this.mlp.forward(this.norm2.forward(a)), this.ls2.lambda1);
  }
}

/** BatchNorm1d over [R, C] with running statistics (PyTorch's names: weight, bias, running_mean, running_var). */
export class BatchNorm1d extends Module {
  readonly weight: Param | null;
  readonly bias: Param | null;
  readonly runningMean: Param;
  readonly runningVar: Param;
  constructor(readonly channels: number, opts: { affine?: boolean; momentum?: number; eps?: number } = {}) {
    super();
    const affine = opts.affine ?? true;
    this.weight = affine ? this.param('weight', [channels], 1, false) : null;
    this.bias = affine ? this.param('bias', [channels], 0, false) : null;
    // Buffers: in the arena (saved with the weights), never trained.
    this.runningMean = this.param('running_mean', [channels], 0, false);
    this.runningVar = this.param('running_var', [channels], 1, false);
    this.runningMean.requiresGrad = this.runningVar.requiresGrad = false;
    this.runningMean.keepF32 = this.runningVar.keepF32 = true;
    this.momentum = opts.momentum ?? 0.1;
    this.eps = opts.eps ?? 1e-5;
  }
  readonly momentum: number;
  readonly eps: number;
  /** under mpirun: training statistics over every rank's rows (ops.syncBatchNorm); null: this rank's */
  sync: ops.Reducer | null = null;
  forward(x: Var): Var {
    const o = { running: [this.runningMean.value, this.runningVar.value] as [Tensor, Tensor], training: this.training, momentum: this.momentum, eps: this.eps };
    return this.sync ? ops.syncBatchNorm(x, this.weight, this.bias, { ...o, comm: this.sync }) : ops.batchNorm(x, this.weight, this.bias, o);
  }
}

/** Inverted dropout in training mode, the identity in evaluation; `seed` and `offset` are the caller's (a step counter makes masks differ per step). */
export class Dropout extends Module {
  constructor(readonly p: number) {
    super();
  }
  forward(x: Var, seed: number, offset = 0): Var {
    return ops.dropout(x, this.training ? this.p : 0, seed, offset);
  }
}

/** What LoRA wraps: a layer mapping [..., in] to [..., out]. */
export interface LinearLike {
  readonly inF: number;
  readonly outF: number;
  forward(x: Var, outShape?: number[]): Var;
}

/**
 * LoRA (Hu et al.; PEFT's layout): y = base(x) + (alpha/rank)·B·A·dropout(x), A [rank, in] from
 * PEFT's kaiming_uniform_(a = √5), B [out, rank] = 0, so a wrapped model starts as the base. The
 * base's own parameters stay as they are (frozen when the caller says so).
 */
export class LoRA extends Module {
  readonly A: Param;
  readonly B: Param;
  constructor(readonly base: LinearLike, readonly rank: number, readonly alpha: number, readonly p: number, rng: InitRng) {
    super();
    const a = this.child('lora_A', new Group()), b = this.child('lora_B', new Group());
    // Kaiming-uniform with a = √5: bound = √(6 / ((1 + a²)·fan_in)) = 1/√fan_in, fan_in = in.
    this.A = a.addParam('weight', [rank, base.inF], rng.uniform(rank * base.inF, Math.sqrt(6 / ((1 + 5) * base.inF))), true);
    this.B = b.addParam('weight', [base.outF, rank], 0, true);
  }
  forward(x: Var, outShape?: number[], dropoutSeed = 0, dropoutOffset = 0): Var {
    const low = ops.linear(ops.dropout(x, this.training ? this.p : 0, dropoutSeed, dropoutOffset), this.A, null);
    return ops.addScaled(this.base.forward(x, outShape), ops.linear(low, this.B, null, outShape), this.alpha / this.rank);
  }
}
