// relu.test.ts: relu and its backward against float64 on every ISA, odd sizes, named errors.
import { suite } from '../helpers/suite.js';
import { kernels, Tensor } from 'mamakit';
import { assertClose, forEachIsa, Rng, throwsNamed } from '../helpers/index.js';

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

test.run();
