// attention.test.ts: flashAttention and its backward against a naive float64 attention (and
// central differences of it), causal and padded masks, odd lengths across tile edges, named
// errors, and on a GPU the CUDA op against the float64 reference, held to 2× (forward) and 3×
// (backward) the error of a naive attention computed in the same precision.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { kernels, Tensor } from 'mamakit';
import { assertClose, checkGrad, cudaTest, dot64, forEachIsa, Rng, throwsNamed, type Num } from '../helpers/index.js';

const test = suite('flashAttention');
const rng = new Rng(5);

interface Case { B: number; Lq: number; Lk: number; H: number; Dh: number; causal?: boolean; kvLens?: number[]; scale?: number }

const at = (c: Case, L: number, b: number, i: number, h: number) => ((b * L + i) * c.H + h) * c.Dh;
const visible = (c: Case, b: number, i: number, j: number) => j < (c.kvLens ? c.kvLens[b] : c.Lk) && (!c.causal || j <= i);

// Naive attention with every materialised tensor passed through rnd (identity: float64).
function naive(c: Case, q: Num, k: Num, v: Num, dout: Num | null, rnd: (x: number) => number = (x) => x) {
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
          for (let j = 0; j < c.Lk; j++) o += P[i][j] * v[at(c, c.Lk, b, j, h) + x];
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
          const ds = rnd(P[i][j] * (rnd(dp) - D)) * scale;
          for (let x = 0; x < c.Dh; x++) {
            dv[kj + x] += P[i][j] * dout[oi + x];
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

const opts = (c: Case) => ({ causal: c.causal, scale: c.scale, kvLens: c.kvLens ? Int32Array.from(c.kvLens) : null });

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

forEachIsa(test, 'backward matches the float64 gradient; masked keys get exactly zero', () => {
  for (const c of cases) {
    const t = tensors(c);
    const f = kernels.flashAttention(t.q, t.k, t.v, opts(c));
    const r = kernels.flashAttentionBackward(t.q, t.k, t.v, f.out, f.lse, t.g, opts(c));
    const e = naive(c, t.host.q, t.host.k, t.host.v, t.host.g);
    const what = JSON.stringify(c);
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

test('backward matches central differences of the float64 attention', () => {
  for (const c of [{ B: 1, Lq: 3, Lk: 4, H: 2, Dh: 32 }, { B: 2, Lq: 4, Lk: 4, H: 1, Dh: 32, causal: true, kvLens: [4, 2] }] as Case[]) {
    const t = tensors(c);
    const f = kernels.flashAttention(t.q, t.k, t.v, opts(c));
    const r = kernels.flashAttentionBackward(t.q, t.k, t.v, f.out, f.lse, t.g, opts(c));
    const q = Float64Array.from(t.host.q), k = Float64Array.from(t.host.k), v = Float64Array.from(t.host.v);
    const loss = (qq: Num, kk: Num, vv: Num) => dot64(naive(c, qq, kk, vv, null).out, t.host.g);
    checkGrad((x) => loss(x, k, v), q, r.dq.toArray(), { what: 'dq', samples: 40, rng, atol: 2e-4 });
    checkGrad((x) => loss(q, x, v), k, r.dk.toArray(), { what: 'dk', samples: 40, rng, atol: 2e-4 });
    checkGrad((x) => loss(q, k, x), v, r.dv.toArray(), { what: 'dv', samples: 40, rng, atol: 2e-4 });
  }
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
  const f = kernels.flashAttention(t.q, t.k, t.v);
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

cudaTest(test, 'cuda f32: forward and backward match float64 as the CPU kernels do', () => {
  for (const c of cases) {
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
  cudaTest(test, `cuda ${dtype}: error at most 2× (forward) and 3× (backward) that of a naive attention in ${dtype}`, () => {
    const worst = (a: Num, e: Num) => {
      let w = 0;
      for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - e[i]));
      return w;
    };
    for (const c of cases.slice(1)) {
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

test.run();
