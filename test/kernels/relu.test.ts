// relu.test.ts: relu and its backward against float64 on every ISA, odd sizes, named errors; on
// CUDA in f32, bf16 and f16 against the CPU.
import { suite } from '../helpers/suite.js';
import { kernels, Tensor } from 'mamakit';
import { assertClose, cudaTest, forEachIsa, Rng, throwsNamed } from '../helpers/index.js';

const test = suite('relu');
const rng = new Rng(6);

forEachIsa(test, 'forward and backward match float64 for odd sizes', () => {
  for (const n of [1, 7, 8, 17, 1000, 65537]) {
    const x = rng.randn(n), dy = rng.randn(n);
    const tx = Tensor.fromArray(x, [n]);
    assertClose(kernels.relu(tx).toArray(), Array.from(x, (v) => Math.max(v, 0)), { atol: 0, rtol: 0, what: `relu n=${n}` });
    assertClose(kernels.reluBackward(Tensor.fromArray(dy, [n]), tx).toArray(), Array.from(x, (v, i) => (v > 0 ? dy[i] : 0)), { atol: 0, rtol: 0, what: `reluBackward n=${n}` });
  }
});

test('bad arguments are named', () => {
  throwsNamed(() => kernels.reluBackward(Tensor.zeros([3]), Tensor.zeros([4])), RangeError, /reluBackward: dy must have shape \[4\], got \[3\]/);
  throwsNamed(() => kernels.relu(3 as never), TypeError, /relu: x must be a Tensor/);
});

cudaTest(test, 'cuda: forward and backward match the CPU exactly on the same values in f32, bf16 and f16', () => {
  for (const dtype of ['f32', 'bf16', 'f16'] as const)
    for (const n of [1, 7, 33, 1025]) {
      const o = { device: 'cuda' as const, dtype };
      const x = Tensor.fromArray(rng.randn(n), [n], o).toArray(), dy = Tensor.fromArray(rng.randn(n), [n], o).toArray();
      const run = (opt: { device?: 'cuda'; dtype?: 'f32' | 'bf16' | 'f16' }) => {
        const tx = Tensor.fromArray(x, [n], opt);
        return { y: kernels.relu(tx).toArray(), dx: kernels.reluBackward(Tensor.fromArray(dy, [n], opt), tx).toArray() };
      };
      const c = run({}), r = run(o);
      // Selection only: the inputs' values come through unrounded.
      assertClose(r.y, c.y, { atol: 0, rtol: 0, what: `cuda ${dtype} relu n=${n}` });
      assertClose(r.dx, c.dx, { atol: 0, rtol: 0, what: `cuda ${dtype} reluBackward n=${n}` });
    }
});

test.run();
