// clip_loss.test.ts: clipLoss against a float64 symmetric InfoNCE and its gradients against
// central differences, for one process and for a local block against gathered rows.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { kernels, Tensor } from 'mamakit';
import { assertClose, checkGrad, cudaTest, Rng, throwsNamed, type Num } from '../helpers/index.js';

const test = suite('clipLoss');
const rng = new Rng(77);

// mean_r CE(s·img·txtAllᵀ)[r] + mean_r CE(s·txt·imgAllᵀ)[r], labels off + r, in float64.
function ref(img: Num, txt: Num, imgAll: Num, txtAll: Num, Bl: number, Bg: number, E: number, off: number, ls: number): number {
  const s = Math.exp(ls);
  const ce = (a: Num, b: Num) => {
    let total = 0;
    for (let r = 0; r < Bl; r++) {
      const z = Array.from({ length: Bg }, (_, c) => {
        let d = 0;
        for (let e = 0; e < E; e++) d += a[r * E + e] * b[c * E + e];
        return s * d;
      });
      const m = Math.max(...z);
      total += m + Math.log(z.reduce((acc, v) => acc + Math.exp(v - m), 0)) - z[off + r];
    }
    return total / Bl;
  };
  return ce(img, txtAll) + ce(txt, imgAll);
}


test('one process: loss and gradients match float64 and central differences (B 1 to 33)', () => {
  for (const [B, E] of [[1, 8], [2, 5], [7, 16], [33, 40]]) {
    const img = rng.unitRows(B, E), txt = rng.unitRows(B, E), ls = Math.log(1 / 0.07) * rng.next();
    const r = kernels.clipLoss(Tensor.fromArray(img, [B, E]), Tensor.fromArray(txt, [B, E]), ls);
    const f = (i: Num, t: Num, l: number) => ref(i, t, i, t, B, B, E, 0, l);
    assertClose([r.loss], [f(img, txt, ls)], { atol: 1e-5, rtol: 1e-5, what: `loss B=${B}` });
    const i64 = Float64Array.from(img), t64 = Float64Array.from(txt);
    checkGrad((x) => f(x, t64, ls), i64, r.dImg.toArray(), { what: `dImg B=${B}`, samples: 40, rng, atol: 1e-4, h: 1e-4 });
    checkGrad((x) => f(i64, x, ls), t64, r.dTxt.toArray(), { what: `dTxt B=${B}`, samples: 40, rng, atol: 1e-4, h: 1e-4 });
    checkGrad((x) => f(i64, t64, x[0]), Float64Array.of(ls), [r.dLogitScale], { what: 'dLogitScale', atol: 1e-4, h: 1e-5 });
    assert.is(r.dImgAll, null);
  }
});

test('a local block against gathered rows: each gradient matches central differences', () => {
  const Bg = 9, Bl = 3, E = 12, off = 4;
  const imgAll = rng.unitRows(Bg, E), txtAll = rng.unitRows(Bg, E);
  const img = imgAll.slice(off * E, (off + Bl) * E), txt = txtAll.slice(off * E, (off + Bl) * E);
  const ls = 2.3;
  const r = kernels.clipLoss(Tensor.fromArray(img, [Bl, E]), Tensor.fromArray(txt, [Bl, E]), ls,
    { imgAll: Tensor.fromArray(imgAll, [Bg, E]), txtAll: Tensor.fromArray(txtAll, [Bg, E]), offset: off });
  const x = [img, txt, imgAll, txtAll].map((a) => Float64Array.from(a));
  const f = (i: number) => (v: Float64Array) => ref(...(x.map((a, j) => (j === i ? v : a)) as unknown as [Num, Num, Num, Num]), Bl, Bg, E, off, ls);
  assertClose([r.loss], [f(0)(x[0])], { atol: 1e-5, rtol: 1e-5, what: 'loss' });
  checkGrad(f(0), x[0], r.dImg.toArray(), { what: 'dImg', atol: 1e-4, h: 1e-4 });
  checkGrad(f(1), x[1], r.dTxt.toArray(), { what: 'dTxt', atol: 1e-4, h: 1e-4 });
  checkGrad(f(2), x[2], r.dImgAll!.toArray(), { what: 'dImgAll', atol: 1e-4, h: 1e-4 });
  checkGrad(f(3), x[3], r.dTxtAll!.toArray(), { what: 'dTxtAll', atol: 1e-4, h: 1e-4 });
});

test('bad arguments are named', () => {
  const a = Tensor.fromArray(rng.unitRows(4, 8), [4, 8]);
  throwsNamed(() => kernels.clipLoss(a, Tensor.fromArray(rng.unitRows(3, 8), [3, 8]), 1), RangeError, /clipLoss: txt must have shape \[4,8\], got \[3,8\]/);
  throwsNamed(() => kernels.clipLoss(a, a, NaN), RangeError, /clipLoss: logitScale must be in \[-80, 80\], got NaN/);
  throwsNamed(() => kernels.clipLoss(a, a, 1, { imgAll: a }), TypeError, /clipLoss: imgAll and txtAll come together/);
  const g = Tensor.fromArray(rng.unitRows(6, 8), [6, 8]);
  throwsNamed(() => kernels.clipLoss(a, a, 1, { imgAll: g, txtAll: g, offset: 3 }), RangeError, /clipLoss: offset must be an integer in \[0, 2\], got 3/);
  throwsNamed(() => kernels.clipLoss(a, a, 1, { imgAll: Tensor.fromArray(rng.unitRows(6, 7), [6, 7]), txtAll: g, offset: 0 }), RangeError, /clipLoss: imgAll must be \[Bg, 8\]/);
  throwsNamed(() => kernels.clipLoss(Tensor.fromArray(rng.unitRows(2, 4), [2, 2, 2]), a, 1), RangeError, /clipLoss: img must be \[B,E\]/);
});

for (const dtype of ['f32', 'bf16'] as const) {
  cudaTest(test, `cuda ${dtype} matches the CPU loss (one process and gathered)`, () => {
    const Bg = 12, Bl = 4, E = 24, off = 8;
    const opt = { device: 'cuda' as const, dtype };
    const round = (x: Float32Array, shape: number[]) => Tensor.fromArray(x, shape, opt).toArray();
    const imgAll = round(rng.unitRows(Bg, E), [Bg, E]), txtAll = round(rng.unitRows(Bg, E), [Bg, E]);
    const img = imgAll.slice(off * E, (off + Bl) * E), txt = txtAll.slice(off * E, (off + Bl) * E);
    for (const gathered of [false, true]) {
      const run = (o: { device?: 'cuda'; dtype?: 'f32' | 'bf16' }) => kernels.clipLoss(Tensor.fromArray(img, [Bl, E], o), Tensor.fromArray(txt, [Bl, E], o), 2.5,
        gathered ? { imgAll: Tensor.fromArray(imgAll, [Bg, E], o), txtAll: Tensor.fromArray(txtAll, [Bg, E], o), offset: off } : {});
      const c = run({}), g = run(opt);
      const rtol = dtype === 'f32' ? 1e-4 : 2e-2;
      assertClose([g.loss, g.dLogitScale], [c.loss, c.dLogitScale], { atol: 1e-4, rtol, what: `cuda ${dtype} loss` });
      assertClose(g.dImg.toArray(), c.dImg.toArray(), { atol: 1e-4, rtol, what: `cuda ${dtype} dImg` });
      assertClose(g.dTxt.toArray(), c.dTxt.toArray(), { atol: 1e-4, rtol, what: `cuda ${dtype} dTxt` });
      if (gathered) assertClose(g.dImgAll!.toArray(), c.dImgAll!.toArray(), { atol: 1e-4, rtol, what: `cuda ${dtype} dImgAll` });
    }
  });
}

// One process in 16 bits: each gradient is a sum of two products (image rows against the texts
// and the texts' column of the other CE), which can each be far larger than their sum; rounded once,
// the result is within half a 16-bit ulp of the f32 CPU gradient of the same inputs.
for (const dtype of ['bf16', 'f16'] as const) {
  cudaTest(test, `cuda ${dtype}, one process: each gradient is rounded to ${dtype} once`, () => {
    const B = 32, E = 64, opt = { device: 'cuda' as const, dtype };
    const img = Tensor.fromArray(rng.unitRows(B, E), [B, E], opt).toArray(), txt = Tensor.fromArray(rng.unitRows(B, E), [B, E], opt).toArray();
    const c = kernels.clipLoss(Tensor.fromArray(img, [B, E]), Tensor.fromArray(txt, [B, E]), 3);
    const g = kernels.clipLoss(Tensor.fromArray(img, [B, E], opt), Tensor.fromArray(txt, [B, E], opt), 3);
    const ulp = dtype === 'bf16' ? 2 ** -7 : 2 ** -10; // the type's spacing relative to a value, at most; rounding is half of it
    assertClose(g.dImg.toArray(), c.dImg.toArray(), { atol: 1e-7, rtol: 0.51 * ulp, what: `cuda ${dtype} dImg` });
    assertClose(g.dTxt.toArray(), c.dTxt.toArray(), { atol: 1e-7, rtol: 0.51 * ulp, what: `cuda ${dtype} dTxt` });
  });
}

test.run();
