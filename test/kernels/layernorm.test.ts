// layernorm.test.ts: layerNorm against a float64 reference and its backward against central
// differences of that reference, on every ISA, odd widths included; on CUDA in f32, bf16 and f16
// against the CPU.
import { suite } from '../helpers/suite.js';
import { kernels, Tensor } from 'mamakit';
import { assertClose, assertIdentical, checkGrad, cudaTest, cudaTol, dot64, forEachIsa, Rng, throwsNamed } from '../helpers/index.js';

const test = suite('layerNorm');
const rng = new Rng(11);

function ref(x: ArrayLike<number>, w: ArrayLike<number> | null, b: ArrayLike<number> | null, R: number, D: number, eps: number) {
  const y = new Float64Array(R * D), mean = new Float64Array(R), rstd = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    let mu = 0;
    for (let d = 0; d < D; d++) mu += x[r * D + d];
    mu /= D;
    let v = 0;
    for (let d = 0; d < D; d++) v += (x[r * D + d] - mu) ** 2;
    const rs = 1 / Math.sqrt(v / D + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (let d = 0; d < D; d++) y[r * D + d] = (x[r * D + d] - mu) * rs * (w ? w[d] : 1) + (b ? b[d] : 0);
  }
  return { y, mean, rstd };
}

forEachIsa(test, 'forward matches float64 for odd widths, with and without affine', () => {
  for (const [R, D] of [[1, 1], [3, 5], [7, 17], [4, 64], [5, 768], [2, 2560], [33, 100]]) {
    for (const affine of [true, false]) {
      const x = rng.randn(R * D, 2).map((v) => v + 3); // an offset mean exercises the two-pass variance
      const w = affine ? rng.randn(D) : null, b = affine ? rng.randn(D) : null;
      const r = kernels.layerNorm(Tensor.fromArray(x, [R, D]), w && Tensor.fromArray(w, [D]), b && Tensor.fromArray(b, [D]), { eps: 1e-5 });
      const e = ref(x, w, b, R, D, 1e-5);
      assertClose(r.y.toArray(), e.y, { atol: 1e-5, rtol: 1e-5, what: `y R=${R} D=${D}` });
      assertClose(r.mean.toArray(), e.mean, { atol: 1e-5, rtol: 1e-5, what: 'mean' });
      assertClose(r.rstd.toArray(), e.rstd, { atol: 1e-5, rtol: 1e-5, what: 'rstd' });
    }
  }
});

forEachIsa(test, 'backward matches finite differences; dWeight and dBias accumulate', () => {
  for (const [R, D] of [[3, 5], [4, 19], [2, 33]]) {
    const x = Float64Array.from(rng.randn(R * D)), w = Float64Array.from(rng.randn(D)), b = Float64Array.from(rng.randn(D));
    const g = rng.randn(R * D);
    const tx = Tensor.fromArray(Float32Array.from(x), [R, D]), tw = Tensor.fromArray(Float32Array.from(w), [D]);
    const { mean, rstd } = kernels.layerNorm(tx, tw, Tensor.fromArray(Float32Array.from(b), [D]));
    const dw0 = rng.randn(D), db0 = rng.randn(D);
    const dWeight = Tensor.fromArray(dw0, [D]), dBias = Tensor.fromArray(db0, [D]);
    const dx = kernels.layerNormBackward(Tensor.fromArray(g, [R, D]), tx, mean, rstd, tw, { dWeight, dBias }).toArray();
    const loss = (xv: ArrayLike<number>, wv: ArrayLike<number>, bv: ArrayLike<number>) => dot64(ref(xv, wv, bv, R, D, 1e-5).y, g);
    checkGrad((v) => loss(v, w, b), x, dx, { what: 'dx', atol: 2e-4 });
    checkGrad((v) => loss(x, v, b), w, dWeight.toArray().map((v, i) => v - dw0[i]), { what: 'dWeight', atol: 2e-4 });
    checkGrad((v) => loss(x, w, v), b, dBias.toArray().map((v, i) => v - db0[i]), { what: 'dBias', atol: 2e-4 });
  }
});

forEachIsa(test, 'a tensor past 4 MiB (rows one at a time) matches float64, and its first rows match the same rows computed alone (in pairs) bit for bit', () => {
  const R = 2051, D = 600, small = 1000;
  const x = rng.randn(R * D, 2).map((v) => v + 1), g = rng.randn(R * D), w = rng.randn(D), b = rng.randn(D);
  const tw = Tensor.fromArray(w, [D]), tb = Tensor.fromArray(b, [D]);
  const big = kernels.layerNorm(Tensor.fromArray(x, [R, D]), tw, tb);
  const e = ref(x, w, b, R, D, 1e-5);
  assertClose(big.y.toArray(), e.y, { atol: 1e-5, rtol: 1e-5, what: 'y (large)' });
  assertClose(big.rstd.toArray(), e.rstd, { atol: 1e-5, rtol: 1e-5, what: 'rstd (large)' });
  const dw = Tensor.zeros([D]), db = Tensor.zeros([D]);
  const dx = kernels.layerNormBackward(Tensor.fromArray(g, [R, D]), Tensor.fromArray(x, [R, D]), big.mean, big.rstd, tw, { dWeight: dw, dBias: db }).toArray();
  // float64: db = Σ_rows dy, dw = Σ_rows dy·x̂
  const edw = new Float64Array(D), edb = new Float64Array(D);
  for (let r = 0; r < R; r++)
    for (let d = 0; d < D; d++) {
      edb[d] += g[r * D + d];
      edw[d] += g[r * D + d] * (x[r * D + d] - e.mean[r]) * e.rstd[r];
    }
  assertClose(dw.toArray(), edw, { atol: 1e-3, rtol: 1e-4, what: 'dWeight (large)' });
  assertClose(db.toArray(), edb, { atol: 1e-3, rtol: 1e-4, what: 'dBias (large)' });
  const part = (a: Float32Array) => a.subarray(0, small * D);
  const alone = kernels.layerNorm(Tensor.fromArray(part(x), [small, D]), tw, tb);
  assertIdentical(alone.y.toArray(), part(big.y.toArray()), 'y rows: paired and single agree bit for bit');
  assertIdentical(alone.rstd.toArray(), big.rstd.toArray().subarray(0, small), 'rstd rows');
  const dxAlone = kernels.layerNormBackward(Tensor.fromArray(part(g), [small, D]), Tensor.fromArray(part(x), [small, D]), alone.mean, alone.rstd, tw).toArray();
  assertIdentical(dxAlone, dx.subarray(0, small * D), 'dx rows: paired and single agree bit for bit');
});

// Rows whose variance is comparable to eps: σ² in {0 (all values equal), 0.3·eps, eps, 3·eps, 1},
// offset means. There eps moves rstd by 18–140 %, so dropping or doubling it fails; with
// unit-variance rows alone it moves rstd by 1e-5, inside every tolerance.
function nearEps(R: number, D: number, eps: number) {
  const x = new Float32Array(R * D);
  const vars = [0, 0.3 * eps, eps, 3 * eps, 1];
  for (let r = 0; r < R; r++) {
    const c = rng.uniform(-0.5, 0.5), s = Math.sqrt(vars[r % vars.length]);
    for (let d = 0; d < D; d++) x[r * D + d] = c + s * rng.normal();
  }
  return x;
}

// float64 backward from the float64 statistics: dx, dw = Σ dy·x̂, db = Σ dy.
function refBackward(dy: ArrayLike<number>, x: ArrayLike<number>, w: ArrayLike<number>, mean: Float64Array, rstd: Float64Array, R: number, D: number) {
  const dx = new Float64Array(R * D), dw = new Float64Array(D), db = new Float64Array(D);
  for (let r = 0; r < R; r++) {
    let sg = 0, sgx = 0;
    for (let d = 0; d < D; d++) {
      const i = r * D + d, xh = (x[i] - mean[r]) * rstd[r], g = dy[i] * w[d];
      sg += g, (sgx += g * xh), (dw[d] += dy[i] * xh), (db[d] += dy[i]);
    }
    for (let d = 0; d < D; d++) {
      const i = r * D + d, xh = (x[i] - mean[r]) * rstd[r];
      dx[i] = rstd[r] * (dy[i] * w[d] - sg / D - xh * (sgx / D));
    }
  }
  return { dx, dw, db };
}

// In cache in pairs (small), rows one at a time (past 4 MiB), and with streaming stores (32 MiB).
const epsCases = [[6, 600, 1e-5], [7, 37, 1e-6], [2051, 600, 1e-5], [8192, 1024, 1e-5]].map(([R, D, eps]) => ({
  R, D, eps, x: nearEps(R, D, eps), g: rng.randn(R * D), w: rng.randn(D), b: rng.randn(D),
}));

forEachIsa(test, 'rows with variance near eps (and all-equal rows) match float64, forward and backward, on every path', () => {
  for (const { R, D, eps, x, g, w, b } of epsCases) {
    const what = `R=${R} D=${D} eps=${eps}`;
    const tx = Tensor.fromArray(x, [R, D]), tw = Tensor.fromArray(w, [D]);
    const r = kernels.layerNorm(tx, tw, Tensor.fromArray(b, [D]), { eps });
    const e = ref(x, w, b, R, D, eps);
    assertClose(r.rstd.toArray(), e.rstd, { atol: 0, rtol: 1e-4, what: `rstd ${what}` });
    assertClose(r.mean.toArray(), e.mean, { atol: 1e-5, rtol: 1e-5, what: `mean ${what}` });
    // An error δ in the f32 mean moves y by δ·rstd·w: y is compared in units of each row's rstd.
    const perRstd = (a: ArrayLike<number>) => {
      const o = new Float64Array(a.length);
      for (let i = 0; i < a.length; i++) o[i] = a[i] / e.rstd[Math.floor(i / D)];
      return o;
    };
    assertClose(perRstd(r.y.toArray()), perRstd(e.y), { atol: 2e-5, rtol: 1e-4, what: `y/rstd ${what}` });
    const dw = Tensor.zeros([D]), db = Tensor.zeros([D]);
    const dx = kernels.layerNormBackward(Tensor.fromArray(g, [R, D]), tx, r.mean, r.rstd, tw, { dWeight: dw, dBias: db }).toArray();
    const eb = refBackward(g, x, w, e.mean, e.rstd, R, D);
    // dx scales with rstd (up to 1/√eps): the tolerance follows each row's.
    assertClose(perRstd(dx), perRstd(eb.dx), { atol: 1e-4, rtol: 1e-3, what: `dx/rstd ${what}` });
    assertClose(dw.toArray(), eb.dw, { atol: 1e-3 * Math.sqrt(R), rtol: 1e-3, what: `dWeight ${what}` });
    assertClose(db.toArray(), eb.db, { atol: 1e-4 * Math.sqrt(R), rtol: 1e-4, what: `dBias ${what}` });
  }
});

test('no affine: backward needs no weight and returns dx', () => {
  const R = 3, D = 7;
  const x = Float64Array.from(rng.randn(R * D)), g = rng.randn(R * D);
  const tx = Tensor.fromArray(Float32Array.from(x), [R, D]);
  const { mean, rstd } = kernels.layerNorm(tx, null, null);
  const dx = kernels.layerNormBackward(Tensor.fromArray(g, [R, D]), tx, mean, rstd, null).toArray();
  checkGrad((v) => dot64(ref(v, null, null, R, D, 1e-5).y, g), x, dx, { what: 'dx', atol: 2e-4 });
});

test('bad arguments are named', () => {
  const x = Tensor.fromArray(rng.randn(6), [2, 3]);
  throwsNamed(() => kernels.layerNorm(x, Tensor.fromArray(rng.randn(4), [4]), null), RangeError, /layerNorm: weight must have shape \[3\], got \[4\]/);
  throwsNamed(() => kernels.layerNorm(x, null, null, { eps: NaN }), RangeError, /layerNorm: eps must be in \[0, 1\], got NaN/);
  throwsNamed(() => kernels.layerNorm(x, null, 5 as never), TypeError, /layerNorm: bias must be a Tensor, got number 5/);
  const { mean, rstd } = kernels.layerNorm(x, null, null);
  throwsNamed(() => kernels.layerNormBackward(Tensor.fromArray(rng.randn(4), [2, 2]), x, mean, rstd, null), RangeError, /dy must have shape \[2,3\]/);
  throwsNamed(() => kernels.layerNormBackward(x, x, rstd, Tensor.fromArray(rng.randn(3), [3]), null), RangeError, /rstd must have shape \[2\]/);
});


for (const dtype of ['f32', 'bf16', 'f16'] as const) {
  cudaTest(test, `cuda ${dtype}: forward and backward match the CPU on the same values (affine and not, dWeight and dBias accumulated)`, () => {
    const o = { device: 'cuda' as const, dtype };
    const round = (a: Float32Array) => Tensor.fromArray(a, [a.length], o).toArray();
    for (const [R, D, affine] of [[5, 37, true], [3, 300, true], [4, 33, false], [1, 1, true]] as const) {
      const x = round(rng.randn(R * D, 2).map((v) => v + 3)), g = round(rng.randn(R * D));
      const w = round(rng.randn(D)), b = round(rng.randn(D)), dw0 = round(rng.randn(D)), db0 = round(rng.randn(D));
      const run = (opt: { device?: 'cuda'; dtype?: 'f32' | 'bf16' | 'f16' }) => {
        const tx = Tensor.fromArray(x, [R, D], opt), tw = affine ? Tensor.fromArray(w, [D], opt) : null;
        const f = kernels.layerNorm(tx, tw, affine ? Tensor.fromArray(b, [D], opt) : null, { eps: 1e-5 });
        const dWeight = affine ? Tensor.fromArray(dw0, [D], opt) : null, dBias = affine ? Tensor.fromArray(db0, [D], opt) : null;
        const dx = kernels.layerNormBackward(Tensor.fromArray(g, [R, D], opt), tx, f.mean, f.rstd, tw, { dWeight, dBias });
        return { y: f.y.toArray(), mean: f.mean.toArray(), rstd: f.rstd.toArray(), dx: dx.toArray(), dw: dWeight?.toArray(), db: dBias?.toArray() };
      };
      const c = run({}), r = run(o), what = `cuda ${dtype} R=${R} D=${D} affine=${affine}`;
      assertClose(r.y, c.y, { ...cudaTol(dtype), what: `y ${what}` });
      assertClose(r.mean, c.mean, { ...cudaTol('f32'), what: `mean ${what}` });
      assertClose(r.rstd, c.rstd, { ...cudaTol('f32'), what: `rstd ${what}` });
      // D = 1: dx is 0 up to rounding noise of rstd·g (rstd = 1/√eps ≈ 316) on either side.
      assertClose(r.dx, c.dx, { ...cudaTol(dtype, D === 1 ? 1e-3 : 1e-4), what: `dx ${what}` });
      if (affine) {
        assertClose(r.dw!, c.dw!, { ...cudaTol(dtype, 1e-4), what: `dWeight ${what}` });
        assertClose(r.db!, c.db!, { ...cudaTol(dtype, 1e-4), what: `dBias ${what}` });
      }
    }
  });
}

test.run();
