// patch_embed.test.ts: patchEmbed against a float64 Conv2d (kernel = stride = p) + bias + pos,
// its backward against the float64 adjoint and central differences, the token-offset option,
// named errors, and the CUDA op against the CPU one when a GPU is present.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { kernels, Tensor } from 'mamakit';
import { assertClose, checkGrad, cudaTest, dot64, forEachIsa, Rng, throwsNamed, type Num } from '../helpers/index.js';

const test = suite('patchEmbed');
const rng = new Rng(1414);

interface Geo { B: number; C: number; H: number; W: number; p: number; D: number }

// tokens [B, Np, D] in float64: Conv2d with weight [D, C, p, p] flattened, raster order.
function ref(g: Geo, img: Num, w: Num, bias: Num | null, pos: Num | null): Float64Array {
  const { B, C, H, W, p, D } = g;
  const gw = W / p, np = (H / p) * gw, kp = C * p * p;
  const out = new Float64Array(B * np * D);
  const patch = new Float64Array(kp);
  for (let b = 0; b < B; b++)
    for (let n = 0; n < np; n++) {
      const py = Math.floor(n / gw), px = n % gw;
      for (let c = 0; c < C; c++)
        for (let i = 0; i < p; i++)
          for (let j = 0; j < p; j++) patch[(c * p + i) * p + j] = img[((b * C + c) * H + py * p + i) * W + px * p + j];
      for (let d = 0; d < D; d++) {
        let s = (bias ? bias[d] : 0) + (pos ? pos[n * D + d] : 0);
        for (let q = 0; q < kp; q++) s += w[d * kp + q] * patch[q];
        out[(b * np + n) * D + d] = s;
      }
    }
  return out;
}

const np = (g: Geo) => (g.H / g.p) * (g.W / g.p);
const kp = (g: Geo) => g.C * g.p * g.p;

const shapes: Geo[] = [
  { B: 1, C: 1, H: 14, W: 14, p: 14, D: 5 },
  { B: 2, C: 3, H: 28, W: 42, p: 14, D: 7 },
  { B: 3, C: 1, H: 56, W: 28, p: 14, D: 33 },
  { B: 2, C: 1, H: 32, W: 48, p: 16, D: 17 },
  { B: 3, C: 3, H: 48, W: 32, p: 16, D: 40 }, // C·p·p = 768: several K blocks
  { B: 2, C: 3, H: 10, W: 15, p: 5, D: 3 },
];

function inputs(g: Geo) {
  return { img: rng.randn(g.B * g.C * g.H * g.W), w: rng.randn(g.D * kp(g), 0.05), bias: rng.randn(g.D), pos: rng.randn(np(g) * g.D) };
}

forEachIsa(test, 'forward matches a float64 Conv2d + bias + pos (C 1 and 3, p 14 and 16, rectangular)', () => {
  for (const g of shapes) {
    for (const [withBias, withPos] of [[true, true], [true, false], [false, true], [false, false]]) {
      const x = inputs(g);
      const e = ref(g, x.img, x.w, withBias ? x.bias : null, withPos ? x.pos : null);
      const t = kernels.patchEmbed(Tensor.fromArray(x.img, [g.B, g.C, g.H, g.W]), Tensor.fromArray(x.w, [g.D, kp(g)]),
        withBias ? Tensor.fromArray(x.bias, [g.D]) : null, withPos ? Tensor.fromArray(x.pos, [np(g), g.D]) : null, { patch: g.p });
      assert.equal(t.shape, [g.B, np(g), g.D]);
      assertClose(t.toArray(), e, { atol: 2e-5 * Math.sqrt(kp(g)), rtol: 1e-5, what: `tokens ${JSON.stringify(g)} bias=${withBias} pos=${withPos}` });
    }
  }
});

test('writes at a row offset inside a larger token buffer and leaves the other rows alone', () => {
  const g: Geo = { B: 3, C: 1, H: 28, W: 42, p: 14, D: 9 };
  const x = inputs(g), e = ref(g, x.img, x.w, x.bias, x.pos);
  for (const [T, offset] of [[np(g) + 5, undefined], [np(g) + 5, 1], [np(g) + 2, 0]] as Array<[number, number | undefined]>) {
    const before = rng.randn(g.B * T * g.D);
    const out = Tensor.fromArray(before, [g.B, T, g.D]);
    const r = kernels.patchEmbed(Tensor.fromArray(x.img, [g.B, g.C, g.H, g.W]), Tensor.fromArray(x.w, [g.D, kp(g)]),
      Tensor.fromArray(x.bias, [g.D]), Tensor.fromArray(x.pos, [np(g), g.D]), { patch: g.p, out, offset });
    assert.ok(r === out);
    const off = offset ?? T - np(g);
    const got = out.toArray();
    const want = Float64Array.from(before);
    for (let b = 0; b < g.B; b++)
      for (let n = 0; n < np(g); n++)
        for (let d = 0; d < g.D; d++) want[(b * T + off + n) * g.D + d] = e[(b * np(g) + n) * g.D + d];
    assertClose(got, want, { atol: 1e-5, rtol: 1e-5, what: `out T=${T} offset=${offset}` });
  }
});

// dW = Σ_m dT[m]ᵀ·P[m], dBias = Σ dT, dPos[n] = Σ_b dT[b, n], in float64.
function refBackward(g: Geo, img: Num, dt: Num, T: number, offset: number) {
  const { B, C, H, W, p, D } = g;
  const gw = W / p, n0 = np(g), k = kp(g);
  const dW = new Float64Array(D * k), dB = new Float64Array(D), dP = new Float64Array(n0 * D);
  for (let b = 0; b < B; b++)
    for (let n = 0; n < n0; n++) {
      const py = Math.floor(n / gw), px = n % gw;
      const row = (b * T + offset + n) * D;
      for (let d = 0; d < D; d++) {
        const gv = dt[row + d];
        dB[d] += gv;
        dP[n * D + d] += gv;
        for (let c = 0; c < C; c++)
          for (let i = 0; i < p; i++)
            for (let j = 0; j < p; j++) dW[d * k + (c * p + i) * p + j] += gv * img[((b * C + c) * H + py * p + i) * W + px * p + j];
      }
    }
  return { dW, dB, dP };
}

forEachIsa(test, 'backward matches the float64 adjoint; given gradients accumulate', () => {
  for (const g of shapes) {
    const img = rng.randn(g.B * g.C * g.H * g.W);
    for (const extra of [0, 5]) {
      const T = np(g) + extra, offset = extra ? 4 : 0; // one spare row after the patches too
      const dt = rng.randn(g.B * T * g.D);
      const e = refBackward(g, img, dt, T, offset);
      const ti = Tensor.fromArray(img, [g.B, g.C, g.H, g.W]), tdt = Tensor.fromArray(dt, [g.B, T, g.D]);
      const fresh = kernels.patchEmbedBackward(ti, tdt, { patch: g.p, offset });
      const what = `${JSON.stringify(g)} T=${T}`;
      assertClose(fresh.dWeight.toArray(), e.dW, { atol: 2e-5 * Math.sqrt(g.B * np(g)), rtol: 1e-5, what: `dWeight ${what}` });
      assertClose(fresh.dBias.toArray(), e.dB, { atol: 2e-5 * Math.sqrt(g.B * np(g)), rtol: 1e-5, what: `dBias ${what}` });
      assertClose(fresh.dPos.toArray(), e.dP, { atol: 2e-5 * Math.sqrt(g.B), rtol: 1e-5, what: `dPos ${what}` });
      // Accumulating into existing gradients, any subset.
      const w0 = rng.randn(g.D * kp(g)), b0 = rng.randn(g.D), p0 = rng.randn(np(g) * g.D);
      const dWeight = Tensor.fromArray(w0, [g.D, kp(g)]), dPos = Tensor.fromArray(p0, [np(g), g.D]);
      const r = kernels.patchEmbedBackward(ti, tdt, { patch: g.p, offset, dWeight, dPos });
      assert.ok(r.dWeight === dWeight && r.dPos === dPos);
      assertClose(dWeight.toArray(), e.dW.map((v, i) => v + w0[i]), { atol: 2e-5 * Math.sqrt(g.B * np(g)), rtol: 1e-5, what: `dWeight += ${what}` });
      assertClose(dPos.toArray(), e.dP.map((v, i) => v + p0[i]), { atol: 2e-5 * Math.sqrt(g.B), rtol: 1e-5, what: `dPos += ${what}` });
      const dBias = Tensor.fromArray(b0, [g.D]);
      kernels.patchEmbedBackward(ti, tdt, { patch: g.p, offset, dBias });
      assertClose(dBias.toArray(), e.dB.map((v, i) => v + b0[i]), { atol: 2e-5 * Math.sqrt(g.B * np(g)), rtol: 1e-5, what: `dBias += ${what}` });
    }
  }
});

test('backward matches central differences of the float64 forward', () => {
  const g: Geo = { B: 2, C: 3, H: 10, W: 15, p: 5, D: 4 };
  const x = inputs(g);
  const w = Float64Array.from(x.w), bias = Float64Array.from(x.bias), pos = Float64Array.from(x.pos);
  const G = rng.randn(g.B * np(g) * g.D);
  const r = kernels.patchEmbedBackward(Tensor.fromArray(x.img, [g.B, g.C, g.H, g.W]), Tensor.fromArray(G, [g.B, np(g), g.D]), { patch: g.p });
  const loss = (wv: Num, bv: Num, pv: Num) => dot64(ref(g, x.img, wv, bv, pv), G);
  checkGrad((v) => loss(v, bias, pos), w, r.dWeight.toArray(), { what: 'dWeight', samples: 60, rng, atol: 2e-4 });
  checkGrad((v) => loss(w, v, pos), bias, r.dBias.toArray(), { what: 'dBias', atol: 2e-4 });
  checkGrad((v) => loss(w, bias, v), pos, r.dPos.toArray(), { what: 'dPos', atol: 2e-4 });
});

test('bad arguments are named', () => {
  const img = Tensor.fromArray(rng.randn(2 * 28 * 42), [2, 1, 28, 42]);
  const w = Tensor.fromArray(rng.randn(8 * 196), [8, 196]);
  throwsNamed(() => kernels.patchEmbed(Tensor.fromArray(rng.randn(2 * 27 * 42), [2, 1, 27, 42]), w, null, null, { patch: 14 }), RangeError,
    /patchEmbed: image height H = 27 is not a multiple of patch 14/);
  throwsNamed(() => kernels.patchEmbed(Tensor.fromArray(rng.randn(2 * 28 * 43), [2, 1, 28, 43]), w, null, null, { patch: 14 }), RangeError,
    /patchEmbed: image width W = 43 is not a multiple of patch 14/);
  throwsNamed(() => kernels.patchEmbed(img, Tensor.fromArray(rng.randn(8 * 256), [8, 256]), null, null, { patch: 14 }), RangeError,
    /patchEmbed: weight must be \[D, 196\] \(a flattened Conv2d kernel \[D, C·p·p\] for C = 1, p = 14\), got \[8,256\]/);
  throwsNamed(() => kernels.patchEmbed(Tensor.fromArray(rng.randn(28 * 42), [28, 42]), w, null, null, { patch: 14 }), RangeError,
    /patchEmbed: images must be \[B,C,H,W\], got \[28,42\]/);
  throwsNamed(() => kernels.patchEmbed(img, w, Tensor.fromArray(rng.randn(7), [7]), null, { patch: 14 }), RangeError, /patchEmbed: bias must have shape \[8\], got \[7\]/);
  throwsNamed(() => kernels.patchEmbed(img, w, null, Tensor.fromArray(rng.randn(5 * 8), [5, 8]), { patch: 14 }), RangeError, /patchEmbed: pos must have shape \[6,8\], got \[5,8\]/);
  throwsNamed(() => kernels.patchEmbed(img, w, null, null, { patch: 0 }), RangeError, /patchEmbed: patch must be an integer in \[1, 4096\], got 0/);
  throwsNamed(() => kernels.patchEmbed(img, w, null, null, { patch: NaN }), RangeError, /patchEmbed: patch must be an integer in \[1, 4096\], got NaN/);
  throwsNamed(() => kernels.patchEmbed(img, w, null, null, {} as never), TypeError, /patchEmbed: patch must be an integer, got undefined/);
  const small = Tensor.empty([2, 5, 8]);
  throwsNamed(() => kernels.patchEmbed(img, w, null, null, { patch: 14, out: small }), RangeError, /patchEmbed: the token buffer has 5 rows per image but the images have 6 patches/);
  throwsNamed(() => kernels.patchEmbed(img, w, null, null, { patch: 14, out: Tensor.empty([2, 8, 8]), offset: 3 }), RangeError,
    /patchEmbed: offset must be an integer in \[0, 2\], got 3/);
  throwsNamed(() => kernels.patchEmbed(img, w, null, null, { patch: 14, out: Tensor.empty([2, 8, 9]) }), RangeError, /patchEmbed: out must be \[2, T, 8\], got \[2,8,9\]/);
  throwsNamed(() => kernels.patchEmbed(img, w, null, null, { patch: 14, offset: 1 }), TypeError, /patchEmbed: offset needs an out tensor/);
  const disposed = Tensor.fromArray(rng.randn(8 * 196), [8, 196]);
  disposed.dispose();
  throwsNamed(() => kernels.patchEmbed(img, disposed, null, null, { patch: 14 }), TypeError, /patchEmbed: weight .*disposed/);
  const dt = Tensor.fromArray(rng.randn(2 * 6 * 8), [2, 6, 8]);
  throwsNamed(() => kernels.patchEmbedBackward(img, Tensor.fromArray(rng.randn(3 * 6 * 8), [3, 6, 8]), { patch: 14 }), RangeError,
    /patchEmbedBackward: dTokens must be \[2, T, D\], got \[3,6,8\]/);
  throwsNamed(() => kernels.patchEmbedBackward(img, dt, { patch: 14, dPos: Tensor.empty([6, 7]) }), RangeError, /patchEmbedBackward: dPos must have shape \[6,8\], got \[6,7\]/);
  throwsNamed(() => kernels.patchEmbedBackward(img, dt, { patch: 14, dWeight: Tensor.empty([8, 195]) }), RangeError, /patchEmbedBackward: dWeight must have shape \[8,196\]/);
});

for (const dtype of ['f32', 'bf16'] as const) {
  cudaTest(test, `cuda ${dtype} forward and backward match the CPU op`, () => {
    for (const g of shapes) {
      const round = (x: Float32Array, shape: number[]) => Tensor.fromArray(x, shape, { device: 'cuda', dtype }).toArray();
      const x = inputs(g);
      const img = round(x.img, [g.B, g.C, g.H, g.W]), w = round(x.w, [g.D, kp(g)]), bias = round(x.bias, [g.D]), pos = round(x.pos, [np(g), g.D]);
      const T = np(g) + 5;
      const dt = round(rng.randn(g.B * T * g.D), [g.B, T, g.D]);
      const run = (opt: { device: 'cpu' | 'cuda'; dtype: 'f32' | 'bf16' }) => {
        const ti = Tensor.fromArray(img, [g.B, g.C, g.H, g.W], opt);
        const out = Tensor.zeros([g.B, T, g.D], opt);
        kernels.patchEmbed(ti, Tensor.fromArray(w, [g.D, kp(g)], opt), Tensor.fromArray(bias, [g.D], opt), Tensor.fromArray(pos, [np(g), g.D], opt), { patch: g.p, out });
        const r = kernels.patchEmbedBackward(ti, Tensor.fromArray(dt, [g.B, T, g.D], opt), { patch: g.p });
        return { tokens: out.toArray(), dW: r.dWeight.toArray(), dB: r.dBias.toArray(), dP: r.dPos.toArray() };
      };
      const cpu = run({ device: 'cpu', dtype: 'f32' }), gpu = run({ device: 'cuda', dtype });
      const rtol = dtype === 'f32' ? 1e-5 : 8e-3;
      const what = `cuda ${dtype} ${JSON.stringify(g)}`;
      assertClose(gpu.tokens, cpu.tokens, { atol: 1e-4 * Math.sqrt(kp(g)), rtol, what: `tokens ${what}` });
      assertClose(gpu.dW, cpu.dW, { atol: 1e-4 * Math.sqrt(g.B * np(g)), rtol, what: `dWeight ${what}` });
      assertClose(gpu.dB, cpu.dB, { atol: 1e-4 * Math.sqrt(g.B * np(g)), rtol, what: `dBias ${what}` });
      assertClose(gpu.dP, cpu.dP, { atol: 1e-4 * Math.sqrt(g.B), rtol, what: `dPos ${what}` });
    }
  });
}

test.run();
