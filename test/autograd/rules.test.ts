// rules.test.ts: every derivative rule of the tape against central differences. The rules table
// is the list: a rule without a case here fails. Cases include an op that consumes one Var
// twice (add(x, x), x·xᵀ, attention(x, x, x), …) and a Var consumed by two ops, so a rule or
// the tape overwriting a gradient instead of adding to it fails.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { autograd, kernels, Tensor } from 'mamakit';
import { ruleNames } from '../../lib/autograd/tape.js';
import { assertClose, Rng } from '../helpers/index.js';

const test = suite('autograd rules');
const rng = new Rng(77);
const { Var, backward, noGrad, ops, checkpoint } = autograd;
type V = autograd.Var;

const leaf = (shape: number[], scale = 1, data?: Float32Array) => new Var(Tensor.fromArray(data ?? rng.randn(shape.reduce((a, b) => a * b, 1), scale), shape), true);
// Values at least 0.2 from 0, where ReLU's kink is out of a difference's reach.
const awayFromZero = (n: number) => rng.randn(n).map((v) => (v >= 0 ? 0.2 + v : -0.2 + v));

interface Case {
  /** the leaves whose gradients are checked */
  leaves: V[];
  /** builds the output from the leaves (called with and without a tape) */
  f: () => V;
  /** difference step and tolerance (defaults 5e-3; atol 2e-3, rtol 2e-2) */
  h?: number;
  atol?: number;
}

// rule name → cases. Each case's loss is Σ W⊙f() for a fixed random W (a [1] loss gets W = 0.7,
// so a loss head's rule is checked with an upstream gradient other than 1).
const cases: Record<string, Array<[string, () => Case]>> = {
  linear: [
    ['x·Wᵀ + b', () => { const x = leaf([3, 4]), w = leaf([5, 4]), b = leaf([5]); return { leaves: [x, w, b], f: () => ops.linear(x, w, b) }; }],
    ['x·W (inOut), no bias, 3-d x', () => { const x = leaf([2, 3, 4]), w = leaf([4, 5]); return { leaves: [x, w], f: () => ops.linear(x, w, null, undefined, true) }; }],
    ['x·xᵀ (one Var twice)', () => { const x = leaf([4, 4]); return { leaves: [x], f: () => ops.linear(x, x, null) }; }],
    ['x·x (inOut, one Var twice)', () => { const x = leaf([4, 4]); return { leaves: [x], f: () => ops.linear(x, x, null, undefined, true) }; }],
  ],
  layerNorm: [
    ['affine', () => { const x = leaf([3, 6]), w = leaf([6]), b = leaf([6]); return { leaves: [x, w, b], f: () => ops.layerNorm(x, w, b, 1e-5) }; }],
    ['weight and bias one Var', () => { const x = leaf([3, 6]), w = leaf([6]); return { leaves: [x, w], f: () => ops.layerNorm(x, w, w, 1e-5) }; }],
  ],
  relu: [['x', () => { const x = leaf([3, 5], 1, awayFromZero(15)); return { leaves: [x], f: () => ops.relu(x) }; }]],
  gatherRows: [['repeated rows', () => { const x = leaf([4, 3]); return { leaves: [x], f: () => ops.gatherRows(x, Int32Array.of(1, 3, 1, 0, 1)) }; }]],
  gelu: [
    ['erf', () => { const x = leaf([3, 5], 2); return { leaves: [x], f: () => ops.gelu(x) }; }],
    ['tanh', () => { const x = leaf([3, 5], 2); return { leaves: [x], f: () => ops.gelu(x, 'tanh') }; }],
  ],
  add: [
    ['x + h', () => { const x = leaf([3, 4]), h = leaf([3, 4]); return { leaves: [x, h], f: () => ops.add(x, h) }; }],
    ['x + γ⊙h', () => { const x = leaf([3, 4]), h = leaf([3, 4]), g = leaf([4]); return { leaves: [x, h, g], f: () => ops.add(x, h, g) }; }],
    ['x + x (one Var twice)', () => { const x = leaf([3, 4]); return { leaves: [x], f: () => ops.add(x, x) }; }],
    ['x + γ⊙x', () => { const x = leaf([3, 4]), g = leaf([4]); return { leaves: [x, g], f: () => ops.add(x, x, g) }; }],
    ['g + g⊙g (one Var three times)', () => { const g = leaf([4]); return { leaves: [g], f: () => ops.add(g, g, g) }; }],
  ],
  attention: [
    ['q, k, v, Lq ≠ Lk', () => { const q = leaf([2, 3, 2, 4]), k = leaf([2, 5, 2, 4]), v = leaf([2, 5, 2, 4]); return { leaves: [q, k, v], f: () => ops.attention(q, k, v) }; }],
    ['causal, kvLens', () => { const q = leaf([2, 4, 1, 3]), k = leaf([2, 4, 1, 3]), v = leaf([2, 4, 1, 3]); return { leaves: [q, k, v], f: () => ops.attention(q, k, v, { causal: true, kvLens: Int32Array.of(4, 2) }) }; }],
    ['attention(x, x, x) (one Var three times)', () => { const x = leaf([1, 4, 2, 3]); return { leaves: [x], f: () => ops.attention(x, x, x) }; }],
    ['dropout p 0.3, causal, kvLens (the backward redraws the mask)', () => {
      const q = leaf([2, 5, 2, 3]), k = leaf([2, 5, 2, 3]), v = leaf([2, 5, 2, 3]);
      return { leaves: [q, k, v], f: () => ops.attention(q, k, v, { causal: true, kvLens: Int32Array.of(5, 3), dropout: { p: 0.3, seed: 9, offset: 4 } }) };
    }],
  ],
  embedding: [['repeated ids', () => { const t = leaf([5, 3]); return { leaves: [t], f: () => ops.embedding(t, Int32Array.of(2, 0, 2, 4, 2, 1), [2, 3]) }; }]],
  columns: [['a slice of a fused projection', () => { const x = leaf([3, 7]); return { leaves: [x], f: () => ops.columns(x, 2, 3) }; }]],
  tokens: [['patch tokens', () => { const x = leaf([2, 5, 3]); return { leaves: [x], f: () => ops.tokens(x, 1, 3) }; }]],
  addScaled: [
    ['x + αh', () => { const x = leaf([3, 4]), h = leaf([3, 4]); return { leaves: [x, h], f: () => ops.addScaled(x, h, 0.3) }; }],
    ['x + αx', () => { const x = leaf([3, 4]); return { leaves: [x], f: () => ops.addScaled(x, x, -0.6) }; }],
  ],
  dropout: [['p 0.3', () => { const x = leaf([4, 6]); return { leaves: [x], f: () => ops.dropout(x, 0.3, 5, 7) }; }]],
  batchNorm: [
    ['training', () => { const x = leaf([6, 4]), w = leaf([4]), b = leaf([4]); return { leaves: [x, w, b], f: () => ops.batchNorm(x, w, b, { training: true }) }; }],
    ['evaluation (running statistics)', () => {
      const x = leaf([6, 4]), w = leaf([4]), b = leaf([4]);
      const running: [Tensor, Tensor] = [Tensor.fromArray(rng.randn(4, 0.3), [4]), Tensor.fromArray(rng.randn(4).map((v) => 0.5 + v * v), [4])];
      return { leaves: [x, w, b], f: () => ops.batchNorm(x, w, b, { training: false, running }) };
    }],
  ],
  // A second rank that mirrors this one (its rows, its upstream gradient): then the op's gradient
  // is the derivative of this rank's output with both ranks' rows moving together.
  syncBatchNorm: [['2 mirrored ranks', () => {
    const x = leaf([6, 4]), w = leaf([4]), b = leaf([4]);
    const comm = {
      rank: 0, size: 2, allReduce: (t: Tensor) => kernels.scale(t, 2),
      allGather: (t: Tensor) => { const a = t.toArray(), both = new Float32Array(2 * a.length); both.set(a), both.set(a, a.length); return Tensor.fromArray(both, [2 * t.shape[0], ...t.shape.slice(1)]); },
    };
    return { leaves: [x, w, b], f: () => ops.syncBatchNorm(x, w, b, { training: true, comm }) };
  }]],
  interpolatePos: [['2×2 → 3×2', () => { const p = leaf([5, 3]); return { leaves: [p], f: () => ops.interpolatePos(p, [2, 2], [3, 2]) }; }]],
  meanPool: [['x', () => { const x = leaf([2, 3, 4]); return { leaves: [x], f: () => ops.meanPool(x) }; }]],
  l2Normalize: [['x', () => { const x = leaf([3, 4]); return { leaves: [x], f: () => ops.l2Normalize(x) }; }]],
  vitTokens: [['CLS, registers, patches', () => {
    const images = Tensor.fromArray(rng.randn(2 * 1 * 4 * 4), [2, 1, 4, 4]);
    const w = leaf([3, 4]), b = leaf([3]), pos = leaf([5, 3]), cls = leaf([1, 3]), reg = leaf([2, 3]);
    return { leaves: [w, b, pos, cls, reg], f: () => ops.vitTokens(images, w, b, pos, cls, reg, { patch: 2, registers: 2 }) };
  }]],
  concatRows: [['three parts, one Var twice', () => {
    const a = leaf([2, 3]), b = leaf([1, 3]);
    return { leaves: [a, b], f: () => ops.concatRows([a, b, a]) };
  }]],
  reshape: [['[2,6] → [3,4]', () => { const x = leaf([2, 6]); return { leaves: [x], f: () => ops.reshape(x, [3, 4]) }; }]],
  lossHead: [
    ['CLIP: image, text, scale', () => {
      const i = leaf([3, 4]), t = leaf([3, 4]), s = leaf([1], 1, Float32Array.of(0.8));
      return { leaves: [i, t, s], f: () => ops.clipLoss(ops.l2Normalize(i), ops.l2Normalize(t), s) };
    }],
    ['CLIP: one normalised Var as image and text', () => {
      const x = leaf([3, 4]), s = leaf([1], 1, Float32Array.of(0.8));
      return { leaves: [x, s], f: () => { const n = ops.l2Normalize(x); return ops.clipLoss(n, n, s); } };
    }],
    ['NT-Xent', () => { const a = leaf([4, 3]), b = leaf([4, 3]); return { leaves: [a, b], f: () => ops.ntXent(a, b, 0.5) }; }],
    ['NT-Xent of one Var against itself', () => { const a = leaf([4, 3]); return { leaves: [a], f: () => ops.ntXent(a, a, 0.5) }; }],
    ['local alignment', () => {
      const p = leaf([2, 3, 4], 1, rng.unitRows(6, 4)), s = leaf([2, 2, 4], 1, rng.unitRows(4, 4)), scale = leaf([1], 1, Float32Array.of(0.4));
      // Normalised inside the graph: the differences move the raw rows, the maxima stay put.
      return { leaves: [p, s, scale], f: () => ops.localAlign(ops.l2Normalize(p), ops.l2Normalize(s), Int32Array.of(2, 1), scale), h: 1e-3 };
    }],
  ],
  checkpoint: [['a block that uses its input twice and a parameter', () => {
    const x = leaf([3, 4]), w = leaf([4, 4]), g = leaf([4]);
    return { leaves: [x, w, g], f: () => checkpoint((a, b) => ops.add(ops.gelu(a), ops.linear(a, b, null), g), x, w) };
  }]],
};

// Cases that involve more than one op: a Var consumed by two different ops, a residual whose
// branch is the identity, and a chain where one intermediate feeds two consumers.
const composite: Array<[string, () => Case]> = [
  ['x into gelu and layerNorm, summed', () => { const x = leaf([3, 5]); return { leaves: [x], f: () => ops.add(ops.gelu(x), ops.layerNorm(x, null, null, 1e-5)) }; }],
  ['identity residual: x + x·Wᵀ, then x again', () => { const x = leaf([2, 4]), w = leaf([4, 4]); return { leaves: [x, w], f: () => ops.add(ops.add(x, ops.linear(x, w, null)), x) }; }],
  ['an intermediate read by two ops', () => { const x = leaf([3, 4]); return { leaves: [x], f: () => { const y = ops.gelu(x); return ops.addScaled(ops.layerNorm(y, null, null, 1e-5), ops.relu(y), 0.5); } }; }],
];

function dotF64(a: Float32Array, w: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * w[i];
  return s;
}

function check(name: string, make: () => Case): void {
  const c = make();
  const out = c.f();
  const W = out.value.size === 1 ? Float32Array.of(0.7) : rng.randn(out.value.size);
  backward(out, Tensor.fromArray(W, out.shape));
  const h = c.h ?? 5e-3;
  const loss = () => noGrad(() => {
    const y = c.f();
    const v = dotF64(y.value.toArray(), W);
    y.dispose();
    return v;
  });
  c.leaves.forEach((x, k) => {
    const value = x.value.toArray(), analytic = x.grad ? x.grad.toArray() : new Float32Array(value.length);
    const numeric = new Float64Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const at = (d: number) => {
        const v = value.slice();
        v[i] += d;
        kernels.copy(Tensor.fromArray(v, x.shape), x.value);
        return loss();
      };
      numeric[i] = (at(h) - at(-h)) / (2 * h);
      at(0);
    }
    const what = `${name}: input ${k} ${JSON.stringify(x.shape)}`;
    let diff = 0, norm = 0;
    for (let i = 0; i < value.length; i++) (diff += (analytic[i] - numeric[i]) ** 2), (norm += numeric[i] ** 2);
    assert.ok(norm > 1e-6, `${what}: the case gives no gradient to check`);
    assertClose(analytic, numeric, { atol: c.atol ?? 2e-3, rtol: 2e-2, what });
    // As a whole tensor too: a gradient that is wrong everywhere by a little fails here.
    assert.ok(Math.sqrt(diff / norm) < 1e-2, `${what}: ‖analytic − numeric‖ / ‖numeric‖ = ${Math.sqrt(diff / norm).toExponential(2)}`);
  });
}

test('every rule in the table has a case here, and every case names a rule', () => {
  const rules = ruleNames().sort(), covered = Object.keys(cases).sort();
  assert.equal(rules.filter((r) => !covered.includes(r)), [], 'rules without a gradient case');
  assert.equal(covered.filter((r) => !rules.includes(r)), [], 'cases for rules that do not exist');
});

for (const [rule, list] of Object.entries(cases)) {
  test(`${rule}: gradients match central differences`, () => {
    for (const [name, make] of list) check(`${rule} (${name})`, make);
  });
}

test('a Var consumed by two ops, an identity residual, an intermediate with two consumers', () => {
  for (const [name, make] of composite) check(name, make);
});

test.run();
