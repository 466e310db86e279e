// pos_interp.test.ts: interpolatePos against values PyTorch 1.13 printed (F.interpolate,
// bicubic, align_corners False, by size and by scale_factor as DINOv2 calls it), against a
// float64 reference on random grids, its backward against central differences, named errors
// and the CUDA op against the CPU one when a GPU is present.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { kernels, Tensor } from 'mamakit';
import { assertIdentical, assertClose, checkGrad, cudaTest, dot64, forEachIsa, Rng, throwsNamed, type Num } from '../helpers/index.js';

const test = suite('interpolatePos');
const rng = new Rng(37);

// x[i] = sin(0.7 i + 0.3) over a [h·w, D] grid, as the fixture script built its input.
const sinGrid = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(0.7 * i + 0.3));

// Printed by /usr/bin/python3 (torch 1.13): F.interpolate(x.reshape(1,h,w,D).permute(0,3,1,2),
// size=(5,3) | scale_factor=(6.1/4, 5.1/4), mode='bicubic', align_corners=False), back to [h·w, D].
const TORCH_SIZE = [0.4701806, 0.8797805, 0.6472064, -0.0181253, -0.8865755, -0.8681187, 0.2138651, 0.7227893, 0.8089748, 0.2601202,
  -0.7343376, -0.8901433, -0.1949105, 0.4255669, 0.9922361, 0.6648976, -0.4434675, -0.8533439, -0.5564421, 0.0251917, 0.9349904,
  0.9085114, -0.0451057, -0.6097035, -0.7641135, -0.2380083, 0.8491259, 1.0208178, 0.2178084, -0.4187586];
const TORCH_SCALE = [0.3129404, 0.9038525, 0.9195856, 0.8670182, 0.6909592, 0.041326, -0.340475, -0.851809, -1.0293992, -0.8791241,
  -0.0427173, 0.6346186, 0.7545126, 0.9134519, 0.8670651, 0.3618753, -0.0182466, -0.6204863, -0.8895905, -0.9739095, -0.5651208,
  0.1461172, 0.4040266, 0.8550062, 1.0077308, 0.7875991, 0.4629991, -0.1902769, -0.5577932, -0.9788611, -0.87299, -0.2743948,
  0.0434986, 0.6400337, 0.9224221, 0.9741898, 0.7579368, 0.1921661, -0.1820227, -0.7903837, -1.0361334, -0.7346039, -0.4231428,
  0.2029975, 0.5761486, 0.9579747, 0.934496, 0.6255514, 0.3396912, -0.347937, -1.0299916, -0.9775729, -0.7077786, -0.134868,
  0.259048, 0.8323808, 0.9500747, 0.8622378, 0.6737866, 0.0110533];

test('matches PyTorch bicubic by size and by scale factor', () => {
  const a = kernels.interpolatePos(Tensor.fromArray(sinGrid(3 * 4 * 2), [12, 2]), { from: [3, 4], to: [5, 3] });
  assert.equal(a.shape, [15, 2]);
  assertClose(a.toArray(), TORCH_SIZE, { atol: 2e-6, rtol: 1e-6, what: 'size (5,3)' });
  const b = kernels.interpolatePos(Tensor.fromArray(sinGrid(4 * 4 * 2), [16, 2]), { from: [4, 4], to: [6, 5], scaleFactor: [6.1 / 4, 5.1 / 4] });
  assertClose(b.toArray(), TORCH_SCALE, { atol: 2e-6, rtol: 1e-6, what: 'scale_factor (6.1/4, 5.1/4)' });
});

// Float64 bicubic (a = −0.75, align_corners false, clamped taps).
function ref(x: Num, h0: number, w0: number, h1: number, w1: number, D: number, sh: number, sw: number): Float64Array {
  const A = -0.75;
  const cc1 = (t: number) => ((A + 2) * t - (A + 3)) * t * t + 1;
  const cc2 = (t: number) => ((A * t - 5 * A) * t + 8 * A) * t - 4 * A;
  const taps = (i: number, s: number, n: number) => {
    const real = s * (i + 0.5) - 0.5, fl = Math.floor(real), t = real - fl;
    return { at: [-1, 0, 1, 2].map((k) => Math.min(n - 1, Math.max(0, fl + k))), w: [cc2(t + 1), cc1(t), cc1(1 - t), cc2(2 - t)] };
  };
  const y = new Float64Array(h1 * w1 * D);
  for (let i = 0; i < h1; i++)
    for (let j = 0; j < w1; j++) {
      const ty = taps(i, sh, h0), tx = taps(j, sw, w0);
      for (let a = 0; a < 4; a++)
        for (let b = 0; b < 4; b++)
          for (let d = 0; d < D; d++) y[(i * w1 + j) * D + d] += ty.w[a] * tx.w[b] * x[(ty.at[a] * w0 + tx.at[b]) * D + d];
    }
  return y;
}

const grids: Array<[number, number, number, number, number]> = [
  [37, 37, 16, 16, 8], [16, 16, 37, 37, 3], [4, 6, 9, 5, 33], [1, 1, 3, 2, 4], [5, 7, 5, 7, 10], [3, 3, 1, 1, 17], [24, 24, 32, 40, 64],
];

forEachIsa(test, 'forward matches float64 on up-, down- and same-size grids (same size is a copy)', () => {
  for (const [h0, w0, h1, w1, D] of grids) {
    const x = rng.randn(h0 * w0 * D);
    const y = kernels.interpolatePos(Tensor.fromArray(x, [h0 * w0, D]), { from: [h0, w0], to: [h1, w1] }).toArray();
    assertClose(y, ref(x, h0, w0, h1, w1, D, h0 / h1, w0 / w1), { atol: 1e-5, rtol: 1e-5, what: `${h0}×${w0} → ${h1}×${w1} D=${D}` });
    if (h0 === h1 && w0 === w1) assertIdentical(y, x, 'same size copies exactly');
  }
});

forEachIsa(test, 'backward matches central differences (and the float64 adjoint)', () => {
  for (const [h0, w0, h1, w1, D] of [[4, 6, 9, 5, 3], [7, 7, 3, 4, 2], [2, 3, 5, 5, 9]]) {
    const x = Float64Array.from(rng.randn(h0 * w0 * D)), g = rng.randn(h1 * w1 * D);
    const opts = { from: [h0, w0] as [number, number], to: [h1, w1] as [number, number], scaleFactor: [h1 / h0 * 1.03, w1 / w0 * 0.97] as [number, number] };
    const dx = kernels.interpolatePosBackward(Tensor.fromArray(g, [h1 * w1, D]), opts);
    assert.equal(dx.shape, [h0 * w0, D]);
    const f = (v: Num) => dot64(ref(v, h0, w0, h1, w1, D, 1 / opts.scaleFactor[0], 1 / opts.scaleFactor[1]), g);
    checkGrad(f, x, dx.toArray(), { what: `dx ${h0}×${w0} → ${h1}×${w1}`, atol: 2e-4 });
  }
});

test('bad arguments are named', () => {
  const x = Tensor.fromArray(rng.randn(12 * 4), [12, 4]);
  throwsNamed(() => kernels.interpolatePos(x, { from: [3, 5], to: [2, 2] }), RangeError, /interpolatePos: pos must be \[15, D\] for a 3×5 grid, got \[12,4\]/);
  throwsNamed(() => kernels.interpolatePos(x, { from: [3, 4], to: [0, 2] }), RangeError, /interpolatePos: toH must be an integer in \[1, 65536\], got 0/);
  throwsNamed(() => kernels.interpolatePos(x, { from: [3, 4], to: [2, 2], scaleFactor: [NaN, 1] }), RangeError, /interpolatePos: scaleH must be in/);
  throwsNamed(() => kernels.interpolatePos(x, { from: [3, 4] } as never), TypeError, /interpolatePos: to must be \[rows, columns\], got undefined/);
  throwsNamed(() => kernels.interpolatePosBackward(x, { from: [2, 2], to: [3, 3] }), RangeError, /interpolatePosBackward: dy must be \[9, D\] for a 3×3 grid, got \[12,4\]/);
});

for (const dtype of ['f32', 'bf16'] as const) {
  cudaTest(test, `cuda ${dtype} forward and backward match the CPU op`, () => {
    for (const [h0, w0, h1, w1, D] of grids) {
      const opt = { device: 'cuda' as const, dtype };
      const x = Tensor.fromArray(rng.randn(h0 * w0 * D), [h0 * w0, D], opt).toArray();
      const g = Tensor.fromArray(rng.randn(h1 * w1 * D), [h1 * w1, D], opt).toArray();
      const o = { from: [h0, w0] as [number, number], to: [h1, w1] as [number, number] };
      const rtol = dtype === 'f32' ? 1e-5 : 8e-3;
      assertClose(kernels.interpolatePos(Tensor.fromArray(x, [h0 * w0, D], opt), o).toArray(),
        kernels.interpolatePos(Tensor.fromArray(x, [h0 * w0, D]), o).toArray(), { atol: 1e-4, rtol, what: `cuda ${dtype} forward` });
      assertClose(kernels.interpolatePosBackward(Tensor.fromArray(g, [h1 * w1, D], opt), o).toArray(),
        kernels.interpolatePosBackward(Tensor.fromArray(g, [h1 * w1, D]), o).toArray(), { atol: 1e-4, rtol, what: `cuda ${dtype} backward` });
    }
  });
}

test.run();
