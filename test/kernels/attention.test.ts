// attention.test.ts: flashAttention and its backward against a naive float64 attention (and
// central differences of it), causal and padded masks, odd lengths across tile edges, dropout of
// the probabilities (the mask reproduced here with BigInt, as dropout.test.ts does), named
// errors, and on a GPU the CUDA op against the float64 reference, held to 2× (forward) and 3×
// (backward) the error of a naive attention computed in the same precision.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { kernels, Tensor } from 'mamakit';
import { assertClose, assertIdentical, checkGrad, cudaTest, dot64, forEachIsa, Rng, throwsNamed, type Num } from '../helpers/index.js';

const test = suite('flashAttention');
const rng = new Rng(5);

interface Drop { p: number; seed: number; offset?: number }
interface Case { B: number; Lq: number; Lk: number; H: number; Dh: number; causal?: boolean; kvLens?: number[]; scale?: number; dropout?: Drop }

const at = (c: Case, L: number, b: number, i: number, h: number) => ((b * L + i) * c.H + h) * c.Dh;
const visible = (c: Case, b: number, i: number, j: number) => j < (c.kvLens ? c.kvLens[b] : c.Lk) && (!c.causal || j <= i);

// The dropout mask (native/common/dropout_mask.h): counter c is kept when the top 24 bits of
// mix64(key + c·φ) are ≥ ⌊p·2^24⌋ (p as the f32 the kernels get), key = mix64(seed + φ); the
// attention's counter of (b, h, i, j) is offset + ((b·H + h)·Lq + i)·Lk + j.
const M64 = (1n << 64n) - 1n, PHI = 0x9e3779b97f4a7c15n;
function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
  return z ^ (z >> 31n);
}
/** Z [B,H,Lq,Lk]: 1 kept, 0 dropped (all 1 without dropout). */
function mask(c: Case): Uint8Array {
  const z = new Uint8Array(c.B * c.H * c.Lq * c.Lk).fill(1);
  const d = c.dropout;
  if (!d || d.p === 0) return z;
  const key = mix64((BigInt(d.seed) + PHI) & M64), threshold = Math.floor(Math.fround(d.p) * 16777216);
  let x = (key + BigInt(d.offset ?? 0) * PHI) & M64;
  for (let n = 0; n < z.length; n++, x = (x + PHI) & M64) z[n] = Number(mix64(x) >> 40n) >= threshold ? 1 : 0;
  return z;
}

// Naive attention with every materialised tensor passed through rnd (identity: float64); with
// c.dropout, out = (P ⊙ Z/(1 − p))·v.
function naive(c: Case, q: Num, k: Num, v: Num, dout: Num | null, rnd: (x: number) => number = (x) => x) {
  const Z = mask(c), rkeep = 1 / (1 - (c.dropout?.p ?? 0));
  const z = (b: number, h: number, i: number, j: number) => Z[((b * c.H + h) * c.Lq + i) * c.Lk + j] * rkeep;
  const scale = c.scale ?? 1 / Math.sqrt(c.Dh);
  const out = new Float64Array(c.B * c.Lq * c.H * c.Dh), lse = new Float64Array(c.B * c.H * c.Lq);
  const dq = new Float64Array(out.length), dk = new Float64Array(c.B * c.Lk * c.H * c.Dh), dv = new Float64Array(dk.length);
  for (let b = 0; b < c.B; b++)
    for (let h = 0; h < c.H; h++) {
      const P = Array.from({ length: c.Lq }, () => new Float64Array(c.Lk));
      for (let i = 0; i < c.Lq; i++) {
        const s = new Float64Array(c.Lk).fill(-Infinity);
        let m = -Infinity;
        for (let j = 0; j < c.Lk; j++) {
          if (!visible(c, b, i, j)) continue;
          let d = 0;
          for (let x = 0; x < c.Dh; x++) d += q[at(c, c.Lq, b, i, h) + x] * k[at(c, c.Lk, b, j, h) + x];
          s[j] = rnd(d * scale);
          m = Math.max(m, s[j]);
        }
        let sum = 0;
        for (let j = 0; j < c.Lk; j++) sum += s[j] === -Infinity ? 0 : Math.exp(s[j] - m);
        lse[(b * c.H + h) * c.Lq + i] = m + Math.log(sum);
        for (let j = 0; j < c.Lk; j++) P[i][j] = s[j] === -Infinity ? 0 : rnd(Math.exp(s[j] - m) / sum);
        for (let x = 0; x < c.Dh; x++) {
          let o = 0;
          for (let j = 0; j < c.Lk; j++) o += rnd(P[i][j] * z(b, h, i, j)) * v[at(c, c.Lk, b, j, h) + x];
          out[at(c, c.Lq, b, i, h) + x] = rnd(o);
        }
      }
      if (!dout) continue;
      for (let i = 0; i < c.Lq; i++) {
        const oi = at(c, c.Lq, b, i, h);
        let D = 0;
        for (let x = 0; x < c.Dh; x++) D += dout[oi + x] * out[oi + x];
        for (let j = 0; j < c.Lk; j++) {
          if (P[i][j] === 0) continue;
          const kj = at(c, c.Lk, b, j, h);
          let dp = 0;
          for (let x = 0; x < c.Dh; x++) dp += dout[oi + x] * v[kj + x];
          const zij = z(b, h, i, j), ds = rnd(P[i][j] * (rnd(rnd(dp) * zij) - D)) * scale, pz = rnd(P[i][j] * zij);
          for (let x = 0; x < c.Dh; x++) {
            dv[kj + x] += pz * dout[oi + x];
            dq[oi + x] += ds * k[kj + x];
            dk[kj + x] += ds * q[oi + x];
          }
        }
      }
    }
  return { out, lse, dq: dq.map(rnd), dk: dk.map(rnd), dv: dv.map(rnd) };
}

function tensors(c: Case, opts: { device?: 'cpu' | 'cuda'; dtype?: 'f32' | 'bf16' | 'f16' } = {}) {
  const q = rng.randn(c.B * c.Lq * c.H * c.Dh), k = rng.randn(c.B * c.Lk * c.H * c.Dh), v = rng.randn(k.length), g = rng.randn(q.length);
  const round = (x: Float32Array, shape: number[]) => Tensor.fromArray(x, shape, opts).toArray(); // to the storage type
  const qs = [c.B, c.Lq, c.H, c.Dh], ks = [c.B, c.Lk, c.H, c.Dh];
  const host = { q: round(q, qs), k: round(k, ks), v: round(v, ks), g: round(g, qs) };
  return { host, q: Tensor.fromArray(host.q, qs, opts), k: Tensor.fromArray(host.k, ks, opts), v: Tensor.fromArray(host.v, ks, opts), g: Tensor.fromArray(host.g, qs, opts) };
}

const opts = (c: Case) => ({ causal: c.causal, scale: c.scale, kvLens: c.kvLens ? Int32Array.from(c.kvLens) : null, dropout: c.dropout });

const cases: Case[] = [
  { B: 1, Lq: 1, Lk: 1, H: 1, Dh: 32 },
  { B: 2, Lq: 7, Lk: 13, H: 3, Dh: 64 },
  { B: 1, Lq: 70, Lk: 65, H: 2, Dh: 80 },
  { B: 1, Lq: 5, Lk: 131, H: 2, Dh: 32, kvLens: [100] },
  { B: 2, Lq: 67, Lk: 67, H: 2, Dh: 64, causal: true },
  { B: 3, Lq: 40, Lk: 40, H: 1, Dh: 128, causal: true, kvLens: [40, 17, 1], scale: 1 / (8 * 3) },
  { B: 1, Lq: 129, Lk: 200, H: 1, Dh: 33 },
];

forEachIsa(test, 'forward matches float64 (odd lengths, Lq ≠ Lk, causal, padded, head dims 32–128)', () => {
  for (const c of cases) {
    const t = tensors(c);
    const r = kernels.flashAttention(t.q, t.k, t.v, opts(c));
    const e = naive(c, t.host.q, t.host.k, t.host.v, null);
    assert.equal(r.out.shape, [c.B, c.Lq, c.H, c.Dh]);
    assert.equal(r.lse.shape, [c.B, c.H, c.Lq]);
    assertClose(r.out.toArray(), e.out, { atol: 2e-5, rtol: 1e-4, what: `out ${JSON.stringify(c)}` });
    assertClose(r.lse.toArray(), e.lse, { atol: 2e-5, rtol: 1e-5, what: `lse ${JSON.stringify(c)}` });
  }
});

// The kernels' forward and backward on c's seeded tensors, and the float64 reference's.
function forwardBackward(c: Case) {
  const t = tensors(c);
  const f = kernels.flashAttention(t.q, t.k, t.v, opts(c));
  const r = kernels.flashAttentionBackward(t.q, t.k, t.v, f.out, f.lse, t.g, opts(c));
  return { t, f, r, e: naive(c, t.host.q, t.host.k, t.host.v, t.host.g), what: JSON.stringify(c) };
}

forEachIsa(test, 'backward matches the float64 gradient; masked keys get exactly zero', () => {
  for (const c of cases) {
    const { r, e, what } = forwardBackward(c);
    assertClose(r.dq.toArray(), e.dq, { atol: 5e-5, rtol: 1e-4, what: `dq ${what}` });
    assertClose(r.dk.toArray(), e.dk, { atol: 5e-5, rtol: 1e-4, what: `dk ${what}` });
    assertClose(r.dv.toArray(), e.dv, { atol: 5e-5, rtol: 1e-4, what: `dv ${what}` });
    if (c.kvLens) {
      const dk = r.dk.toArray(), dv = r.dv.toArray();
      for (let b = 0; b < c.B; b++)
        for (let j: number = c.kvLens[b]; j < c.Lk; j++)
          for (let h = 0; h < c.H; h++)
            for (let x = 0; x < c.Dh; x++) {
              const i = at(c, c.Lk, b, j, h) + x;
              if (dk[i] !== 0 || dv[i] !== 0) assert.unreachable(`masked key b=${b} j=${j}: dk ${dk[i]}, dv ${dv[i]}`);
            }
    }
  }
});

// The kernels' dq, dk, dv against central differences of the float64 attention (same mask, if any).
function checkCentralDifferences(c: Case) {
  const { t, r } = forwardBackward(c);
  const q = Float64Array.from(t.host.q), k = Float64Array.from(t.host.k), v = Float64Array.from(t.host.v);
  const loss = (qq: Num, kk: Num, vv: Num) => dot64(naive(c, qq, kk, vv, null).out, t.host.g);
  checkGrad((x) => loss(x, k, v), q, r.dq.toArray(), { what: 'dq', samples: 40, rng, atol: 2e-4 });
  checkGrad((x) => loss(q, x, v), k, r.dk.toArray(), { what: 'dk', samples: 40, rng, atol: 2e-4 });
  checkGrad((x) => loss(q, k, x), v, r.dv.toArray(), { what: 'dv', samples: 40, rng, atol: 2e-4 });
}

test('backward matches central differences of the float64 attention', () => {
  for (const c of [{ B: 1, Lq: 3, Lk: 4, H: 2, Dh: 32 }, { B: 2, Lq: 4, Lk: 4, H: 1, Dh: 32, causal: true, kvLens: [4, 2] }] as Case[]) {
    checkCentralDifferences(c);
  }
});

// Dropout of the probabilities: tile edges (64 queries × 64 keys), causal with kvLens, Lq ≠ Lk,
// counters past 2^32, the GPT-2 rate and a high one.
const dropCases: Case[] = [
  { B: 2, Lq: 7, Lk: 13, H: 3, Dh: 64, dropout: { p: 0.1, seed: 3 } },
  { B: 1, Lq: 70, Lk: 65, H: 2, Dh: 32, dropout: { p: 0.5, seed: 2 ** 40 + 1, offset: 2 ** 32 - 100 } },
  { B: 3, Lq: 40, Lk: 40, H: 1, Dh: 128, causal: true, kvLens: [40, 17, 1], scale: 1 / (8 * 3), dropout: { p: 0.3, seed: 11, offset: 5 } },
  { B: 2, Lq: 67, Lk: 67, H: 2, Dh: 16, causal: true, kvLens: [67, 30], dropout: { p: 0.9, seed: 0 } },
];

forEachIsa(test, 'dropout: forward and backward match float64 with the same mask; lse is the undropped one', () => {
  for (const c of dropCases) {
    const { t, f, r, e, what } = forwardBackward(c);
    assertClose(f.out.toArray(), e.out, { atol: 2e-5, rtol: 1e-4, what: `out ${what}` });
    assertClose(f.lse.toArray(), naive({ ...c, dropout: undefined }, t.host.q, t.host.k, t.host.v, null).lse, { atol: 2e-5, rtol: 1e-5, what: `lse ${what}` });
    for (const key of ['dq', 'dk', 'dv'] as const) assertClose(r[key].toArray(), e[key], { atol: 5e-5, rtol: 1e-4, what: `${key} ${what}` });
  }
});

test('dropout: backward matches central differences of the float64 attention with the same mask', () => {
  for (const c of [{ B: 1, Lq: 3, Lk: 5, H: 2, Dh: 32, dropout: { p: 0.4, seed: 21 } },
    { B: 2, Lq: 5, Lk: 5, H: 1, Dh: 32, causal: true, kvLens: [5, 3], dropout: { p: 0.3, seed: 4, offset: 9 } }] as Case[]) {
    checkCentralDifferences(c);
  }
});

// Keys all zero make P uniform (1/visible keys) and v_j = e_j puts P̂[i,j] in out[i,j]: the mask
// itself, to compare with the reference hash element for element, count, and check for scale.
function maskProbe(c: Case, o: { device?: 'cpu' | 'cuda'; dtype?: 'f32' | 'bf16' | 'f16' } = {}) {
  const q = Tensor.fromArray(rng.randn(c.B * c.Lq * c.H * c.Dh), [c.B, c.Lq, c.H, c.Dh], o);
  const k = Tensor.zeros([c.B, c.Lk, c.H, c.Dh], o);
  const vh = new Float32Array(c.B * c.Lk * c.H * c.Dh);
  for (let b = 0; b < c.B; b++) for (let j = 0; j < c.Lk; j++) for (let h = 0; h < c.H; h++) vh[at(c, c.Lk, b, j, h) + j] = 1;
  return kernels.flashAttention(q, k, Tensor.fromArray(vh, [c.B, c.Lk, c.H, c.Dh], o), opts(c)).out.toArray();
}

// The kernel's mask against the reference: every visible (b, h, i, j) kept or dropped as mask(c)
// says, kept ones at (1/n)/(1 − p) for n visible keys; returns how many were kept of how many.
function checkMask(c: Case, out: Float32Array, rtol: number, what: string) {
  const Z = mask(c), p = c.dropout!.p;
  let kept = 0, seen = 0;
  for (let b = 0; b < c.B; b++)
    for (let h = 0; h < c.H; h++)
      for (let i = 0; i < c.Lq; i++) {
        let n = 0;
        for (let j = 0; j < c.Lk; j++) n += visible(c, b, i, j) ? 1 : 0;
        for (let j = 0; j < c.Lk; j++) {
          const got = out[at(c, c.Lq, b, i, h) + j], z = visible(c, b, i, j) ? Z[((b * c.H + h) * c.Lq + i) * c.Lk + j] : 0;
          const want = z / n / (1 - p);
          if (Math.abs(got - want) > rtol * want) assert.unreachable(`${what}: b=${b} h=${h} i=${i} j=${j}: ${got}, the reference mask gives ${want}`);
          if (visible(c, b, i, j)) (seen++, (kept += z));
        }
      }
  return { kept, seen };
}

forEachIsa(test, 'dropout: the mask is the reference hash at ((b·H + h)·Lq + i)·Lk + j + offset, kept at 1/(1 − p); the keep rate is 1 − p', () => {
  for (const c of [{ B: 2, Lq: 64, Lk: 64, H: 4, Dh: 64, dropout: { p: 0.3, seed: 77, offset: 12345 } },
    { B: 2, Lq: 30, Lk: 33, H: 2, Dh: 40, causal: false, kvLens: [33, 20], dropout: { p: 0.1, seed: 5, offset: 2 ** 33 } },
    { B: 1, Lq: 33, Lk: 33, H: 3, Dh: 48, causal: true, kvLens: [25], dropout: { p: 0.6, seed: 2 } }] as Case[]) {
    const { kept, seen } = checkMask(c, maskProbe(c), 1e-6, JSON.stringify(c));
    // Binomial(seen, 1 − p): within 6 standard deviations.
    const p = c.dropout!.p;
    assert.ok(Math.abs(kept - seen * (1 - p)) < 6 * Math.sqrt(seen * p * (1 - p)), `kept ${kept} of ${seen} at p = ${p}`);
  }
});

forEachIsa(test, 'dropout: p = 0 is bit-identical to no dropout; other seeds and offsets draw other masks', () => {
  const c: Case = { B: 2, Lq: 67, Lk: 67, H: 2, Dh: 32, causal: true, kvLens: [67, 40] };
  const t = tensors(c);
  const run = (dropout?: Drop) => {
    const o = { ...opts(c), dropout };
    const f = kernels.flashAttention(t.q, t.k, t.v, o), r = kernels.flashAttentionBackward(t.q, t.k, t.v, f.out, f.lse, t.g, o);
    return { out: f.out.toArray(), lse: f.lse.toArray(), dq: r.dq.toArray(), dk: r.dk.toArray(), dv: r.dv.toArray() };
  };
  const none = run(), zero = run({ p: 0, seed: 12, offset: 3 });
  for (const key of ['out', 'lse', 'dq', 'dk', 'dv'] as const) assertIdentical(zero[key], none[key], `p = 0: ${key}`);
  const a = run({ p: 0.2, seed: 1 }), b = run({ p: 0.2, seed: 2 }), d = run({ p: 0.2, seed: 1, offset: 1 });
  assertIdentical(run({ p: 0.2, seed: 1, offset: 0 }).out, a.out, 'the same seed again');
  assertIdentical(a.lse, none.lse, 'lse with dropout');
  for (const [x, what] of [[none, 'no dropout'], [b, 'seed 2'], [d, 'offset 1']] as const)
    assert.ok(a.out.some((v, i) => v !== x.out[i]), `seed 1 draws the mask of ${what}`);
});

test('bad arguments are named', () => {
  const c: Case = { B: 2, Lq: 5, Lk: 6, H: 3, Dh: 32 };
  const t = tensors(c);
  throwsNamed(() => kernels.flashAttention(t.q, Tensor.fromArray(rng.randn(2 * 6 * 2 * 32), [2, 6, 2, 32]), t.v), RangeError,
    /flashAttention: k must be \[2, Lk, 3, 32\] like q \[2,5,3,32\] \(same batch, heads and head dim\), got \[2,6,2,32\]/);
  throwsNamed(() => kernels.flashAttention(t.q, t.k, Tensor.fromArray(rng.randn(2 * 5 * 3 * 32), [2, 5, 3, 32])), RangeError, /flashAttention: v must have shape \[2,6,3,32\]/);
  throwsNamed(() => kernels.flashAttention(t.q, t.k, t.v, { kvLens: Int32Array.from([6, 0]) }), RangeError, /flashAttention: kvLens\[1\] = 0 is outside \[1, 6\]/);
  throwsNamed(() => kernels.flashAttention(t.q, t.k, t.v, { kvLens: Int32Array.from([7, 1]) }), RangeError, /flashAttention: kvLens\[0\] = 7 is outside \[1, 6\]/);
  throwsNamed(() => kernels.flashAttention(t.q, t.k, t.v, { kvLens: Int32Array.from([3]) }), RangeError, /flashAttention: kvLens must have 2 elements, got 1/);
  throwsNamed(() => kernels.flashAttention(t.q, t.k, t.v, { kvLens: [3, 3] as never }), TypeError, /flashAttention: kvLens must be an Int32Array/);
  throwsNamed(() => kernels.flashAttention(t.q, t.k, t.v, { causal: true }), RangeError, /flashAttention: causal attention needs as many queries as keys, got Lq = 5 and Lk = 6/);
  throwsNamed(() => kernels.flashAttention(t.q, t.k, t.v, { scale: NaN }), RangeError, /flashAttention: scale must be in/);
  throwsNamed(() => kernels.flashAttention(Tensor.fromArray(rng.randn(10), [2, 5]), t.k, t.v), RangeError, /flashAttention: q must be \[B,Lq,H,Dh\], got \[2,5\]/);
  const drop = (dropout: unknown) => () => kernels.flashAttention(t.q, t.k, t.v, { dropout: dropout as Drop });
  throwsNamed(drop({ p: 1, seed: 1 }), RangeError, /flashAttention: dropout\.p must be in \[0, 1\), got 1$/);
  throwsNamed(drop({ p: 0.99999999, seed: 1 }), RangeError, /flashAttention: dropout\.p must be in \[0, 1\), got 0\.99999999/);
  throwsNamed(drop({ p: -0.1, seed: 1 }), RangeError, /flashAttention: dropout\.p must be in \[0, 1\), got -0\.1/);
  throwsNamed(drop({ p: NaN, seed: 1 }), RangeError, /flashAttention: dropout\.p must be in \[0, 1\), got NaN/);
  throwsNamed(drop({ seed: 1 }), TypeError, /flashAttention: dropout\.p must be a number, got null/);
  throwsNamed(drop({ p: 0.1, seed: -1 }), RangeError, /flashAttention: dropout\.seed must be an integer in \[0, 9007199254740992\], got -1/);
  throwsNamed(drop({ p: 0.1, seed: 1.5 }), RangeError, /flashAttention: dropout\.seed must be an integer/);
  throwsNamed(drop({ p: 0.1 }), TypeError, /flashAttention: dropout\.seed must be an integer, got undefined/);
  throwsNamed(drop({ p: 0.1, seed: 1, offset: 2 ** 60 }), RangeError, /flashAttention: dropout\.offset must be an integer in/);
  const f = kernels.flashAttention(t.q, t.k, t.v);
  throwsNamed(() => kernels.flashAttentionBackward(t.q, t.k, t.v, f.out, f.lse, t.g, { dropout: { p: 1, seed: 0 } }), RangeError,
    /flashAttentionBackward: dropout\.p must be in \[0, 1\)/);
  throwsNamed(() => kernels.flashAttentionBackward(t.q, t.k, t.v, f.out, Tensor.zeros([2, 3, 6]), t.g), RangeError, /flashAttentionBackward: lse must have shape \[2,3,5\]/);
  throwsNamed(() => kernels.flashAttentionBackward(t.q, t.k, t.v, f.out, f.lse, t.k), RangeError, /flashAttentionBackward: dOut must have shape \[2,5,3,32\]/);
  f.lse.dispose();
  throwsNamed(() => kernels.flashAttentionBackward(t.q, t.k, t.v, f.out, f.lse, t.g), TypeError, /flashAttentionBackward: lse .*disposed/);
});

// bf16 / f16 rounding of a float64 value, as the GPU stores it.
function rounder(dtype: 'bf16' | 'f16'): (x: number) => number {
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  if (dtype === 'bf16')
    return (x) => {
      f[0] = x;
      u[0] = (u[0] + 0x7fff + ((u[0] >>> 16) & 1)) & 0xffff0000;
      return f[0];
    };
  // f16: 10 fraction bits, subnormal below 2^-14, to nearest even.
  return (x) => {
    const a = Math.abs(x);
    if (!(a > 0) || !Number.isFinite(a)) return x;
    let e = Math.floor(Math.log2(a));
    if (2 ** e > a) e -= 1;
    else if (2 ** (e + 1) <= a) e += 1;
    const ulp = 2 ** (Math.max(e, -14) - 10), m = a / ulp, fl = Math.floor(m), d = m - fl;
    const r = (d > 0.5 || (d === 0.5 && fl % 2 === 1) ? fl + 1 : fl) * ulp;
    return Math.sign(x) * (r > 65504 ? Infinity : r);
  };
}

cudaTest(test, 'cuda f32: forward and backward match float64 as the CPU kernels do (dropout too)', () => {
  for (const c of [...cases, ...dropCases]) {
    const t = tensors(c, { device: 'cuda' });
    const f = kernels.flashAttention(t.q, t.k, t.v, opts(c));
    const r = kernels.flashAttentionBackward(t.q, t.k, t.v, f.out, f.lse, t.g, opts(c));
    const e = naive(c, t.host.q, t.host.k, t.host.v, t.host.g);
    const what = `cuda f32 ${JSON.stringify(c)}`;
    assertClose(f.out.toArray(), e.out, { atol: 2e-5, rtol: 1e-4, what: `out ${what}` });
    assertClose(f.lse.toArray(), e.lse, { atol: 2e-5, rtol: 1e-5, what: `lse ${what}` });
    for (const key of ['dq', 'dk', 'dv'] as const) assertClose(r[key].toArray(), e[key], { atol: 5e-5, rtol: 1e-4, what: `${key} ${what}` });
  }
});

// In 16 bits, as FlashAttention's own tests: the error against float64 is at most 2× (forward) and
// 3× (backward) that of a naive attention whose materialised tensors are rounded to the same type.
for (const dtype of ['bf16', 'f16'] as const) {
  cudaTest(test, `cuda ${dtype}: error at most 2× (forward) and 3× (backward) that of a naive attention in ${dtype} (dropout too)`, () => {
    const worst = (a: Num, e: Num) => {
      let w = 0;
      for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - e[i]));
      return w;
    };
    for (const c of [...cases.slice(1), ...dropCases]) {
      const t = tensors(c, { device: 'cuda', dtype });
      const f = kernels.flashAttention(t.q, t.k, t.v, opts(c));
      const r = kernels.flashAttentionBackward(t.q, t.k, t.v, f.out, f.lse, t.g, opts(c));
      const ref = naive(c, t.host.q, t.host.k, t.host.v, t.host.g);
      const low = naive(c, t.host.q, t.host.k, t.host.v, t.host.g, rounder(dtype));
      const what = `${dtype} ${JSON.stringify(c)}`;
      const floor = 1e-6; // a naive error can be ~0 on tiny cases
      assert.ok(worst(f.out.toArray(), ref.out) <= 2 * worst(low.out, ref.out) + floor, `out ${what}`);
      assertClose(f.lse.toArray(), ref.lse, { atol: 1e-3, rtol: 1e-3, what: `lse ${what}` });
      for (const key of ['dq', 'dk', 'dv'] as const)
        assert.ok(worst(r[key].toArray(), ref[key]) <= 3 * worst(low[key], ref[key]) + floor, `${key} ${what}`);
    }
  });
}

// Head dims 64 and 128 take the tensor-core kernels in bf16/f16, 40 the others; 100 queries and
// keys cross the 64-row and 64-key tiles.
cudaTest(test, 'cuda dropout: the CPU mask draw for draw in f32, bf16 and f16 (tensor cores and not); p = 0 bit-identical to none', () => {
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    for (const c of [{ B: 2, Lq: 64, Lk: 64, H: 2, Dh: 64, causal: true, kvLens: [64, 50], dropout: { p: 0.3, seed: 77, offset: 12345 } },
      { B: 1, Lq: 100, Lk: 100, H: 1, Dh: 128, dropout: { p: 0.5, seed: 2 ** 40 + 7, offset: 2 ** 32 - 3000 } },
      { B: 2, Lq: 30, Lk: 33, H: 1, Dh: 40, kvLens: [33, 20], dropout: { p: 0.1, seed: 5 } }] as Case[])
      checkMask(c, maskProbe(c, { device: 'cuda', dtype }), dtype === 'f32' ? 1e-6 : dtype === 'bf16' ? 2 ** -8 : 2 ** -10, `cuda ${dtype} ${JSON.stringify(c)}`);
    const c: Case = { B: 1, Lq: 40, Lk: 40, H: 2, Dh: 64, causal: true };
    const t = tensors(c, { device: 'cuda', dtype });
    const run = (dropout?: Drop) => {
      const o = { ...opts(c), dropout };
      const f = kernels.flashAttention(t.q, t.k, t.v, o), r = kernels.flashAttentionBackward(t.q, t.k, t.v, f.out, f.lse, t.g, o);
      return [f.out, f.lse, r.dq, r.dk, r.dv].map((x) => x.toArray());
    };
    const none = run(), zero = run({ p: 0, seed: 3 });
    none.forEach((x, i) => assertIdentical(zero[i], x, `cuda ${dtype} p = 0: output ${i}`));
  }
});

test.run();
