// napi.bench.ts: the fixed cost of one call into the addon (no argument; one tensor argument
// unwrapped and checked; a 1×1 matmul through the public API), against a plain JS call.
// Run: npm run bench -- napi
import { kernels, Tensor } from 'mamakit';
import { native } from '../lib/native.js';
import { measure, Recorder } from './harness.js';

const rec = new Recorder(import.meta.url);
let sink = 0;
const jsNoop = (x: number) => {
  sink += x;
};
const js = measure('js', () => jsNoop(1));
const t = Tensor.fromArray(new Float32Array([1]), [1, 1]);
const out = Tensor.empty([1, 1]);
const rows: Array<[string, () => void]> = [
  ['noop()', () => native.noop()],
  ['noopTensor(t)', () => native.noopTensor(t.native)],
  ['kernels.matmul 1×1×1 into out', () => kernels.matmul(t, t, { out })],
  ['Tensor.fromArray([1]) + dispose', () => Tensor.fromArray(new Float32Array([1]), [1]).dispose()],
];
for (const [name, fn] of rows) rec.add(name, 'Mcalls/s', 0, measure(name, fn), { name: 'plain JS call', seconds: js.seconds });
if (sink < 0) console.log(sink);
rec.save();
