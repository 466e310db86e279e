// nt_xent.test.ts: ntXent against a float64 SimCLR loss (normalisation inside) and its
// gradients against central differences.
import { suite } from '../helpers/suite.js';
import { kernels, Tensor } from 'mamakit';
import { assertClose, checkGrad, cudaTest, Rng, throwsNamed, type Num } from '../helpers/index.js';

const test = suite('ntXent');
const rng = new Rng(21);

function ref(z0: Num, z1: Num, B: number, E: number, t: number): number {
  const n = 2 * B;
  const z = Array.from({ length: n }, (_, a) => {
    const src = a < B ? z0 : z1, o = (a % B) * E;
    const v = Array.from({ length: E }, (_, e) => src[o + e]);
    const norm = Math.max(Math.sqrt(v.reduce((s, x) => s + x * x, 0)), 1e-12);
    return v.map((x) => x / norm);
  });
  let loss = 0;
  for (let a = 0; a < n; a++) {
    const logits = z.map((zc, c) => (c === a ? -Infinity : zc.reduce((s, x, e) => s + x * z[a][e], 0) / t));
    const m = Math.max(...logits);
    loss += m + Math.log(logits.reduce((s, v) => s + Math.exp(v - m), 0)) - logits[(a + B) % n];
  }
  return loss / n;
}

test('loss and gradients match float64 and central differences (B 1 to 20, temperature 0.5 and 0.07)', () => {
  for (const [B, E, t] of [[1, 4, 0.5], [2, 3, 0.5], [5, 16, 0.07], [20, 33, 0.5]]) {
    const z0 = rng.randn(B * E, 2), z1 = rng.randn(B * E, 0.5);
    const r = kernels.ntXent(Tensor.fromArray(z0, [B, E]), Tensor.fromArray(z1, [B, E]), t);
    assertClose([r.loss], [ref(z0, z1, B, E, t)], { atol: 1e-5, rtol: 1e-5, what: `loss B=${B}` });
    const a = Float64Array.from(z0), b = Float64Array.from(z1);
    checkGrad((x) => ref(x, b, B, E, t), a, r.dZ0.toArray(), { what: `dZ0 B=${B}`, samples: 30, rng, atol: 1e-4, h: 1e-4 });
    checkGrad((x) => ref(a, x, B, E, t), b, r.dZ1.toArray(), { what: `dZ1 B=${B}`, samples: 30, rng, atol: 1e-4, h: 1e-4 });
  }
});

test('bad arguments are named', () => {
  const a = Tensor.fromArray(rng.randn(8), [2, 4]);
  throwsNamed(() => kernels.ntXent(a, Tensor.fromArray(rng.randn(12), [3, 4]), 0.5), RangeError, /ntXent: z1 must have shape \[2,4\], got \[3,4\]/);
  throwsNamed(() => kernels.ntXent(a, a, 0), RangeError, /ntXent: temperature must be in/);
  throwsNamed(() => kernels.ntXent(a, a, NaN), RangeError, /ntXent: temperature must be in .*NaN/);
});

for (const dtype of ['f32', 'bf16'] as const) {
  cudaTest(test, `cuda ${dtype} matches the CPU loss`, () => {
    const B = 9, E = 20, opt = { device: 'cuda' as const, dtype };
    const z0 = Tensor.fromArray(rng.randn(B * E), [B, E], opt).toArray(), z1 = Tensor.fromArray(rng.randn(B * E), [B, E], opt).toArray();
    const c = kernels.ntXent(Tensor.fromArray(z0, [B, E]), Tensor.fromArray(z1, [B, E]), 0.5);
    const g = kernels.ntXent(Tensor.fromArray(z0, [B, E], opt), Tensor.fromArray(z1, [B, E], opt), 0.5);
    const rtol = dtype === 'f32' ? 1e-4 : 2e-2;
    assertClose([g.loss], [c.loss], { atol: 1e-4, rtol, what: `cuda ${dtype} loss` });
    assertClose(g.dZ0.toArray(), c.dZ0.toArray(), { atol: 1e-4, rtol, what: `cuda ${dtype} dZ0` });
    assertClose(g.dZ1.toArray(), c.dZ1.toArray(), { atol: 1e-4, rtol, what: `cuda ${dtype} dZ1` });
  });
}

test.run();
