// local_align.test.ts: localAlignLoss against a float64 reference of MAMA.md §3.4 that holds
// every similarity, its gradients against that reference's arg-max gradient and against
// central differences, padded sentence rows (large enough to win every max, or NaN) that must never matter, one process and a
// local block against gathered rows, named errors.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { kernels, Tensor } from 'mamakit';
import { assertClose, checkGrad, cudaTest, forEachIsa, Rng, throwsNamed, type Num } from '../helpers/index.js';

const test = suite('localAlignLoss');
const rng = new Rng(314);

interface Batch { B: number; P: number; S: number; E: number; counts: number[] }

// cV, cT [Bc × Bi] for captions (sent, counts) against images (pat), with arg-maxes.
function scores(g: Batch, sent: Num, counts: number[], Bc: number, pat: Num, Bi: number) {
  const { P, S, E } = g;
  const cv = new Float64Array(Bc * Bi), ct = new Float64Array(Bc * Bi);
  const av: number[][] = [], at: number[][] = [];
  for (let m = 0; m < Bc; m++)
    for (let n = 0; n < Bi; n++) {
      const c = (j: number, k: number) => {
        let d = 0;
        for (let e = 0; e < E; e++) d += sent[(m * S + j) * E + e] * pat[(n * P + k) * E + e];
        return d;
      };
      const a1: number[] = [], a2: number[] = [];
      let sv = 0, st = 0;
      for (let j = 0; j < counts[m]; j++) {
        let best = 0;
        for (let k = 1; k < P; k++) if (c(j, k) > c(j, best)) best = k;
        a1.push(best), (sv += c(j, best));
      }
      for (let k = 0; k < P; k++) {
        let best = 0;
        for (let j = 1; j < counts[m]; j++) if (c(j, k) > c(best, k)) best = j;
        a2.push(best), (st += c(best, k));
      }
      cv[m * Bi + n] = sv / counts[m], ct[m * Bi + n] = st / P;
      av.push(a1), at.push(a2);
    }
  return { cv, ct, av, at };
}

// Mean over rows of CE(x[r, :], off + r), x [R, C] read through get(r, c); grad += dL/dx.
function ce(get: (r: number, c: number) => number, R: number, C: number, off: number, grad?: (r: number, c: number, v: number) => void) {
  let loss = 0;
  for (let r = 0; r < R; r++) {
    const z = Array.from({ length: C }, (_, c) => get(r, c));
    const m = Math.max(...z), lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
    loss += lse - z[off + r];
    if (grad) z.forEach((v, c) => grad(r, c, (Math.exp(v - lse) - (c === off + r ? 1 : 0)) / R));
  }
  return loss / R;
}

// One process, float64: loss, and dPatches, dSentences, dScale by the arg-max rule.
function ref(g: Batch, pat: Num, sent: Num, ls: number) {
  const { B, P, S, E, counts } = g;
  const s = Math.exp(ls);
  const { cv, ct, av, at } = scores(g, sent, counts, B, pat, B);
  const gv = new Float64Array(B * B), gt = new Float64Array(B * B);
  const V = (r: number, c: number) => s * cv[r * B + c], T = (r: number, c: number) => s * ct[r * B + c];
  const loss = ce(V, B, B, 0, (r, c, v) => (gv[r * B + c] += v)) + ce((r, c) => V(c, r), B, B, 0, (r, c, v) => (gv[c * B + r] += v)) +
    ce(T, B, B, 0, (r, c, v) => (gt[r * B + c] += v)) + ce((r, c) => T(c, r), B, B, 0, (r, c, v) => (gt[c * B + r] += v));
  let dScale = 0;
  for (let i = 0; i < B * B; i++) dScale += gv[i] * s * cv[i] + gt[i] * s * ct[i];
  const dP = new Float64Array(B * P * E), dS = new Float64Array(B * S * E);
  for (let m = 0; m < B; m++)
    for (let n = 0; n < B; n++) {
      const wv = (s * gv[m * B + n]) / counts[m], wt = (s * gt[m * B + n]) / P;
      av[m * B + n].forEach((k, j) => {
        for (let e = 0; e < E; e++) dS[(m * S + j) * E + e] += wv * pat[(n * P + k) * E + e], (dP[(n * P + k) * E + e] += wv * sent[(m * S + j) * E + e]);
      });
      at[m * B + n].forEach((j, k) => {
        for (let e = 0; e < E; e++) dS[(m * S + j) * E + e] += wt * pat[(n * P + k) * E + e], (dP[(n * P + k) * E + e] += wt * sent[(m * S + j) * E + e]);
      });
    }
  return { loss, dScale, dP, dS };
}

// Rows of unit length; with `lead`, every row's first coordinate is positive (≥ 0.5 before
// normalising), so that the padding below outscores every real sentence against every patch.
function unit(n: number, E: number, lead = false): Float32Array {
  const x = rng.randn(n * E);
  if (lead) for (let r = 0; r < n; r++) x[r * E] = 0.5 + Math.abs(x[r * E]);
  for (let r = 0; r < n; r++) {
    let q = 0;
    for (let e = 0; e < E; e++) q += x[r * E + e] ** 2;
    for (let e = 0; e < E; e++) x[r * E + e] /= Math.sqrt(q);
  }
  return x;
}

// Sentence rows past a caption's count are padding, filled with
// - 'large': 1000·e₀, whose similarity with every patch (≥ 40) beats every real sentence's (≤ 1):
//   a kernel that lets padding into a max or a sum over sentences is far off;
// - 'nan': a read that reaches the arithmetic poisons the loss (but NaN never wins a max).
type Pad = 'large' | 'nan';
function batch(B: number, P: number, S: number, E: number, pad: Pad = 'large'): Batch & { pat: Float32Array; sent: Float32Array } {
  const counts = Array.from({ length: B }, (_, i) => (i === 0 ? 1 : i === 1 ? S : rng.int(1, S)));
  const sent = unit(B * S, E);
  counts.forEach((c, m) => {
    for (let j = c; j < S; j++) {
      const row = sent.subarray((m * S + j) * E, (m * S + j + 1) * E);
      if (pad === 'nan') row.fill(NaN);
      else row.fill(0), (row[0] = 1000);
    }
  });
  return { B, P, S, E, counts, pat: unit(B * P, E, true), sent };
}

forEachIsa(test, 'loss and gradients match the float64 reference (counts 1 to S, B 1 up, padding large or NaN)', () => {
  for (const [B, P, S, E, pad] of [[1, 5, 3, 8, 'large'], [2, 7, 4, 8, 'nan'], [2, 7, 4, 8, 'large'], [5, 13, 6, 33, 'large'], [9, 20, 12, 16, 'nan'], [9, 20, 12, 16, 'large']] as const) {
    const g = batch(B, P, S, E, pad), ls = 1.7;
    const r = kernels.localAlignLoss(Tensor.fromArray(g.pat, [B, P, E]), Tensor.fromArray(g.sent, [B, S, E]), Int32Array.from(g.counts), ls);
    const e = ref(g, g.pat, g.sent, ls);
    const what = `B=${B} P=${P} S=${S} E=${E} padding ${pad}`;
    assertClose([r.loss], [e.loss], { atol: 1e-5, rtol: 1e-5, what: `loss ${what}` });
    assertClose([r.dLocalScale], [e.dScale], { atol: 1e-5, rtol: 1e-4, what: `dLocalScale ${what}` });
    assertClose(r.dPatches.toArray(), e.dP, { atol: 1e-5, rtol: 1e-4, what: `dPatches ${what}` });
    const dS = r.dSentences.toArray();
    g.counts.forEach((c, m) => {
      for (let i = (m * S + c) * E; i < (m + 1) * S * E; i++) if (dS[i] !== 0) assert.unreachable(`padded sentence row of caption ${m} got gradient ${dS[i]}`);
    });
    assertClose(dS, e.dS, { atol: 1e-5, rtol: 1e-4, what: `dSentences ${what}` });
  }
});

test('gradients match central differences where the maxima are stable', () => {
  const g = batch(3, 6, 4, 5);
  const ls = 0.9;
  const r = kernels.localAlignLoss(Tensor.fromArray(g.pat, [3, 6, 5]), Tensor.fromArray(g.sent, [3, 4, 5]), Int32Array.from(g.counts), ls);
  const p = Float64Array.from(g.pat), s = Float64Array.from(g.sent);
  checkGrad((x) => ref(g, x, s, ls).loss, p, r.dPatches.toArray(), { what: 'dPatches', atol: 1e-4, h: 1e-6 });
  checkGrad((x) => ref(g, p, x, ls).loss, s, r.dSentences.toArray(), { what: 'dSentences', atol: 1e-4, h: 1e-6 });
  checkGrad((x) => ref(g, p, s, x[0]).loss, Float64Array.of(ls), [r.dLocalScale], { what: 'dLocalScale', atol: 1e-4, h: 1e-6 });
});

test('a local block against gathered rows: loss and gradients match central differences', () => {
  const Bg = 5, Bl = 2, off = 2, P = 6, S = 3, E = 7;
  const g = batch(Bg, P, S, E);
  const loc = (x: Float32Array, rows: number) => x.slice(off * rows * E, (off + Bl) * rows * E);
  const pat = loc(g.pat, P), sent = loc(g.sent, S), counts = g.counts.slice(off, off + Bl);
  const ls = 1.1;
  const r = kernels.localAlignLoss(Tensor.fromArray(pat, [Bl, P, E]), Tensor.fromArray(sent, [Bl, S, E]), Int32Array.from(counts), ls, {
    patchesAll: Tensor.fromArray(g.pat, [Bg, P, E]), sentencesAll: Tensor.fromArray(g.sent, [Bg, S, E]), sentenceCountsAll: Int32Array.from(g.counts), offset: off,
  });
  // This process's loss: local captions against all images, local images against all captions.
  const f = (pl: Num, sl: Num, pa: Num, sa: Num) => {
    const s = Math.exp(ls);
    const a = scores(g, sl, counts, Bl, pa, Bg), b = scores(g, sa, g.counts, Bg, pl, Bl);
    return ce((r2, c) => s * a.cv[r2 * Bg + c], Bl, Bg, off) + ce((r2, c) => s * b.cv[c * Bl + r2], Bl, Bg, off) +
      ce((r2, c) => s * a.ct[r2 * Bg + c], Bl, Bg, off) + ce((r2, c) => s * b.ct[c * Bl + r2], Bl, Bg, off);
  };
  const x = [pat, sent, g.pat, g.sent].map((v) => Float64Array.from(v));
  const at = (i: number) => (v: Float64Array) => f(...(x.map((a, j) => (j === i ? v : a)) as unknown as [Num, Num, Num, Num]));
  assertClose([r.loss], [at(0)(x[0])], { atol: 1e-5, rtol: 1e-5, what: 'loss' });
  checkGrad(at(0), x[0], r.dPatches.toArray(), { what: 'dPatches', atol: 1e-4, h: 1e-6 });
  checkGrad(at(1), x[1], r.dSentences.toArray(), { what: 'dSentences', atol: 1e-4, h: 1e-6 });
  checkGrad(at(2), x[2], r.dPatchesAll!.toArray(), { what: 'dPatchesAll', atol: 1e-4, h: 1e-6 });
  checkGrad(at(3), x[3], r.dSentencesAll!.toArray(), { what: 'dSentencesAll', atol: 1e-4, h: 1e-6 });
});

test('bad arguments are named', () => {
  const p = Tensor.fromArray(unit(2 * 5, 4), [2, 5, 4]), s = Tensor.fromArray(unit(2 * 3, 4), [2, 3, 4]);
  throwsNamed(() => kernels.localAlignLoss(p, s, Int32Array.from([0, 3]), 1), RangeError, /localAlignLoss: sentenceCounts\[0\] = 0 is outside \[1, 3\]/);
  throwsNamed(() => kernels.localAlignLoss(p, s, Int32Array.from([4, 3]), 1), RangeError, /localAlignLoss: sentenceCounts\[0\] = 4 is outside \[1, 3\]/);
  throwsNamed(() => kernels.localAlignLoss(p, s, Int32Array.from([1]), 1), RangeError, /localAlignLoss: sentenceCounts must have 2 elements, got 1/);
  throwsNamed(() => kernels.localAlignLoss(p, s, Int32Array.from([1, 1]), NaN), RangeError, /localAlignLoss: localScale must be in \[-80, 80\], got NaN/);
  throwsNamed(() => kernels.localAlignLoss(p, Tensor.fromArray(unit(3 * 3, 4), [3, 3, 4]), Int32Array.from([1, 1]), 1), RangeError,
    /localAlignLoss: sentences must be \[2, S, 4\] like patches \[2,5,4\], got \[3,3,4\]/);
  throwsNamed(() => kernels.localAlignLoss(Tensor.fromArray(unit(10, 4), [10, 4]), s, Int32Array.from([1, 1]), 1), RangeError, /localAlignLoss: patches must be \[B,P,E\]/);
  throwsNamed(() => kernels.localAlignLoss(p, s, Int32Array.from([1, 1]), 1, { patchesAll: p }), TypeError, /localAlignLoss: patchesAll and sentencesAll come together/);
});

for (const dtype of ['f32', 'bf16'] as const) {
  cudaTest(test, `cuda ${dtype} matches the CPU loss (one process and gathered)`, () => {
    const Bg = 6, Bl = 2, off = 3, P = 37, S = 12, E = 40, opt = { device: 'cuda' as const, dtype };
    const g = batch(Bg, P, S, E);
    const pa = Tensor.fromArray(g.pat, [Bg, P, E], opt).toArray(), sa = Tensor.fromArray(g.sent, [Bg, S, E], opt).toArray();
    const pl = pa.slice(off * P * E, (off + Bl) * P * E), sl = sa.slice(off * S * E, (off + Bl) * S * E);
    const cl = Int32Array.from(g.counts.slice(off, off + Bl)), ca = Int32Array.from(g.counts);
    const rtol = dtype === 'f32' ? 1e-4 : 2e-2;
    for (const gathered of [false, true]) {
      const run = (o: { device?: 'cuda'; dtype?: 'f32' | 'bf16' }) => gathered
        ? kernels.localAlignLoss(Tensor.fromArray(pl, [Bl, P, E], o), Tensor.fromArray(sl, [Bl, S, E], o), cl, 1.5,
          { patchesAll: Tensor.fromArray(pa, [Bg, P, E], o), sentencesAll: Tensor.fromArray(sa, [Bg, S, E], o), sentenceCountsAll: ca, offset: off })
        : kernels.localAlignLoss(Tensor.fromArray(pa, [Bg, P, E], o), Tensor.fromArray(sa, [Bg, S, E], o), ca, 1.5);
      const c = run({}), r = run(opt);
      assertClose([r.loss, r.dLocalScale], [c.loss, c.dLocalScale], { atol: 1e-4, rtol, what: `cuda ${dtype} loss` });
      assertClose(r.dPatches.toArray(), c.dPatches.toArray(), { atol: 1e-4, rtol, what: `cuda ${dtype} dPatches` });
      assertClose(r.dSentences.toArray(), c.dSentences.toArray(), { atol: 1e-4, rtol, what: `cuda ${dtype} dSentences` });
      if (gathered) assertClose(r.dPatchesAll!.toArray(), c.dPatchesAll!.toArray(), { atol: 1e-4, rtol, what: `cuda ${dtype} dPatchesAll` });
    }
  });
}

test.run();
