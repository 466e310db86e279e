// ops.ts: the differentiable ops: each forward runs kernels and records what its backward
// needs; every derivative rule is in the table at the end of this file (defineRule).
// Shapes: x [..., D] means any leading dimensions, flattened to rows for the GEMMs.
import * as kernels from '../kernels/index.js';
import { Tensor } from '../tensor.js';
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

// Column sums of g [R, N] as [N] (a bias gradient): onesᵀ·g.
function columnSums(g: Tensor, N: number): Tensor {
  const R = g.size / N, ones = Tensor.full([R], 1), out = Tensor.empty([N]);
  matmulInto(out, ones, g, { M: 1, K: R, N });
  ones.dispose();
  return out;
}

/** a·t as a new tensor. */
function scaled(t: Tensor, a: number): Tensor {
  return kernels.residual(t, t, { alpha: a - 1 });
}

/** x [..., in] · Wᵀ + b with W [out, in] (PyTorch's Linear layout); y has outShape or [..., out]. */
export function linear(x: Var, w: Var, b: Var | null, outShape?: number[]): Var {
  const [N, K] = w.shape, M = x.value.size / K;
  if (!Number.isInteger(M)) throw new RangeError(`linear: x ${JSON.stringify(x.shape)} does not split into rows of ${K}`);
  const y = Tensor.empty(outShape ?? [...x.shape.slice(0, -1), N]);
  matmulInto(y, x.value, w.value, { M, K, N, transB: true, bias: b?.value ?? null });
  return record('linear', [x, w, b], y, { M, K, N });
}

export function layerNorm(x: Var, w: Var | null, b: Var | null, eps = 1e-6): Var {
  const r = kernels.layerNorm(x.value, w?.value ?? null, b?.value ?? null, { eps });
  return record('layerNorm', [x, w, b], r.y, { mean: r.mean, rstd: r.rstd });
}

export function gelu(x: Var, approximate: 'none' | 'tanh' = 'none'): Var {
  return record('gelu', [x], kernels.gelu(x.value, { approximate }), { tanh: approximate === 'tanh' });
}

/** x + gamma⊙h (LayerScale) or x + h. */
export function add(x: Var, h: Var, gamma: Var | null = null): Var {
  return record('add', [x, h, gamma], kernels.residual(x.value, h.value, { gamma: gamma?.value ?? null }));
}

/** q [B,Lq,H,Dh], k, v [B,Lk,H,Dh] → out [B,Lq,H,Dh]. */
export function attention(q: Var, k: Var, v: Var, opts: kernels.AttentionOptions = {}): Var {
  const r = kernels.flashAttention(q.value, k.value, v.value, opts);
  return record('attention', [q, k, v], r.out, { lse: r.lse, causal: opts.causal ?? false, scale: opts.scale ?? null, kvLens: opts.kvLens ?? null });
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
  const [B] = images.shape, D = weight.shape[0];
  const np = pos.shape[0] - 1, T = 1 + o.registers + np;
  const out = Tensor.empty([B, T, D]);
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
  const r = kernels.clipLoss(img.value, txt.value, logitScale.value.toArray()[0]);
  return record('clipLoss', [img, txt, logitScale], Tensor.fromArray(Float32Array.of(r.loss), [1]), {
    dImg: r.dImg, dTxt: r.dTxt, dScale: r.dLogitScale,
  });
}

// --- rules -----------------------------------------------------------------------------------

const T = (n: Node, k: string) => n.saved[k] as Tensor;
const need = (n: Node, i: number) => n.inputs[i]?.requiresGrad === true;

defineRule('linear', (n, g) => {
  const [x, w, b] = n.inputs as [Var, Var, Var | null];
  const { M, K, N } = n.saved as { M: number; K: number; N: number };
  const dx = need(n, 0) ? matmulInto(Tensor.empty(x.shape), g, w.value, { M, K: N, N: K }) : null;
  const dw = need(n, 1) ? matmulInto(Tensor.empty(w.shape), g, x.value, { M: N, K: M, N: K, transA: true }) : null;
  const db = b && need(n, 2) ? columnSums(g, N) : null;
  return [dx, dw, db];
});

defineRule('layerNorm', (n, g) => {
  const [x, w, b] = n.inputs as [Var, Var | null, Var | null];
  const dw = w && need(n, 1) ? Tensor.zeros(w.shape) : null, db = b && need(n, 2) ? Tensor.zeros(b.shape) : null;
  const dx = kernels.layerNormBackward(g, x.value, T(n, 'mean'), T(n, 'rstd'), w?.value ?? null, { dWeight: dw, dBias: db });
  return [need(n, 0) ? dx : (dx.dispose(), null), dw, db];
});

defineRule('gelu', (n, g) => [kernels.geluBackward(g, (n.inputs[0] as Var).value, { approximate: n.saved.tanh ? 'tanh' : 'none' })]);

defineRule('add', (n, g) => {
  const [, h, gamma] = n.inputs as [Var, Var, Var | null];
  const dGamma = gamma && need(n, 2) ? Tensor.zeros(gamma.shape) : null;
  const dh = need(n, 1) || dGamma ? kernels.residualBackward(g, h.value, { gamma: gamma?.value ?? null, dGamma }) : null;
  return [need(n, 0) ? kernels.copy(g) : null, need(n, 1) ? dh : (dh?.dispose(), null), dGamma];
});

defineRule('attention', (n, g) => {
  const [q, k, v] = n.inputs as [Var, Var, Var];
  const s = n.saved;
  const r = kernels.flashAttentionBackward(q.value, k.value, v.value, n.out.value, T(n, 'lse'), g, {
    causal: s.causal as boolean, scale: (s.scale as number | null) ?? undefined, kvLens: s.kvLens as Int32Array | null,
  });
  return [r.dq, r.dk, r.dv];
});

defineRule('meanPool', (n, g) => [kernels.meanPoolBackward(g, n.saved.L as number)]);

defineRule('l2Normalize', (n, g) => [kernels.l2NormalizeBackward(g, n.out.value, T(n, 'norm'))]);

defineRule('vitTokens', (n, g) => {
  const [weight, bias, pos, cls, reg] = n.inputs as [Var, Var, Var, Var, Var | null];
  const R = n.saved.registers as number, D = weight.shape[0], np = pos.shape[0] - 1;
  const [B, Tn] = g.shape;
  const dW = Tensor.zeros(weight.shape), dB = Tensor.zeros(bias.shape), dPos = Tensor.zeros(pos.shape);
  const dPosPatches = dPos.view(D, [np, D]);
  kernels.patchEmbedBackward(T(n, '_images'), g, { patch: n.saved.patch as number, offset: 1 + R, dWeight: dW, dBias: dB, dPos: dPosPatches });
  dPosPatches.dispose();
  // CLS (and pos[0]) and the registers get the sum over images of their rows.
  const dCls = Tensor.zeros(cls.shape), dReg = reg ? Tensor.zeros(reg.shape) : null;
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

defineRule('clipLoss', (n, g) => {
  const a = g.toArray()[0];
  const dImg = T(n, 'dImg'), dTxt = T(n, 'dTxt');
  // The saved gradients are handed on (not freed with the node) unless they are rescaled.
  delete n.saved.dImg, delete n.saved.dTxt;
  const out = a === 1 ? [dImg, dTxt] : [scaled(dImg, a), scaled(dTxt, a)];
  if (a !== 1) dImg.dispose(), dTxt.dispose();
  return [...out, Tensor.fromArray(Float32Array.of((n.saved.dScale as number) * a), [1])];
});

